# Used by tests/lab/test_lab_lease.py: a short run that holds the pair's lease while a second run, `lab up`,
# `faults clean` and `faults list` are tried from other terminals.
@lease-check
Feature: A run holds the lease of its pair

  Scenario: A steady run is left alone by the commands refused during it
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 3 seconds
    Then no failover happens for 4 seconds
    And no tuple is delivered twice
