# Run by tests/unit/test_contract.py: `run` refuses it in its pre-check (exit 2); behave run directly fails it in its
# before_scenario hook, before the layout step deploys anything (no lab needed).
Feature: The traffic step names the application's input

  Scenario: gizmos are nobody's input
    Given the "orders" application runs active in "dc1" with "dc2" on standby
      And gizmos flow at 200 tuples per second
    Then no failover happens for 1 seconds
