# Used by tests/integration/test_judging.py: the data checks stand before the recovery check, during a hang that
# outlasts failure detection; each must judge a window that covers the hang and the takeover. The application fences
# itself: without fencing the old active emits its held orders after the resume (the toolkit has no fencing).
@judging-check
Feature: A data check written first still watches the fault through

  Scenario: the data checks come first during a hang of the aggregator in dc1
    Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 4 seconds
    When the processing element running "Aggregator" in "dc1" hangs for 6 seconds
    Then every tuple sent gets a definite answer
    And no tuple is delivered twice
    And only one data center emits output at a time
    And "dc2" takes over within 20 seconds
