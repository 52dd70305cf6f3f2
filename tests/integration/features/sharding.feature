# Used by tests/integration/test_sharding.py: three short scenarios (no fault, a few seconds of steady traffic each;
# the outline's two rows count as two scenarios) split over two shards, run one after the other and merged.
@sharding
Feature: Steady orders pass the data checks, whichever runner runs them

  Scenario: orders flow steadily at a low rate
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 50 tuples per second
    And the system has been steady for 2 seconds
    Then no acknowledged tuple is lost
    And no tuple is delivered twice

  Scenario Outline: orders flow steadily at <rate> tuples per second
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at <rate> tuples per second
    And the system has been steady for 2 seconds
    Then no tuple is delivered twice

    Examples:
      | rate |
      | 20   |
      | 40   |
