@judging
Feature: Every check gives the same answer wherever it stands
  As a QA engineer writing failover scenarios from the step catalogue
  I want each check to watch the whole fault, its recovery and a settling period, in whatever order I write them
  So that a green result always means the orders were watched through the fault, not before it

  Rule: Data and state checks written before the recovery checks wait for the recovery

    @instance-stop @state
    Scenario: dc2 resumes from dc1's state when the instance in dc1 is stopped, with the state checked first
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc1" is stopped
      Then "dc2" resumes from a consistent copy of the state of "dc1"
      And at most 5 seconds of state updates are lost
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice
      And "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds

    @pe-hang @fencing
    Scenario: the orders a hung aggregator held are judged only after it resumes
      Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the processing element running "Aggregator" in "dc1" hangs for 15 seconds
      Then every tuple sent gets a definite answer
      And only one data center emits output at a time
      And "dc2" takes over within 45 seconds

  Rule: Throughput recovery is judged against the share the step states, with or without a failover

    @job-cancel
    Scenario: throughput is back to half the baseline soon after dc2 takes over
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the "orders" job in "dc1" is canceled
      Then throughput returns to 50% of the baseline within 10 seconds
      And "dc2" takes over within 45 seconds

    @pe-kill
    Scenario: throughput comes back in dc1 after its aggregator is killed and restarts in place
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the processing element running "Aggregator" in "dc1" is killed
      Then throughput returns to 90% of the baseline within 20 seconds
      And no failover happens for 10 seconds

    @memory
    Scenario: orders keep flowing at 500 per second while the memory of dc1 is exhausted
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 500 tuples per second
      And the system has been steady for 5 seconds
      When the memory of "dc1" is exhausted for 15 seconds
      Then no acknowledged tuple is lost
      And throughput returns to 90% of the baseline within 20 seconds
      And no failover happens for 15 seconds

  Rule: Network faults one way or with jitter are judged through their recovery

    @latency
    Scenario: latency with jitter between the data centers neither loses nor reorders orders
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When 200 ms of latency with 50 ms of jitter is added between "dc1" and "dc2"
      Then no acknowledged tuple is lost
      And the order of tuples per key is preserved
      And no failover happens for 10 seconds

    @one-way-partition
    Scenario: dc1 declares dc2 down and dc2 takes over when traffic from dc2 to dc1 is dropped
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When traffic from "dc2" to "dc1" is dropped
      Then at most 50 acknowledged tuples are lost
      And no tuple is delivered twice
      And "dc2" takes over within 45 seconds
