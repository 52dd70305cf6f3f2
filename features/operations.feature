@operations
Feature: Orders survive operational events in the active data center
  As the operator of the orders service
  I want a stopped instance to be replaced by the standby, and to know what a planned shutdown does
  So that unplanned outages fail over and maintenance holds no surprise

  Rule: A stopped instance in the active data center is replaced by the standby

    @instance-stop
    Scenario: dc2 takes over when the instance in dc1 is stopped
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the instance in "dc1" is stopped
      Then "dc2" takes over within 45 seconds
      And the recovery meets the "orders" objectives

  Rule: The standby cannot tell an orderly shutdown from a failure: it takes over once the heartbeats stop

    @orderly-shutdown
    Scenario: dc2 takes over when dc1 is shut down in an orderly way
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When "dc1" is shut down in an orderly way
      Then "dc2" takes over within 45 seconds
