"""support.units: the one home of duration, seconds, size and rate parsing and formatting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.units import (
    DURATION_PATTERN,
    STEP_DURATION_PATTERN,
    format_duration,
    format_rate,
    format_seconds,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.json"


def test_the_duration_grammar_is_the_schemas() -> None:
    assert json.loads(SCHEMA.read_text())["$defs"]["duration"]["pattern"] == DURATION_PATTERN


@pytest.mark.parametrize(("text", "seconds"), [("500 ms", 0.5), ("30 seconds", 30.0), ("2 min", 120.0),
                                                ("1h", 3600.0), (" 1.5 minutes ", 90.0), (7, 7.0), ("0", 0.0)])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30 seconds", "2 minutes", "500 ms", "1.5 s", "1 min"])
def test_step_durations_are_a_subset_of_the_grammar(text: str) -> None:
    assert re.fullmatch(STEP_DURATION_PATTERN, text)
    assert re.match(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["30", "1h", "2 hours"])
def test_step_durations_need_a_unit_and_stop_at_minutes(text: str) -> None:
    assert re.fullmatch(STEP_DURATION_PATTERN, text) is None


def test_format_duration_reads_back() -> None:
    for seconds in (0.25, 1, 45.5, 125, 150, 7200):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(("args", "text"), [((1.5,), "1.50 s"), ((1.23456, 3), "1.235 s"), ((30, None), "30 s"),
                                            ((0.25, None), "0.25 s"), ((59.6, 0), "60 s"), ((None,), "–"),
                                            ((None, None, "none"), "none")])
def test_format_seconds(args: tuple[Any, ...], text: str) -> None:
    assert format_seconds(*args) == text


@pytest.mark.parametrize(("text", "size"), [("256 MiB", 256 * 1024**2), ("2 GB", 2 * 10**9), ("1 GiB", 1024**3),
                                            ("512", 512), (4096, 4096), ("1.5k", 1500), ("10 b", 10)])
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "-1 MB", "5 parsecs", True, -3])
def test_parse_size_rejects_nonsense(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(bad)


@pytest.mark.parametrize(("size", "text"), [(100, "100 B"), (1536, "1.5 KiB"), (1024**3, "1.0 GiB")])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(("text", "bits"), [("1mbit", 10**6), ("500 kbit", 500_000), ("10mbps", 80_000_000),
                                            ("2 gbit", 2 * 10**9), (64000, 64000), ("8bit", 8)])
def test_parse_rate(text: str | int, bits: int) -> None:
    assert parse_rate(text) == bits


@pytest.mark.parametrize("bad", ["fast", "0 mbit", "mbit", "1 parsec"])
def test_parse_rate_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(bad)


@pytest.mark.parametrize(("bits", "text"), [(10**6, "1 mbit"), (1_500_000, "1.5 mbit"), (64_000, "64 kbit"),
                                            (500, "500 bit")])
def test_format_rate_reads_back(bits: int, text: str) -> None:
    assert format_rate(bits) == text
    assert parse_rate(text) == bits
