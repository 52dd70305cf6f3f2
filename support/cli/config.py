"""``failover-tester config validate|show [FILE] [--set KEY=VALUE ...]``.

Wire into the main parser with ``add_config_parser(subparsers)``; the parser's defaults carry
``func=config_command``. Exit codes: 0 valid, 2 configuration problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from support.config import ENV_VAR, Config, ConfigError, load_config

__all__ = ["add_config_parser", "add_parser", "config_command", "stop_condition_lines"]


def add_parser(subparsers: Any) -> None:
    """Register ``config`` (the verb registry of :mod:`support.cli` calls this)."""
    add_config_parser(subparsers)


def add_config_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``config`` command (``subparsers`` is what ``parser.add_subparsers()`` returned)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "config",
        help="validate or show a configuration",
        description="Validate or show a configuration file (secrets are always shown as ***).",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="{validate,show}", required=True)
    for name, text in (
        ("validate", "check a configuration file: schema, references, durations"),
        ("show", "print the resolved configuration as YAML, secrets as ***"),
    ):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument(
            "file",
            nargs="?",
            default=None,
            help=f"configuration file (default: ${ENV_VAR} or config/lab.yaml)",
        )
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one value, e.g. --set http.retries=5 (repeatable)",
        )
    parser.set_defaults(func=config_command)
    return parser


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def stop_condition_lines(config: Config) -> list[str]:
    """``run.stop_conditions`` for people: what each checks (none: no line)."""
    conditions = config.settings.run.stop_conditions
    if not conditions:
        return []
    lines = [f"stop conditions ({len(conditions)}), checked every second while a fault is in place:"]
    for condition in conditions:
        if condition.promql is not None:
            what = f"PromQL {condition.promql} (breached by any sample neither 0 nor NaN)"
        else:
            job = f" or its {condition.rest_application} job" if condition.rest_application else ""
            what = f"REST: the instance in {condition.rest_dc}{job} not healthy"
        name = f"{condition.name}: " if condition.name else ""
        lines.append(config.redact(f"  - {name}{what}"))
    return lines


def config_command(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``config validate`` or ``config show``; return the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        config = load_config(args.file, overrides=args.overrides or ())
    except ConfigError as exc:
        print(exc, file=err)
        return 2
    if args.config_action == "validate":
        dcs = _plural(len(config.settings.datacenters), "data center")
        apps = _plural(len(config.settings.applications), "application")
        print(f"{config.source}: valid ({dcs}, {apps})", file=out)
        for line in stop_condition_lines(config):
            print(line, file=out)
        return 0
    if args.config_action == "show":
        out.write(config.to_yaml(redacted=True))
        return 0
    print(f"config: unknown action {args.config_action!r} (expected validate or show)", file=err)
    return 2
