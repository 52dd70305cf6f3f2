"""Parameter types of the step vocabulary: durations, counts and percentages become values before a step runs.

Importing this module registers the types with behave (once).
"""

from __future__ import annotations

from behave import register_type
from parse import with_pattern

from support.units import STEP_DURATION_PATTERN, parse_duration


@with_pattern(STEP_DURATION_PATTERN)
def parse_duration_text(text: str) -> float:
    """``30 seconds``, ``2 minutes``, ``500 ms`` -> seconds."""
    return parse_duration(text)


@with_pattern(r"\d+")
def parse_count(text: str) -> int:
    return int(text)


@with_pattern(r"\d+(?:\.\d+)?%")
def parse_percentage(text: str) -> float:
    """``30%`` -> 0.30"""
    return float(text.rstrip("%")) / 100.0


@with_pattern(r"\d+(?:\.\d+)?")
def parse_number(text: str) -> float:
    return float(text)


NOUN_PATTERN = r"[a-z][a-z0-9_-]*"


@with_pattern(NOUN_PATTERN)
def parse_noun(text: str) -> str:
    """The noun an application declares for its input (``orders``, ``readings``)."""
    return text


register_type(Duration=parse_duration_text, Count=parse_count, Percentage=parse_percentage, Number=parse_number,
              Noun=parse_noun)
