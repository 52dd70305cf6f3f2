# Used by tests/integration/test_compare_regression.py: the same scenario (same feature and scenario names, so the
# same scenario_key across runs) in two folders; "after" has the slower setting (the lab's default). Comparing repeated runs of
# both must flag the slower detection as a regression.
@heartbeat-regression
Feature: The standby takes over a canceled orders job

  Scenario: dc2 takes over when the orders job in dc1 is canceled
    Given the Cross-DC toolkit exchanges heartbeats every 1 second and allows 3 missed heartbeats
    And the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 3 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 20 seconds
    And the recovery time is at most 30 seconds
