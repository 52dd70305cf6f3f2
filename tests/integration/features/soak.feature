# Used by tests/integration/test_soak.py: a short drill without a fault (a few seconds), repeated by soak mode
# (`run --every --for`); the test stops the soak with Ctrl-C in its third round.
@soak
Feature: A short steady drill that soak mode repeats

  Scenario: orders flow steadily while dc2 stands by
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 20 tuples per second
    And the system has been steady for 1 second
    Then no failover happens for 2 seconds
    And no tuple is delivered twice
