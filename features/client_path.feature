@clients
Feature: Orders when the clients cannot reach the active data center
  As the owner of the orders service
  I want to know what my clients see when only their path to the active data center breaks
  So that I do not count on a failover the toolkit cannot make

  Rule: Cross-DC failover watches the data centers, not the clients: when the clients cannot reach dc1 while the
  data centers still see each other, the toolkit sees dc1 UP and nothing fails over; the clients' sends fail or
  stay unanswered until their path is back, and nothing dc1 acknowledged is lost

    @clients-cut
    Scenario: nobody takes over while the clients are cut off from dc1, and the orders flow again once they reach it
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the clients cannot reach "dc1"
      Then no failover happens for 15 seconds
      When the fault is healed
      Then throughput returns to 90% of the baseline within 30 seconds
      And no acknowledged tuple is lost
