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
