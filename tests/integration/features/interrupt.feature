# Used by tests/integration/test_interrupt.py: each scenario puts a fault in place, then waits long (a check that
# only settles after 120 seconds), so that Ctrl-C, SIGTERM or `failover-tester abort` arrives while the fault is in
# place. The run must heal and restore, report the scenario as interrupted and not start the next one.
@interrupt
Feature: An interrupted run heals and restores before it ends

  @int-partition
  Scenario: interrupted while dc1 and dc2 are partitioned
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
    When the network between "dc1" and "dc2" is partitioned
    Then "dc1" does not take over for 120 seconds

  @int-hang
  Scenario: interrupted while the aggregator in dc1 hangs
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
    When the processing element running "Aggregator" in "dc1" hangs for 120 seconds
    Then "dc1" does not take over for 120 seconds

  @int-cancel
  Scenario: interrupted after the orders job in dc1 was canceled
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc1" does not take over for 120 seconds

  @int-stop
  Scenario: interrupted while the instance in dc1 is stopped
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
    When the instance in "dc1" is stopped
    Then "dc1" does not take over for 120 seconds

  @int-partition @int-hang @int-cancel @int-stop @int-next
  Scenario: the scenario after an interrupted one is not run
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
