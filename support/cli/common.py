"""What several verbs share: loading the configuration from ``--config``/``--set``, the REST clients."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from support.config import Config, ConfigError, load_config
from support.streams.rest import StreamsRestClient

__all__ = ["load", "reports_dir", "rest_clients"]


def load(args: argparse.Namespace, err: TextIO) -> Config | None:
    """The configuration of ``args.config`` with ``args.set`` applied; None (one line on ``err``) on error."""
    try:
        return load_config(args.config, args.set)
    except ConfigError as exc:
        print(exc, file=err)
        return None


def reports_dir(args: argparse.Namespace, err: TextIO) -> Path | None:
    """``--reports-dir``, else the configuration's ``run.reports_dir``; None (one line on ``err``) when the
    configuration does not load."""
    if args.reports_dir:
        return Path(args.reports_dir)
    config = load(args, err)
    return None if config is None else Path(config.settings.run.reports_dir)


def rest_clients(config: Config) -> dict[str, StreamsRestClient]:
    """One REST management client per configured data center."""
    return {dc: StreamsRestClient.from_settings(config.settings, dc) for dc in config.settings.datacenters}
