# Used by tests/integration/test_defects.py on a lab started with the early-input defect switch: the standby's
# replay of the stored snapshots does not wait for the new job's first input, so some keys resume from a state
# dc1 never had. The restored-state check must find it, and the step that states that finding passes. On a clean
# lab the same step fails, naming what it measured (tests/unit/test_expected_findings.py, and the clean run
# judged again in test_every_checker_passes_on_the_clean_lab).
@defect-check
Feature: The restored-state check finds a state the old active never had

  @expected-copy
  Scenario: the restored-state check finds that dc2 resumed from a state dc1 never had
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 6 seconds
    When the "orders" job in "dc1" is canceled
    Then the restored-state check finds that "dc2" did not resume from a consistent copy of the state of "dc1"
    And "dc2" takes over within 6 seconds
