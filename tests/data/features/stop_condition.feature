# Run by tests/lab/test_lab_stop_conditions.py with a stop condition that breaches once dc2 takes over (both data
# centers run a job): the partition is healed at once and the scenario fails with "aborted: <condition>".
Feature: A stop condition ends a fault at once

  Scenario: a split brain stops the partition
    Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 100 tuples per second
      And the system has been steady for 2 seconds
    When the network between "dc1" and "dc2" is partitioned
    Then "dc1" does not take over for 90 seconds
