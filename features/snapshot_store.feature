@store
Feature: The copies of the state kept in the standby data center
  As the owner of the orders service
  I want to know what a takeover resumes from when the snapshots kept for it were lost or damaged
  So that the checks, not the customers, find out that the state did not survive

  The toolkit keeps the state it receives from the active data center as files in the standby's snapshot
  directory, and a takeover restores whatever those files hold: nothing when they are gone, other numbers when
  their bytes are damaged, since neither the toolkit nor the application checks what it reads back. Replication
  replaces the files every few seconds, so each scenario damages them once nothing can replace them any more:
  dc1's job is gone, and dc2 is allowed 10 missed heartbeats, so it declares dc1 down (and its failover
  script restores the files) about ten seconds after the store was damaged in a fraction of a second.

  Rule: A takeover from lost snapshots starts without the state, and the state check says so

    @job-cancel @requires.snapshot-dir
    Scenario: dc2 takes over without the state of dc1 when the snapshots it kept were lost
      Given the Cross-DC toolkit exchanges heartbeats every 1 second and allows 10 missed heartbeats
      And the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the "orders" job in "dc1" is canceled
      And the stored snapshots in "dc2" are lost
      Then "dc2" takes over within 45 seconds
      And the state check finds lost updates of more than 5 seconds

  Rule: A takeover from damaged snapshots resumes from a state that never was, and the restored-state check says so

    @job-cancel @requires.snapshot-dir
    Scenario: dc2 resumes from a state dc1 never had when the snapshots it kept were corrupted
      Given the Cross-DC toolkit exchanges heartbeats every 1 second and allows 10 missed heartbeats
      And the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 10 seconds
      When the "orders" job in "dc1" is canceled
      And the stored snapshots in "dc2" are corrupted
      Then "dc2" takes over within 45 seconds
      And the restored-state check finds that "dc2" did not resume from a consistent copy of the state of "dc1"
