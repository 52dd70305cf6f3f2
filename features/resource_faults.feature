@resources
Feature: Orders survive exhausted resources in the active data center
  As the owner of the orders service
  I want the orders to keep flowing when the active data center runs short of CPU, memory or disk
  So that a noisy neighbour or a full disk does not stop the business

  Rule: Resource exhaustion that does not stop the application changes nothing

    @cpu
    Scenario: orders keep flowing in dc1 when its CPU is exhausted
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the CPU of "dc1" is exhausted for 15 seconds
      Then no failover happens for 15 seconds
      And no acknowledged tuple is lost

    @memory
    Scenario: orders keep flowing in dc1 when its memory is exhausted
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the memory of "dc1" is exhausted for 15 seconds
      Then no failover happens for 15 seconds
      And no acknowledged tuple is lost

    @disk
    Scenario: orders keep flowing in dc1 when its disk is full
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the disk of "dc1" is exhausted for 15 seconds
      Then no failover happens for 15 seconds
      And no acknowledged tuple is lost
