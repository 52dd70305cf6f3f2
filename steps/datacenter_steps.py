"""Steps about where the application runs."""

from typing import Any

from behave import given, when
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@given("the Cross-DC toolkit exchanges heartbeats every {interval:Duration} and allows {misses:Count} missed "
       "heartbeats")
def step_toolkit_heartbeats(context: Context, interval: Any, misses: Any) -> None:
    """Deploy the application with these failure-detection settings of the toolkit (heartbeatExchangeInterval and
    consecutiveHeartbeatMissesAllowed), written where the toolkit reads them: its config files on each data
    center's first host (datacenters.<dc>.crossdc.config_files, over SSH; they take precedence), or the
    instances' application configuration CrossDCFailover (keys <main_composite>_<key>) when
    applications.<app>.crossdc.settings_via is app-config. The original settings are restored after the scenario.
    The toolkit reads its settings once, when it starts: comes before the step that deploys the application.

    Example: Given the Cross-DC toolkit exchanges heartbeats every 500 ms and allows 3 missed heartbeats
    """
    context.world.set_toolkit(heartbeatExchangeInterval=f"{interval:g}", consecutiveHeartbeatMissesAllowed=str(misses))


@given('the "{app}" application runs active in "{active}" with "{standby}" on standby')
def step_active_passive(context: Context, app: Any, active: Any, standby: Any) -> None:
    """Deploy the application active in one data center (submitted through REST) with the passive sample's
    standalone stub in the other (started over SSH with applications.<app>.standby.command), and wait until the
    application is healthy and its toolkit sees the stub UP.

    Example: Given the "orders" application runs active in "dc1" with "dc2" on standby
    """
    context.world.deploy_active_passive(app, active, standby)


@given('the "{app}" application runs active in both "{first}" and "{second}"')
def step_active_active(context: Context, app: Any, first: Any, second: Any) -> None:
    """Deploy the application active in both data centers (Cross-DC mode 1: each processes its own share of
    the customers and replicates its state to the other), and wait until both are healthy and see each other UP.

    Example: Given the "orders" application runs active in both "dc1" and "dc2"
    """
    context.world.deploy_active_active(app, first, second)


@when('"{dc}" comes back')
def step_comes_back(context: Context, dc: Any) -> None:
    """The data center returns to service: the faults on it are healed, what the outage left there is
    canceled, and it rejoins as the standby of the data center now running the application (its toolkit sees
    the active UP and holds a copy of its state). After both data centers were down, it rejoins in the role it
    had at the start, and snapshots kept through the outage go back to the data center they came from.

    Example: When "dc1" comes back
    """
    context.world.comes_back(dc)


@when('the application fails back to "{dc}"')
def step_fails_back(context: Context, dc: Any) -> None:
    """A planned failback: once the standby holds a fresh copy of the active's state, the active's job is
    canceled, so the standby's toolkit takes over with that state. Follow it with a takeover check.

    Example: When the application fails back to "dc1"
    """
    context.world.fail_back(dc)
