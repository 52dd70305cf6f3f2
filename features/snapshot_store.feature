@store
Feature: The copies of the state kept in the standby data center
  As the owner of the orders service
  I want to know what a takeover resumes from when the snapshots kept for it were lost or damaged
  So that the checks, not the customers, find out that the state did not survive

  The toolkit keeps the state it receives from the active data center as files in the standby's snapshot
  directory, and a takeover restores whatever those files hold: nothing when they are gone, other numbers when
  their bytes are damaged, since neither the toolkit nor the application checks what it reads back. Replication
  replaces the files every few seconds, so each scenario damages them once nothing can replace them any more:
  both data centers are down (the standby's failover script cannot start the application in a stopped
  instance), the snapshots dc2 kept are lost or damaged, and when both come back dc2 hands what it kept back to
  dc1, as the toolkit's dual-outage recovery does.

  Rule: A takeover from lost snapshots starts without the state, and the state check says so

    @dual-outage @instance-stop @requires.snapshot-dir
    Scenario: dc1 resumes without its state when the snapshots dc2 kept for it were lost
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc2" is stopped
      And the instance in "dc1" is stopped
      And the stored snapshots in "dc2" are lost
      And "dc2" comes back
      And "dc1" comes back
      Then "dc1" takes over within 60 seconds
      And the state check finds lost updates of more than 5 seconds

  Rule: A takeover from damaged snapshots resumes from a state that never was, and the restored-state check says so

    @dual-outage @instance-stop @requires.snapshot-dir
    Scenario: dc1 resumes from a state it never had when the snapshots dc2 kept for it were corrupted
      Given the "orders" application runs active in "dc1" with "dc2" on standby
      And orders flow at 200 tuples per second
      And the system has been steady for 5 seconds
      When the instance in "dc2" is stopped
      And the instance in "dc1" is stopped
      And the stored snapshots in "dc2" are corrupted
      And "dc2" comes back
      And "dc1" comes back
      Then "dc1" takes over within 60 seconds
      And the restored-state check finds that "dc1" did not resume from a consistent copy of the state of "dc1"
