@process
Feature: Orders survive failures of the application's processes
  As the owner of the orders service
  I want a crashed process to be restarted where it runs, and a stuck one to be replaced by the standby
  So that a single failing process never stops the orders for long

  Rule: A killed processing element restarts in place, without a cross-DC failover

    @pe-kill
    Scenario: the aggregator restarts in dc1 when its processing element is killed
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the processing element running "Aggregator" in "dc1" is killed
      Then no failover happens for 10 seconds

  Rule: A processing element that hangs longer than detection is replaced by the standby; without fencing the
  old active emits again when it resumes

    @pe-hang @split-brain
    Scenario: dc2 takes over when the aggregator in dc1 hangs, and both emit after it resumes
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the processing element running "Aggregator" in "dc1" hangs for 10 seconds
      Then "dc2" takes over within 45 seconds
      And both data centers emit output at the same time

    @pe-hang @split-brain @fencing
    Scenario: dc2 takes over when the aggregator in dc1 hangs, and only dc2 emits after it resumes, if the application fences itself
      Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the processing element running "Aggregator" in "dc1" hangs for 10 seconds
      Then "dc2" takes over within 45 seconds
      And only one data center emits output at a time
