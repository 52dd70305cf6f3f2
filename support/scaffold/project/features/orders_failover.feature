@smoke @job-cancel
Feature: Orders keep flowing when the orders job in the active data center stops
  As the owner of the orders service
  I want the standby data center to take over when the orders job in the active one is canceled
  So that customers' orders keep being processed with almost nothing lost

  Scenario: dc2 takes over when the orders job in dc1 is canceled
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 10 seconds
    When the "orders" job in "dc1" is canceled
    Then "dc2" takes over within 45 seconds
    And the recovery time is at most 60 seconds
    And at most 50 acknowledged tuples are lost
    And no tuple is delivered twice
