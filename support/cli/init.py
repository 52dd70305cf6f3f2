"""``failover-tester init [DIR]``: make a project of failover tests (see :mod:`support.scaffold`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "init_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``init`` (the verb registry of :mod:`support.cli` calls this)."""
    init = sub.add_parser("init", help="make a project: lab and real-pair configs, example features, behave glue")
    init.add_argument("dir", nargs="?", default=".", help="the project folder (created if missing; default: here)")
    init.set_defaults(func=init_command)


def init_command(args: argparse.Namespace) -> int:
    from support.scaffold import scaffold

    target = Path(args.dir)
    try:
        written = scaffold(target)
    except (FileExistsError, OSError) as exc:
        print(f"init: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"  {path}")
    print(f"init: a failover-test project in {target}; in it, as root:")
    print("  failover-tester lab up && failover-tester run --tags @smoke")
    print("then fill in config/pair.yaml for your own pair (README.md)")
    return 0
