# Used by tests/integration/test_compare_regression.py: the same scenario (same feature and scenario names, so the
# same scenario_key across runs) in two folders; "before" has the faster setting. Comparing repeated runs of
# both must flag the slower detection as a regression.
@heartbeat-regression
Feature: The standby takes over a canceled orders job

  Scenario: dc2 takes over when the orders job in dc1 is canceled
    Given the Cross-DC toolkit exchanges heartbeats every 500 ms and allows 2 missed heartbeats
    And the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 3 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 20 seconds
    And the recovery time is at most 30 seconds
