"""Steps about the application's input flowing through it."""

from typing import Any

from behave import given
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@given("{noun:Noun} flow at {rate:Count} tuples per second")
def step_orders_flow(context: Context, noun: str, rate: Any) -> None:
    """Start injecting the application's input at a steady rate through the data exchange endpoints of the active
    data center, and retrieving the outputs of every data center; both are written to ledgers as they go. The noun
    is the one the deployed application declares for its input (``applications.<app>.data.noun``: ``orders`` for
    orders, ``readings`` for telemetry); a noun no application declares fails the scenario before it starts.

    Example: Given orders flow at 200 tuples per second
    """
    context.world.start_traffic(rate, noun)


@given("the system has been steady for {duration:Duration}")
def step_steady(context: Context, duration: Any) -> None:
    """Wait until output has been flowing without a gap for the given time (a condition, not a sleep).

    Example: Given the system has been steady for 10 seconds
    """
    context.world.wait_steady(duration)
