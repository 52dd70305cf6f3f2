@crashloop
Feature: Orders survive a processing element that keeps crashing
  As the owner of the orders service
  I want a processing element that crashes each time it is restarted to end in a takeover by the standby
  So that a crash loop stops the orders no longer than a failover takes

  Rule: The aggregator's processing element also runs the Cross-DC composite: while it keeps crashing dc1 sends no
  heartbeats, the instance gives up on it after its automatic restarts (stopped, reason failure) and dc2 takes
  over; dc1's job stays listed as running without it, since the toolkit does not fence. Orders that dc1's
  source acknowledged after the first crash never come out: they reached no aggregator

    @pe-crash-loop
    Scenario: dc2 takes over when the aggregator in dc1 keeps crashing until the instance gives up on it
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the processing element running "Aggregator" in "dc1" keeps crashing
      Then "dc2" takes over within 45 seconds
      And both data centers run the application at the same time
      And the recovery time is at most 60 seconds
      And the loss check finds more than 100 acknowledged tuples lost
