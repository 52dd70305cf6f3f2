# Used by tests/integration/test_defects.py: each scenario exercises one checker, so that a lab started with
# the matching defect switch fails exactly that checker, and the clean lab passes all of them (@clean). The
# @telemetry scenarios hold the telemetry application (other field names, no checksum, count and maximum as
# its state) to the same checks.
@defect-check
Feature: Every checker passes on a clean stand-in and fails on the matching defect

  @clean @state
  Scenario: dc2 resumes from dc1's state, in order, once, alone and quickly
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 6 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 6 seconds
    And throughput returns to 90% of the baseline within 10 seconds
    And no tuple is delivered twice
    And the order of tuples per key is preserved
    And "dc2" resumes from a consistent copy of the state of "dc1"
    And at most 5 seconds of state updates are lost
    And only one data center emits output at a time
    And the recovery meets the "orders" objectives

  @clean @steady
  Scenario: Nothing is lost, duplicated or reordered while nothing fails
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 4 seconds
    Then no failover happens for 2 seconds
    And no acknowledged tuple is lost
    And no tuple is delivered twice
    And the order of tuples per key is preserved
    And every tuple that comes out is intact and was accepted
    And every tuple sent gets a definite answer

  # The hang outlasts failure detection (H 0.5 s, M 3: dc2 reports dc1 DOWN ~2 s in) by far, so dc2 takes over
  # while dc1's aggregator is stopped; the split-brain check covers dc1 resuming after the 8 s.
  # the application that fences itself: without fencing both data centers emit after the resume (the toolkit has
  # none), and defect split-brain switches the application's fencing off
  @clean @hang
  Scenario: Only one data center emits after a hung aggregator was replaced and resumes
    Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 4 seconds
    When the processing element running "Aggregator" in "dc1" hangs for 8 seconds
    Then "dc2" takes over within 20 seconds
    And only one data center emits output at a time

  @clean @telemetry-state
  Scenario: dc2 resumes the device peaks from dc1's state, in order, once, alone and quickly
    Given the "telemetry" application runs active in "dc1" with "dc2" on standby
    And readings flow at 200 tuples per second
    And the system has been steady for 6 seconds
    When the "telemetry" job in "dc1" is canceled
    Then "dc2" takes over within 6 seconds
    And throughput returns to 90% of the baseline within 10 seconds
    And no tuple is delivered twice
    And the order of tuples per key is preserved
    And "dc2" resumes from a consistent copy of the state of "dc1"
    And at most 5 seconds of state updates are lost
    And only one data center emits output at a time

  @clean @telemetry-steady
  Scenario: No reading is lost, duplicated or reordered while nothing fails
    Given the "telemetry" application runs active in "dc1" with "dc2" on standby
    And readings flow at 200 tuples per second
    And the system has been steady for 4 seconds
    Then no failover happens for 2 seconds
    And no acknowledged tuple is lost
    And no tuple is delivered twice
    And the order of tuples per key is preserved
    And every tuple sent gets a definite answer

  # telemetry passes no checksum through: on a clean lab this check is "not judged" (corruption cannot be
  # seen), so the scenario is not in the @clean set; a phantom output still fails it
  @telemetry-integrity
  Scenario: Every alert that comes out was a reading the application accepted
    Given the "telemetry" application runs active in "dc1" with "dc2" on standby
    And readings flow at 200 tuples per second
    And the system has been steady for 4 seconds
    Then every tuple that comes out is intact and was accepted

  @clean @telemetry-hang
  Scenario: Only one data center emits alerts after a hung peak tracker was replaced and resumes
    Given the "telemetry-fenced" application runs active in "dc1" with "dc2" on standby
    And readings flow at 200 tuples per second
    And the system has been steady for 4 seconds
    When the processing element running "Peak" in "dc1" hangs for 8 seconds
    Then "dc2" takes over within 20 seconds
    And only one data center emits output at a time

  # Run by hand (--tags @active-active). Not part of the @clean set: the producer moves dc1's customers to dc2
  # as soon as dc1's endpoint is gone, before dc2's toolkit declares dc1 DOWN and merges its snapshot, so
  # "dc2 resumes from a consistent copy of the state of dc1" rightly fails on this stand-in.
  @active-active
  Scenario: dc2 takes over dc1's customers in place when both are active
    Given the "orders" application runs active in both "dc1" and "dc2"
    And orders flow at 200 tuples per second
    And the system has been steady for 4 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 6 seconds
    And the recovery time is at most 10 seconds
    And only one data center emits output at a time
    And no tuple is delivered twice
