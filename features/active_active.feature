@active-active
Feature: Orders survive the loss of one of two active data centers
  As the owner of the orders service
  I want both data centers to process orders and replicate their state to each other
  So that when one is lost the other carries on with its customers' running totals

  Rule: The surviving data center takes the lost one's customers over in place

    Scenario: dc2 carries on alone when the orders job in dc1 is canceled
      Given the "orders" application runs active in both "dc1" and "dc2"
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the "orders" job in "dc1" is canceled
      Then "dc2" takes over within 45 seconds
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice
