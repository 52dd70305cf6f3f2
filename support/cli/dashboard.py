"""``failover-tester dashboard``: a web dashboard over the history of runs (``--static DIR``: the same pages as
files).

The history is the SQLite store of :mod:`support.history.schema` (default ``<run.reports_dir>/history.sqlite``);
the reports folder also names the live run (``running.json``) and holds the runs' reports, which the dashboard
links. The server is read-only and listens on 127.0.0.1 unless told otherwise. See docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from support.cli.common import reports_dir
from support.history.schema import default_db_path

__all__ = ["DEFAULT_PORT", "add_parser", "dashboard_command"]

DEFAULT_PORT = 8765


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``dashboard`` (the verb registry of :mod:`support.cli` calls this)."""
    dash = sub.add_parser("dashboard", help="serve a web dashboard over the history of runs (or write it as files)")
    dash.set_defaults(func=dashboard_command)
    dash.add_argument("--db", metavar="FILE", help="the history store (default <reports dir>/history.sqlite)")
    dash.add_argument("--reports-dir", metavar="DIR",
                      help="run.reports_dir: the live run, the runs' reports (default: from the config)")
    dash.add_argument("--config", help="config file (default config/lab.yaml or $FAILOVER_TESTER_CONFIG); read "
                                       "only for run.reports_dir when --reports-dir is not given")
    dash.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    dash.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    dash.add_argument("--static", metavar="DIR",
                      help="write the pages, their assets and copies of the runs' reports into DIR and exit")


def dashboard_command(args: argparse.Namespace) -> int:
    from support.dashboard.assets import uplot_dir
    from support.dashboard.live import LiveView
    from support.dashboard.pages import Site, write_static
    from support.dashboard.server import make_server
    from support.dashboard.store import History

    reports = reports_dir(args, sys.stderr)
    if reports is None:
        return 2
    db = Path(args.db) if args.db else default_db_path(reports)
    if args.db and not db.is_file():
        print(f"dashboard: {db}: no such history store", file=sys.stderr)
        return 2
    if uplot_dir() is None:
        print("dashboard: uPlot not found (run `npm ci` in the checkout): the pages will have no charts",
              file=sys.stderr)
    history = History(db)
    if args.static:
        out = Path(args.static)
        written = write_static(Site(history, reports, served=False), out)
        print(f"dashboard: {len(written)} files in {out} (open {out / 'index.html'})")
        return 0
    try:
        server = make_server(Site(history, reports, served=True), LiveView(reports), args.host, args.port)
    except OSError as exc:
        print(f"dashboard: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = server.server_address[1]
    print(f"dashboard: http://{args.host}:{port}/  (history {db}, reports {reports}; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
