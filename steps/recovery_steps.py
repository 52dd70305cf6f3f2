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


@then("the recovery time is at most {limit:Duration}")
def step_recovery_time(context: Context, limit: Any) -> None:
    """Fault effective -> first output from the new active data center is within the limit.

    Example: Then the recovery time is at most 60 seconds
    """
    context.world.check(measure.check_recovery_time(context.world.output_resumed(limit), limit))


@then('the recovery meets the "{app}" objectives')
def step_objectives(context: Context, app: Any) -> None:
    """Recovery time and data loss meet the objectives configured for the application (``objectives.<app>``).

    Example: Then the recovery meets the "orders" objectives
    """
    world = context.world
    objectives = world.objectives(app)
    timeline = world.output_resumed(float(objectives.get("rto", 60)))
    world.check(measure.check_objectives(app, timeline, world.delivery(), objectives))
