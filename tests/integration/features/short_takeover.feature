# Used by tests/integration/test_defects.py against a lab started with a defect switch: the same scenario
# as the smoke feature with a tight limit, so that a defective stand-in fails it quickly.
@defect-check
Feature: The takeover checker catches a standby that never takes over

  Scenario: dc2 takes over quickly when the orders job in dc1 is canceled
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 100 tuples per second
    And the system has been steady for 3 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 6 seconds
    And the recovery time is at most 8 seconds
