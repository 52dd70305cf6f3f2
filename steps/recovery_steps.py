"""Checks on the recovery: takeover, recovery time, objectives."""

from typing import Any

from behave import then
from behave.runner import Context

from support import (
    measure,
    step_types,  # noqa: F401  (registers the parameter types)
)


@then('"{dc}" takes over within {limit:Duration}')
def step_takes_over(context: Context, dc: Any, limit: Any) -> None:
    """The standby data center runs the application within the limit after the fault became effective.

    Example: Then "dc2" takes over within 45 seconds
    """
    context.world.check(measure.check_takeover(context.world.takeover_seen(dc, limit), dc, limit))


@then('the loss of "{dc}" is detected within {limit:Duration}')
def step_detected(context: Context, dc: Any, limit: Any) -> None:
    """The standby's toolkit declares the lost data center DOWN within the limit after the fault became
    effective (read from the toolkit's heartbeat watchdog).

    Example: Then the loss of "dc1" is detected within 3 seconds
    """
    context.world.check(measure.check_detection(context.world.detection_seen(dc, limit), dc, limit))


@then('"{dc}" does not take over for {duration:Duration}')
def step_no_takeover(context: Context, dc: Any, duration: Any) -> None:
    """The data center does not start running the application during the given time after the fault. It
    may still see its remote DOWN: after an orderly shutdown the toolkit reports DOWN with nothing to take over.

    Example: Then "dc2" does not take over for 10 seconds
    """
    context.world.check(context.world.no_takeover(dc, duration))


@then("no failover happens for {duration:Duration}")
def step_no_failover(context: Context, duration: Any) -> None:
    """Neither data center declares the other DOWN nor takes over during the given time after the fault.

    Example: Then no failover happens for 30 seconds
    """
    context.world.check(context.world.no_failover(duration))


@then("throughput returns to {fraction:Percentage} of the baseline within {limit:Duration}")
def step_throughput_back(context: Context, fraction: Any, limit: Any) -> None:
    """The output rate, measured over a one-second window, is back to the given share of the steady-state
    rate (measured while the system was steady) within the limit after the fault.

    Example: Then throughput returns to 90% of the baseline within 30 seconds
    """
    context.world.check(measure.check_throughput(context.world.throughput_back(limit), fraction, limit))


@then('only one data center emits output at a time')
def step_single_emitter(context: Context) -> None:
    """No customer's orders come out of two data centers in overlapping time (no split brain). When the fault
    is over (healed, or given a duration such as a hang), the output is judged only once output has been
    watched for twice the split-brain gap after the heal, so that an old active which resumes emitting beside
    the new one is seen.

    Example: Then only one data center emits output at a time
    """
    context.world.watch_past_the_heal()
    context.world.check(measure.check_single_emitter(context.world.split_brain()))


@then("the recovery time is at most {limit:Duration}")
def step_recovery_time(context: Context, limit: Any) -> None:
    """Fault effective -> first output from the new active data center is within the limit.

    Example: Then the recovery time is at most 60 seconds
    """
    context.world.check(measure.check_recovery_time(context.world.output_resumed(limit), limit))


@then('the recovery meets the "{app}" objectives')
def step_objectives(context: Context, app: Any) -> None:
    """Recovery time, data loss and state loss meet the objectives configured for the application
    (``objectives.<app>``: rto, takeover, max_lost, max_duplicated, loss_window, state_loss_window, rpo,
    throughput_recovery with throughput_fraction).

    Example: Then the recovery meets the "orders" objectives
    """
    world = context.world
    objectives = world.objectives(app)
    timeline = world.output_resumed(float(objectives.get("rto", 60)))
    if "throughput_recovery" in objectives:
        timeline = world.throughput_back(float(objectives["throughput_recovery"]))
    state = world.state() if {"state_loss_window", "rpo"} & set(objectives) else None
    world.check(measure.check_objectives(app, timeline, world.delivery(), objectives, state))
