"""Steps about where the application runs."""

from typing import Any

from behave import given
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@given('the "{app}" application runs active in "{active}" with "{standby}" on standby')
def step_active_passive(context: Context, app: Any, active: Any, standby: Any) -> None:
    """Deploy the application active in one data center with its passive stub in the other, and wait
    until both are healthy and the toolkit on each side sees the other UP.

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
