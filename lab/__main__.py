"""CLI: `python -m lab up [--defect NAME[,NAME]] [--scrape-interval 10s] [--failover-script reference|restoring]
[--bastion] | down | status [--json] | logs [COMPONENT]
| reset [--mode M] [--failover-script reference|restoring] [--fencing] | skew [--dc DC --by SECONDS]`."""

from __future__ import annotations

import argparse
import sys

from lab import clock, control, lease, paths, prometheus, stub, views


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="embedded two-DC Teracloud Streams lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="bring the lab up (idempotent) with the default deployment")
    p_up.add_argument("--defect", action="append", default=[], metavar="NAME[,NAME]", help="defect switches")
    p_up.add_argument(
        "--failover-script",
        choices=stub.SCRIPTS,
        default=control.DEFAULT_SCRIPT,
        help="what the passive stub runs on DOWN: reference (submit only, like etc/crossdc-failover.sh) or "
        "restoring (submit with retain=true, then SendMeDataFromSnapshotFiles; default)",
    )
    p_up.add_argument(
        "--scrape-interval",
        default=prometheus.duration(prometheus.DEFAULT_INTERVAL),
        metavar="DURATION",
        help="the lab Prometheus' scrape interval, e.g. 10s (default, as the exporter's sample config), 1s, 500ms",
    )
    p_up.add_argument(
        "--bastion",
        action="store_true",
        help="bastion mode: the DC hosts' SSH port answers only the bastion (xdc-bastion, 198.18.3.10); "
        "`lab up` without it switches back (no rebuild)",
    )
    sub.add_parser("down", help="stop everything the lab started and remove its state")
    p_status = sub.add_parser("status", help="components and their health")
    p_status.add_argument("--json", action="store_true")
    p_logs = sub.add_parser("logs", help="print a component's log (no argument: list components)")
    p_logs.add_argument("component", nargs="?")
    p_reset = sub.add_parser("reset", help="restore a deployment through REST (tests/ops)")
    p_reset.add_argument(
        "--mode",
        default="active-passive",
        help="active-passive: the application in dc1 + the standalone passive stub in dc2 (default); "
        "active-active: the application in both",
    )
    p_reset.add_argument(
        "--app",
        choices=control.APPLICATIONS,
        default=control.DEFAULT_APP,
        help="the application to deploy (default orders; both use the DC's toolkit ports, so one at a time)",
    )
    p_reset.add_argument("--failover-script", choices=stub.SCRIPTS, default=None, help="default: the one in force")
    p_reset.add_argument(
        "--fencing",
        action="store_true",
        help="submit the application with fencing=true (an application that fences itself)",
    )
    p_skew = sub.add_parser("skew", help="shift the times one data center reports (no argument: show the skews)")
    p_skew.add_argument("--dc", choices=paths.DCS, help="the data center whose reported times to shift")
    p_skew.add_argument("--by", metavar="SECONDS",
                        help="e.g. 2.5s, --by=-1500ms (a negative value needs the = form), 0 (back to true time)")
    args = parser.parse_args(argv)
    if args.cmd in ("up", "down"):
        control.check_root()
        try:
            lease.take(f"lab {args.cmd}")  # held until this process ends: nobody rebuilds the lab under a run
        except lease.Held as exc:
            print(f"lab {args.cmd}: refused: {exc}", file=sys.stderr)
            return lease.REFUSED
    if args.cmd == "up":
        try:
            interval = prometheus.parse_interval(args.scrape_interval)
        except ValueError as exc:
            parser.error(str(exc))
        control.check_root()
        return control.up(control.parse_defects(args.defect), args.failover_script, interval, args.bastion)
    if args.cmd == "down":
        return control.down()
    if args.cmd == "status":
        return views.status(args.json)
    if args.cmd == "logs":
        return views.logs(args.component)
    if args.cmd == "skew":
        return skew(parser, args.dc, args.by)
    if args.cmd == "reset":
        if args.mode not in control.DEPLOYMENTS:
            known = ", ".join(sorted(control.DEPLOYMENTS))
            print(f"lab: unknown --mode {args.mode!r} (known: {known})", file=sys.stderr)
            return 2
        return control.reset(args.mode, args.failover_script, args.fencing, args.app)
    parser.error(f"unknown command {args.cmd}")
    return 2


def skew(parser: argparse.ArgumentParser, dc: str | None, by: str | None) -> int:
    """`python -m lab skew --dc dc2 --by 3s`: dc2's REST, data exchange, output tuples and trace lines report
    times 3 s ahead of true time, from now on (lab/clock.py). Without arguments: the skews in force."""
    if dc is None and by is None:
        print(clock.describe())
        return 0
    if dc is None or by is None:
        parser.error("skew: give both --dc and --by (or neither, to show the skews)")
    try:
        seconds = clock.parse_seconds(by)
    except ValueError:
        parser.error(f"skew: --by {by!r} is no duration (e.g. 2.5s, -1500ms, 0)")
    if not paths.LAB_DIR.is_dir():
        print("lab: not up; run `python -m lab up`", file=sys.stderr)
        return 1
    clock.set_skew(dc, seconds)
    print(f"lab: {dc} reports times {seconds:+g} s off true time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
