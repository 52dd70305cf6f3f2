@dark @requires.iptables @requires.ss
Feature: Orders survive a data center going dark
  As the owner of the orders service
  I want dc2 to take over when dc1 loses power, and dc1 to rejoin once its power is back
  So that a lost data center costs the orders a bounded pause and a bounded loss, and nothing more

  A data center that goes dark loses every process of the application at the same instant and answers nobody:
  not the other data center, not the clients, not the management API. Nothing restarts the application there
  until its power is back.

  Rule: The standby takes over a dark data center with the state it last received

    @dark
    Scenario: dc2 takes over when dc1 goes dark
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When "dc1" goes dark
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And at most 50 acknowledged tuples are lost
      And the data loss window is at most 5 seconds
      And at most 5 seconds of state updates are lost

  Rule: A data center that comes back after going dark rejoins as the standby of the one that took over

    When its power is back, dc1's instance finds the orders job it ran and restarts its processes, as a
    Streams instance does when it recovers its jobs: the old active runs the application again next to dc2,
    and the toolkit does not fence it. Coming back cancels that job and starts the standby in dc1, which then
    receives dc2's state.

    @dark @failback
    Scenario: dc1 comes back after going dark and the orders fail back to it
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When "dc1" goes dark
      Then "dc2" takes over within 45 seconds
      When "dc1" comes back
      And the application fails back to "dc1"
      Then "dc1" takes over within 30 seconds
      And throughput returns to 90% of the baseline within 10 seconds
      And "dc1" resumes from a consistent copy of the state of "dc2"
      And no tuple is delivered twice
