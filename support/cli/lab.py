"""``failover-tester lab ...``: the embedded lab's own CLI (a separate package, reached as a program)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["add_parser", "lab_command", "passthrough"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``lab`` for ``--help``; its arguments go to ``python -m lab`` untouched (see :func:`passthrough`)."""
    sub.add_parser("lab", help="the embedded two-DC lab: up | down | status | logs (needs root)", add_help=False)


def lab_command(argv: Sequence[str]) -> int:
    """Run ``python -m lab ARGV`` and return its exit code."""
    return subprocess.call([sys.executable, "-m", "lab", *argv])


#: ``failover-tester lab ARGS``: ARGS are not parsed here but handed over whole.
passthrough = lab_command
