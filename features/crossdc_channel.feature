@channel
Feature: Orders when the Cross-DC toolkit's own channel fails while the network works
  As the owner of the orders service
  I want to know what the Cross-DC toolkit does when its heartbeats or its snapshot replication fail while clients
  still reach both data centers
  So that I know which of these failures moves the orders, and how much state a later failover loses

  Rule: Cut heartbeats look like a lost data center: dc2 takes over, and without fencing dc1 keeps running

    The toolkit judges the other data center only by its heartbeats. When they stop, both sides declare the other
    DOWN after the allowed misses; the standby launches the application, and nothing stops the old active. Clients
    that follow the active move to dc2, so only one data center emits; a client still sending to dc1 would have
    its orders processed there as well.

    @heartbeat-cut @split-brain
    Scenario: dc2 takes over when the Cross-DC heartbeats are cut, while dc1 keeps running the application
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the Cross-DC heartbeats between "dc1" and "dc2" are cut
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And both data centers run the application at the same time
      And only one data center emits output at a time
      And no acknowledged tuple is lost

  Rule: Cut snapshot replication goes unnoticed until a failover restores the stale copy

    Heartbeats keep flowing, so nothing fails over while replication is cut; dc2 keeps the last snapshot that got
    through. When dc1 then fails, dc2 resumes from that copy and the updates made since are lost.

    @replication-cut @instance-stop @state
    Scenario: dc2 resumes from a stale copy of the state when dc1 fails after replication was cut
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When snapshot replication from "dc1" to "dc2" is cut
      Then no failover happens for 15 seconds
      When the instance in "dc1" is stopped
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And the state check finds lost updates of more than 10 seconds
