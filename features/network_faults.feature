@network
Feature: Orders survive network trouble between the data centers
  As the owner of the orders service
  I want the Cross-DC toolkit to tell a lost data center from a passing network glitch
  So that dc2 takes over only when dc1 is really unreachable, and nothing is lost when it does

  Rule: A partition longer than failure detection makes the standby take over, and the toolkit does not fence
  the old active: both data centers run the application

    @partition @split-brain
    Scenario: dc2 takes over when the network between dc1 and dc2 is partitioned, while dc1 keeps running
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the network between "dc1" and "dc2" is partitioned
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And no acknowledged tuple is lost
      And both data centers run the application at the same time

  Rule: An application that fences itself stands down when a partition heals after the standby took over

    @partition @split-brain @fencing
    Scenario: dc1 stands down when the partition heals after dc2 took over, if the application fences itself
      Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the network between "dc1" and "dc2" is partitioned
      Then "dc2" takes over within 45 seconds
      When the fault is healed
      Then only one data center emits output at a time
      And no tuple is delivered twice

  Rule: A partition shorter than failure detection changes nothing

    @partition
    Scenario: a one-second network blip does not trigger a failover
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the network between "dc1" and "dc2" is partitioned for 1 second
      Then no failover happens for 10 seconds
      And no acknowledged tuple is lost
      And no tuple is delivered twice

  Rule: A flapping link that never stays down long enough does not trigger a failover

    @flapping
    Scenario: short network blips a few seconds apart do not trigger a failover
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the network between "dc1" and "dc2" is partitioned for 1 second
      Then no failover happens for 3 seconds
      When the network between "dc1" and "dc2" is partitioned for 1 second
      Then no failover happens for 3 seconds
      When the network between "dc1" and "dc2" is partitioned for 1 second
      Then no failover happens for 3 seconds
      And no acknowledged tuple is lost

  Rule: A one-way partition ends with both sides seeing the other as down

    @one-way-partition
    Scenario: dc2 takes over when traffic from dc1 to dc2 is dropped
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When traffic from "dc1" to "dc2" is dropped
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And no acknowledged tuple is lost

  Rule: An isolated data center is replaced by the standby

    @isolation
    Scenario: dc2 takes over when dc1 is cut off from the network
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When "dc1" is cut off from the network
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And at most 50 acknowledged tuples are lost

  Rule: Latency below the detection threshold is tolerated

    @latency
    Scenario: 200 ms of latency between the data centers does not trigger a failover
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When 200 ms of latency is added between "dc1" and "dc2"
      Then no failover happens for 10 seconds
      And no acknowledged tuple is lost

  Rule: Latency beyond the detection threshold looks like a lost data center

    @latency
    Scenario: three seconds of latency between the data centers makes dc2 take over
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When 3000 ms of latency is added between "dc1" and "dc2"
      Then "dc2" takes over within 45 seconds

  Rule: Heavy packet loss between the data centers looks like a lost data center

    @packet-loss
    Scenario: 30% packet loss between the data centers makes dc2 take over
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When 30% of packets between "dc1" and "dc2" are lost
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds

  Rule: A narrow link between the data centers still carries heartbeats and snapshots

    @bandwidth
    Scenario: a 1 mbit link between the data centers does not trigger a failover
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the bandwidth between "dc1" and "dc2" is limited to 1 mbit
      Then no failover happens for 10 seconds
      And no acknowledged tuple is lost
