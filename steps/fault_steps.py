"""Steps that inject faults. Every fault registers its heal before it exists."""

from typing import Any

from behave import when
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@when('the "{app}" job in "{dc}" is canceled')
def step_cancel_job(context: Context, app: Any, dc: Any) -> None:
    """Cancel the application's job through the data center's REST management API and wait until it is
    gone.

    Example: When the "orders" job in "dc1" is canceled
    """
    context.world.cancel_job(app, dc)
