"""Checks on the recovery: takeover, recovery time, objectives."""

from typing import Any

from behave import then
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@then('"{dc}" takes over within {limit:Duration}')
def step_takes_over(context: Context, dc: Any, limit: Any) -> None:
    """The standby data center runs the application within the limit after the fault became effective. Waits until it
    takes over or the limit has passed.

    Example: Then "dc2" takes over within 45 seconds
    """
    context.world.claim("takeover", dc=context.world.datacenter(dc), within=limit)


@then('the loss of "{dc}" is detected within {limit:Duration}')
def step_detected(context: Context, dc: Any, limit: Any) -> None:
    """The standby's toolkit declares the lost data center DOWN within the limit after the fault became effective (read
    from the toolkit's heartbeat watchdog). Waits until DOWN is seen or the limit has passed.

    Example: Then the loss of "dc1" is detected within 3 seconds
    """
    context.world.claim("detection", lost=context.world.datacenter(dc), within=limit)


@then('"{dc}" does not take over for {duration:Duration}')
def step_no_takeover(context: Context, dc: Any, duration: Any) -> None:
    """The data center does not start running the application during the given time after the latest fault (or after
    this step, without one). It may still see its remote DOWN: after an orderly shutdown the toolkit reports
    DOWN with nothing to take over. Watches for the whole time; fails as soon as it takes over.

    Example: Then "dc2" does not take over for 10 seconds
    """
    context.world.claim("no_takeover", dc=context.world.datacenter(dc), duration=duration)


@then("no failover happens for {duration:Duration}")
def step_no_failover(context: Context, duration: Any) -> None:
    """Neither data center declares the other DOWN nor takes over during the given time after the latest fault (or
    after this step, without one). Watches for the whole time; fails as soon as one does.

    Example: Then no failover happens for 30 seconds
    """
    context.world.claim("no_failover", duration=duration)


@then("throughput returns to {fraction:Percentage} of the baseline within {limit:Duration}")
def step_throughput_back(context: Context, fraction: Any, limit: Any) -> None:
    """The output rate of all data centers, measured over metrics.throughput_window, is back to the stated share of the
    steady-state rate within the limit after the fault: from the new active's first output after a takeover,
    else from the fault (a fault that never lowered the throughput is back at once). Needs 'the system has been
    steady' first. Waits until throughput is back or the limit has passed.

    Example: Then throughput returns to 90% of the baseline within 30 seconds
    """
    context.world.claim("throughput", fraction=fraction, within=limit)


@then('only one data center emits output at a time')
def step_single_emitter(context: Context) -> None:
    """No customer's orders come out of two data centers in overlapping time (no split brain). Judged over the data
    window (see the data checks), with a settling period of at least twice metrics.split_brain_gap, so that an
    old active which resumes emitting after a heal is seen.

    Example: Then only one data center emits output at a time
    """
    context.world.claim("single_emitter")


@then('both data centers emit output at the same time')
def step_both_emit(context: Context) -> None:
    """Some customer's orders come out of two data centers in overlapping time: the split brain that the Cross-DC
    toolkit, which has no fencing, leaves after a partition or a hang once the standby took over. The verdict says
    for how many customers, how long and when, relative to the fault. Judged like "only one data center emits output
    at a time", of which it is the opposite.

    Example: Then both data centers emit output at the same time
    """
    context.world.claim("both_emit")


@then('both data centers run the application at the same time')
def step_both_run(context: Context) -> None:
    """When the standby took over, the old active still ran the application (its job was still listed as running
    at the toolkit monitor's latest look): the toolkit does not fence, so both data centers run it at once, and
    clients that still reach the old active get their orders processed there too. The verdict says when the
    takeover came and whether the old job ended later. Waits until the takeover or the scenario's time runs out.

    Example: Then both data centers run the application at the same time
    """
    context.world.claim("both_run")


@then("the recovery time is at most {limit:Duration}")
def step_recovery_time(context: Context, limit: Any) -> None:
    """Fault effective -> first output from the new active data center is within the limit. Waits until that output or
    the limit has passed.

    Example: Then the recovery time is at most 60 seconds
    """
    context.world.claim("recovery_time", limit=limit)


@then('the recovery meets the "{app}" objectives')
def step_objectives(context: Context, app: Any) -> None:
    """Recovery time, data loss and state loss meet the objectives configured for the application (objectives.<app>:
    rto, takeover, max_lost, max_duplicated, loss_window, state_loss_window, rpo, throughput_recovery with
    throughput_fraction); each is judged and waited for as its own step above would be.

    Example: Then the recovery meets the "orders" objectives
    """
    context.world.claim("objectives", app=context.world.application(app).name)
