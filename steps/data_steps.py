"""Checks on the data: nothing acknowledged lost, nothing delivered twice, order and state preserved."""

from typing import Any

from behave import then
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@then("no acknowledged tuple is lost")
def step_none_lost(context: Context) -> None:
    """Every tuple the application acknowledged came out (unknown outcomes may go either way). Judged over the data
    window: the traffic from its start through the fault, the recovery (the new active's first output after a
    takeover, else the output back to the configured share of the baseline) and the end of the fault when it
    ends within the scenario, plus metrics.settle_period; the step waits until that window is recorded and its
    output is in (at most traffic.drain_timeout), and says 'not judged' if the scenario's time
    (run.scenario_timeout) runs out first. Traffic keeps flowing.

    Example: Then no acknowledged tuple is lost
    """
    context.world.claim("lost", limit=0)


@then("at most {limit:Count} acknowledged tuples are lost")
def step_at_most_lost(context: Context, limit: Any) -> None:
    """At most the given number of acknowledged tuples never came out. Judged over the data window: the traffic from
    its start through the fault, the recovery (the new active's first output after a takeover, else the output
    back to the configured share of the baseline) and the end of the fault when it ends within the scenario,
    plus metrics.settle_period; the step waits until that window is recorded and its output is in (at most
    traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs out first.
    Traffic keeps flowing.

    Example: Then at most 50 acknowledged tuples are lost
    """
    context.world.claim("lost", limit=limit)


@then("the loss check finds more than {count:Number} acknowledged tuples lost")
def step_expect_lost(context: Context, count: Any) -> None:
    """An expected finding: the scenario shows the loss check catching a real loss. Runs the check of "at most ...
    acknowledged tuples are lost" on the same data window, waited for alike, and passes only when it finds more
    acknowledged tuples lost than stated; fails, with the count it measured, when it finds that many or fewer (the
    loss was not caught); 'not judged', never passed, when the window is not recorded. The reports show it as an
    expected finding with the count.

    Example: Then the loss check finds more than 100 acknowledged tuples lost
    """
    context.world.claim("expected_lost", limit=count)


@then("the data loss window is at most {limit:Duration}")
def step_loss_window(context: Context, limit: Any) -> None:
    """The lost acknowledged tuples were sent within a window no longer than the limit. Judged over the data window:
    the traffic from its start through the fault, the recovery (the new active's first output after a takeover,
    else the output back to the configured share of the baseline) and the end of the fault when it ends within
    the scenario, plus metrics.settle_period; the step waits until that window is recorded and its output is in
    (at most traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs
    out first. Traffic keeps flowing.

    Example: Then the data loss window is at most 5 seconds
    """
    context.world.claim("loss_window", limit=limit)


@then("every tuple is delivered at least once")
def step_at_least_once(context: Context) -> None:
    """Every acknowledged tuple came out at least once. Judged over the data window: the traffic from its start through
    the fault, the recovery (the new active's first output after a takeover, else the output back to the
    configured share of the baseline) and the end of the fault when it ends within the scenario, plus
    metrics.settle_period; the step waits until that window is recorded and its output is in (at most
    traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs out first.
    Traffic keeps flowing.

    Example: Then every tuple is delivered at least once
    """
    context.world.claim("at_least_once")


@then("no tuple is delivered twice")
def step_no_duplicates(context: Context) -> None:
    """No tuple came out more than once, from any data center. Judged over the data window: the traffic from its start
    through the fault, the recovery (the new active's first output after a takeover, else the output back to the
    configured share of the baseline) and the end of the fault when it ends within the scenario, plus
    metrics.settle_period; the step waits until that window is recorded and its output is in (at most
    traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs out first.
    Traffic keeps flowing.

    Example: Then no tuple is delivered twice
    """
    context.world.claim("duplicated", limit=0)


@then("every tuple that comes out is intact and was accepted")
def step_integrity(context: Context) -> None:
    """No output tuple was altered (its checksum still matches), none came out although the application refused it when
    it was sent (a phantom), and none came out that was never sent. Judged over the data window: the traffic
    from its start through the fault, the recovery (the new active's first output after a takeover, else the
    output back to the configured share of the baseline) and the end of the fault when it ends within the
    scenario, plus metrics.settle_period; the step waits until that window is recorded and its output is in (at
    most traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs out
    first. Traffic keeps flowing.

    Example: Then every tuple that comes out is intact and was accepted
    """
    context.world.claim("integrity")


@then("every tuple sent gets a definite answer")
def step_definite_answer(context: Context) -> None:
    """Every send was either acknowledged or refused: none was left without an answer (the connection dropped or timed
    out after the request went out), which would leave the sender unable to tell whether it was taken. Judged
    over the data window: the traffic from its start through the fault, the recovery (the new active's first
    output after a takeover, else the output back to the configured share of the baseline) and the end of the
    fault when it ends within the scenario, plus metrics.settle_period; the step waits until that window is
    recorded and its output is in (at most traffic.drain_timeout), and says 'not judged' if the scenario's time
    (run.scenario_timeout) runs out first. Traffic keeps flowing.

    Example: Then every tuple sent gets a definite answer
    """
    context.world.claim("unknown", limit=0)


