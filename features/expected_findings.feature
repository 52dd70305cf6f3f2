@expected
Feature: A scenario states the loss a check must find
  As a Streams team hunting the weak points of our own failover
  I want a scenario that shows a real loss to say which check must catch it, and beyond what amount
  So that such a scenario passes only when the check really finds the loss, never because a failing step was excused

  Each of these steps runs the named check on the same evidence as its usual step, waited for alike, and passes
  only when that check finds the stated failure: when the check finds nothing, the step fails with what it measured
  (the loss was not caught), and when the check cannot judge, the step is not judged. The reports show the step as
  an expected finding with the measurement.

  Rule: The state check finds the updates lost by a failover script that only submits the application

    The toolkit's reference failover script runs `streamtool submitjob` and nothing else: the new job deletes the
    stored snapshots on its first tick and starts with an empty state.

    @job-cancel @reference-script
    Scenario: the state check finds the lost updates when dc2 takes over without the state of dc1
      Given the "orders-reference-script" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the "orders-reference-script" job in "dc1" is canceled
      Then the state check finds lost updates of more than 5 seconds
      And "dc2" takes over within 45 seconds
      And "dc2" starts without the state of "dc1"

  Rule: The loss check finds the orders an old active held when it stands down

    A hang longer than detection makes dc2 take over. The application's fencing makes the old active stand down
    once it resumes: the orders its hung aggregator had acknowledged never come out of either data center.

    @pe-hang @fencing
    Scenario: the loss check finds the orders the hung aggregator of dc1 held
      Given the "orders-fenced" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the processing element running "Aggregator" in "dc1" hangs for 10 seconds
      Then the loss check finds more than 100 acknowledged tuples lost
      And "dc2" takes over within 45 seconds
      And only one data center emits output at a time
