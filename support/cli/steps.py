"""``failover-tester steps``: the step vocabulary with descriptions and examples (``--markdown``: docs/steps.md)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "steps_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``steps`` (the verb registry of :mod:`support.cli` calls this)."""
    steps = sub.add_parser("steps", help="print every step of the vocabulary with its description and an example")
    steps.add_argument("--markdown", action="store_true", help="print the catalogue as Markdown (docs/steps.md)")
    steps.set_defaults(func=steps_command)


def steps_command(args: argparse.Namespace) -> int:
    from support.catalog import as_markdown, as_text, collect

    print((as_markdown if args.markdown else as_text)(collect()), end="")
    return 0
