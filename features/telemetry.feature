@telemetry
Feature: Device readings survive the loss of a data center
  As the owner of the telemetry service
  I want every device's reading count and peak to survive a failover, a partition and a crashed process
  So that no peak is forgotten when a data center goes away

  The telemetry application has another shape than orders: its readings carry the tester's tracking fields
  under its own names, its alerts carry only the device, the tracking id, the count of readings and the peak,
  and it passes no checksum through.

  Rule: When the telemetry job in dc1 is canceled, dc2 takes over with the readings dc1 replicated

    @job-cancel
    Scenario: dc2 takes over with the device peaks when the telemetry job in dc1 is canceled
      Given the "telemetry" application runs active in "dc1" with "dc2" on standby
      And readings flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the "telemetry" job in "dc1" is canceled
      Then "dc2" takes over within 45 seconds
      And the recovery time is at most 60 seconds
      And "dc2" resumes from a consistent copy of the state of "dc1"
      And at most 5 seconds of state updates are lost
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice

  Rule: The toolkit does not fence: after a partition both data centers run the telemetry application

    @partition @split-brain
    Scenario: dc2 takes over when the network between dc1 and dc2 is partitioned, while dc1 keeps running
      Given the "telemetry" application runs active in "dc1" with "dc2" on standby
      And readings flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the network between "dc1" and "dc2" is partitioned
      Then "dc2" takes over within 45 seconds
      And no acknowledged tuple is lost
      And both data centers run the application at the same time

  Rule: A killed processing element restarts in place, without a cross-DC failover

    @pe-kill
    Scenario: the peak tracker restarts in dc1 when its processing element is killed
      Given the "telemetry" application runs active in "dc1" with "dc2" on standby
      And readings flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the processing element running "Peak" in "dc1" is killed
      Then no failover happens for 10 seconds

  Rule: Once dc1 is back, the readings fail back to it with the peaks dc2 built up

    @failback @instance-stop
    Scenario: readings fail back to dc1 once it is back
      Given the "telemetry" application runs active in "dc1" with "dc2" on standby
      And readings flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc1" is stopped
      Then "dc2" takes over within 30 seconds
      When "dc1" comes back
      And the application fails back to "dc1"
      Then "dc1" takes over within 30 seconds
      And "dc1" resumes from a consistent copy of the state of "dc2"
      And at most 50 acknowledged tuples are lost
      And no tuple is delivered twice
