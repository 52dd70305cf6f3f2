@detection
Feature: Failure detection follows the toolkit's heartbeat settings
  As the owner of the orders service
  I want to know how fast a lost data center is detected with the heartbeat settings we might choose
  So that we pick settings that meet the recovery objective without failing over on a glitch

  Rule: A lost data center is declared down after the allowed heartbeats are missed

    @job-cancel @heartbeat-sweep
    Scenario Outline: dc2 detects the loss of dc1 with heartbeats every <interval> and <misses> misses allowed
      Given the Cross-DC toolkit exchanges heartbeats every <interval> and allows <misses> missed heartbeats
      And the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 4 seconds
      When the "orders" job in "dc1" is canceled
      Then the loss of "dc1" is detected within <detected>
      And "dc2" takes over within <takeover>
      And the recovery time is at most <recovery>
      And at most 50 acknowledged tuples are lost

      Examples:
        | interval | misses | detected    | takeover  | recovery   |
        | 250 ms   | 2      | 1.5 seconds | 5 seconds | 8 seconds  |
        | 500 ms   | 3      | 3 seconds   | 6 seconds | 10 seconds |
        | 1 second | 2      | 4.5 seconds | 8 seconds | 12 seconds |
