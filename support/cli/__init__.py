"""``failover-tester``: make a project, run the failover features, drive the embedded lab, check configuration,
inject faults.

One module per verb in :data:`VERBS`. A verb module provides ``add_parser(subparsers)``, which registers its
sub-command and sets ``func`` (``args.func(args) -> exit code``) as a parser default; a verb whose arguments
belong to another program provides ``passthrough(argv) -> exit code`` instead and gets them unparsed. Adding
a verb = adding its module and its name here.

Exit codes: 0 success, 1 a failed check or run, 2 a usage or configuration problem (one line on stderr),
3 refused because another run holds the pair's lease (one line naming it; :mod:`support.lease`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from support.packaged import version

__all__ = ["VERBS", "build_parser", "main", "verb"]

#: The verbs, in ``--help`` order; each is the module ``support.cli.<name>``.
VERBS: tuple[str, ...] = ("init", "run", "abort", "judge", "report", "history", "compare", "dashboard", "lab",
                          "config", "faults", "doctor", "steps")


def verb(name: str) -> ModuleType:
    """The module of verb ``name``."""
    return importlib.import_module(f"{__name__}.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="failover-tester",
        description="Run the failover features, drive the embedded lab, check configuration, inject faults.",
    )
    parser.add_argument("--version", action="version", version=f"failover-tester {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(VERBS) + "}")
    for name in VERBS:
        verb(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in VERBS:
        module = verb(args_list[0])
        if hasattr(module, "passthrough"):
            code: int = module.passthrough(args_list[1:])
            return code
    parser = build_parser()
    args = parser.parse_args(args_list)
    result: int = args.func(args)
    return result
