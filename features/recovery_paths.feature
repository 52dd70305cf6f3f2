@recovery
Feature: Orders come home after an outage
  As the owner of the orders service
  I want dc1 to return to service after an outage and the orders to move back to it with their state
  So that a failover is not a one-way street, even when both data centers were down

  Rule: Once dc1 is back, the orders fail back to it with the state dc2 built up

    @failback @instance-stop
    Scenario: orders fail back to dc1 once it is back
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc1" is stopped
      Then "dc2" takes over within 30 seconds
      When "dc1" comes back
      And the application fails back to "dc1"
      Then "dc1" takes over within 30 seconds
      And throughput returns to 90% of the baseline within 10 seconds
      And "dc1" resumes from a consistent copy of the state of "dc2"
      And at most 5 seconds of state updates are lost
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice
      And only one data center emits output at a time

  Rule: After both data centers were down, the orders resume in dc1 with the state it had

    The standby stub is no job of the dc2 instance: it still runs when that instance is stopped, sees dc1 go DOWN
    and runs its failover script, whose submission the stopped instance refuses. Nothing takes over.

    @dual-outage @instance-stop
    Scenario: the orders resume in dc1 after both data centers were down
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc2" is stopped
      And the instance in "dc1" is stopped
      Then "dc2" does not take over for 10 seconds
      When "dc2" comes back
      And "dc1" comes back
      Then "dc1" takes over within 60 seconds
      And throughput returns to 90% of the baseline within 20 seconds
      And "dc1" resumes from a consistent copy of the state of "dc1"
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice

  Rule: A standby whose failover script only submits the application, as the toolkit's reference script does,
  hands no state to the new job

    @job-cancel @reference-script
    Scenario: dc2 takes over without the state of dc1 when its failover script only submits the application
      Given the "orders-reference-script" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the "orders-reference-script" job in "dc1" is canceled
      Then "dc2" takes over within 45 seconds
      And "dc2" starts without the state of "dc1"