@then("the order of tuples per key is preserved")
def step_order(context: Context) -> None:
    """Each data center emitted every customer's orders in the order they were sent (duplicates aside). Judged over the
    data window: the traffic from its start through the fault, the recovery (the new active's first output after
    a takeover, else the output back to the configured share of the baseline) and the end of the fault when it
    ends within the scenario, plus metrics.settle_period; the step waits until that window is recorded and its
    output is in (at most traffic.drain_timeout), and says 'not judged' if the scenario's time
    (run.scenario_timeout) runs out first. Traffic keeps flowing.

    Example: Then the order of tuples per key is preserved
    """
    context.world.claim("order")


@then('"{new}" resumes from a consistent copy of the state of "{old}"')
def step_consistent_state(context: Context, new: Any, old: Any) -> None:
    """For every customer, the state the new active data center resumed from (seen in its first outputs) is a state the
    old active really had at some point, or empty if it was never replicated; 'not judged' when the new active
    emitted nothing for the old one's customers. Judged over the data window: the traffic from its start through
    the fault, the recovery (the new active's first output after a takeover, else the output back to the
    configured share of the baseline) and the end of the fault when it ends within the scenario, plus
    metrics.settle_period; the step waits until that window is recorded and its output is in (at most
    traffic.drain_timeout), and says 'not judged' if the scenario's time (run.scenario_timeout) runs out first.
    Traffic keeps flowing.

    Example: Then "dc2" resumes from a consistent copy of the state of "dc1"
    """
    world = context.world
    world.claim("consistent_state", new=world.datacenter(new), old=world.datacenter(old))


@then('"{new}" starts without the state of "{old}"')
def step_state_not_inherited(context: Context, new: Any, old: Any) -> None:
    """For every customer of the old active, the new active data center started from an empty state (its first
    outputs count from zero): what happens when the standby's failover script submits the application without
    handing it the stored snapshots, as the toolkit's reference script does. Fails for each customer that resumed
    from the old active's state; 'not judged' when the new active emitted nothing for the old one's customers.
    Judged over the same data window as "resumes from a consistent copy of the state".

    Example: Then "dc2" starts without the state of "dc1"
    """
    world = context.world
    world.claim("state_not_inherited", new=world.datacenter(new), old=world.datacenter(old))


@then("at most {limit:Duration} of state updates are lost")
def step_state_loss(context: Context, limit: Any) -> None:
    """The old active's state updates that the new active did not inherit span no more than the limit. Judged over the
    data window: the traffic from its start through the fault, the recovery (the new active's first output after
    a takeover, else the output back to the configured share of the baseline) and the end of the fault when it
    ends within the scenario, plus metrics.settle_period; the step waits until that window is recorded and its
    output is in (at most traffic.drain_timeout), and says 'not judged' if the scenario's time
    (run.scenario_timeout) runs out first. Traffic keeps flowing.

    Example: Then at most 5 seconds of state updates are lost
    """
    context.world.claim("state_loss", limit=limit)


@then("the state check finds lost updates of more than {limit:Duration}")
def step_expect_state_loss(context: Context, limit: Any) -> None:
    """An expected finding: the scenario shows the state check catching a real loss of state. Runs the check of "at
    most ... of state updates are lost" on the same data window, waited for alike, and passes only when the state
    loss window it measures is longer than the limit, or when keys restarted empty although the toolkit monitor
    saw their state replicated to the new active (lost beyond any limit); fails, with the window it measured, when
    the loss is within the limit (the loss was not caught); 'not judged', never passed, when the state cannot be
    judged (no state declared, no takeover, no output of the new active for the old one's keys).

    Example: Then the state check finds lost updates of more than 5 seconds
    """
    context.world.claim("expected_state_loss", limit=limit)


@then('the restored-state check finds that "{new}" did not resume from a consistent copy of the state of "{old}"')
def step_expect_inconsistent_state(context: Context, new: Any, old: Any) -> None:
    """An expected finding: the scenario shows the restored-state check catching a state the old active never had.
    Runs the check of "resumes from a consistent copy of the state" on the same data window, waited for alike, and
    passes only when it finds keys whose restored state the old active never had (the keys, their restored and
    reached counts and the reason are its evidence); fails when every key resumed from a state the old active
    really had, or from empty (the copy is consistent: nothing was caught); 'not judged', never passed, when the
    state cannot be judged.

    Example: Then the restored-state check finds that "dc2" did not resume from a consistent copy of the state of "dc1"
    """
    world = context.world
    world.claim("expected_inconsistent_state", new=world.datacenter(new), old=world.datacenter(old))
