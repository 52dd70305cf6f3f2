"""The passive side of an active/passive pair as the toolkit's passive sample runs it: a **standalone** process on
the DC host, not a Streams job (REST, JMX and the exporter never see it; only the host's process list does).

    /run/xdc-lab/bin/standalone -P configFileName=<cfg> -P shellScriptName=<script> [-P timerTickPeriod=60.0]

(`name=value` without `-P` works too, as in the sample's ``./standalone configFileName=... shellScriptName=...``.)
The wrapper execs ``python -m lab.stub`` in the network namespace it runs in: a DC host's sshd session is already
in that DC's namespace, and `lab up` starts it with ``ip netns exec``.

Like CrossDataCenterFailoverPassiveSample.spl:
- the CrossDataCenterFailover composite (alias ``CrossDCFailover``) reads its settings from the config file only
  (a standalone application has no application configuration), normally ``crossDCOperationMode=0``;
- every RemoteDataCenterStatus tuple traces "Received a notification about the remote data center ..." at error
  level; on every DOWN it runs ``shellScriptName`` like the toolkit's ``launch_app``: ``popen(script, "r")``
  (``sh -c``), reading the script's output until it ends. The status carries only a boolean, so an orderly
  shutdown of the remote launches the script too, (M+1)·H after its last heartbeat;
- a Beacon every ``timerTickPeriod`` seconds traces the local DC's name, mode and the remote's status.

The script gets the stub's PID as ``$PPID`` and as ``XDC_STUB_PID``. The lab's scripts stop the stub by that PID
(the reference script's ``pkill standalone`` would kill every process of that name on the host).
Defect ``no-takeover``: the stub traces the DOWN but does not run the script.

Trace: ``crossdc_dir(dc)/standalone-<pid>/trace.log``; truth events carry ``stub_pid``.
Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab import crossdc, crossdc_composite, paths, truth
from lab.peruntime import PEContext, Trace

MAIN_COMPOSITE = "orders::OrdersStandby"
#: the standby main composite of each lab application (`<app>::<App>Standby`): a standalone executable is built
#: from one application; the lab's single `standalone` program tells which from its config file's name
#: (`<app>-standby.cfg`, `<app>.cfg`, `<app>-...`; anything else: orders)
STANDBY_COMPOSITES: dict[str, str] = {"orders": MAIN_COMPOSITE, "telemetry": "telemetry::TelemetryStandby"}
OPS = crossdc.OpNames(crossdc.SAMPLE_ALIAS)
PID_ENV = "XDC_STUB_PID"


def local_dc() -> str:
    """The DC whose host address is local here (the DC's network namespace)."""
    dc = paths.local_dc()
    if dc is None:
        raise SystemExit("standalone: not on a DC host (no DC address is local here)")
    return dc


def main_composite(config_file: str) -> str:
    """The standby main composite the stub stands for, by its config file's name (see STANDBY_COMPOSITES)."""
    name = Path(config_file).name
    for app, composite in STANDBY_COMPOSITES.items():
        if name == f"{app}.cfg" or name.startswith(f"{app}-"):
            return composite
    return MAIN_COMPOSITE


def parse_args(argv: list[str]) -> dict[str, str]:
    """`-P name=value` / `name=value` arguments (the standalone executable's submission-time values)."""
    values: dict[str, str] = {}
    it = iter(argv)
    for arg in it:
        item = next(it, "") if arg == "-P" else arg.removeprefix("-P")
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"standalone: submission-time value {item!r} is not name=value")
        values[name] = value
    return values


class StubContext(PEContext):
    """A PE context for a process that is no PE: no job, no PE id; truth events say which stub process. Its trace
    also goes to the console (stderr), as a standalone application's does: whoever started the stub reads it there."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.trace = Trace(self.pe_dir / "trace.log", str(cfg.get("tracing") or "info"), echo=sys.stderr)

    def truth(self, component: str, event: str, **details: Any) -> None:
        truth.emit(self.dc, component, event, stub_pid=os.getpid(), job_name=self.job_name, **details)


class Stub(crossdc_composite.CrossDCApp):
    def __init__(self, ctx: PEContext, cfg: crossdc.Config, script: str, tick: float) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.script = script
        self.tick = tick
        self.remote_status = "First contact not yet made."
        self.crossdc = crossdc_composite.CrossDC(ctx, cfg, self, OPS)

    def _trace(self, msg: str, aspect: str = "Application_Logic") -> None:
        self.ctx.trace.log("ERROR", aspect, msg)

    def run(self) -> None:
        self.crossdc.start()
        self.ctx.truth(OPS.hb_watchdog, "stub_started", config_file=self.cfg.config_file, script=self.script)
        waiter = threading.Event()
        while not waiter.wait(self.tick):  # TimerSignalGenerator (Beacon, period timerTickPeriod)
            mode = "Active" if self.cfg.mode == 1 else "Passive"
            self._trace(
                f"Local Data Center={self.cfg.local}, Local DC Operation Mode={mode}, "
                f"Remote DC Status={self.remote_status}",
                aspect="TimerSignal",
            )

    def on_remote_status(self, up: bool, orderly: bool) -> None:
        self.remote_status = "Up and running." if up else "Down and not running."
        self._trace(crossdc.status_notification(up))
        if up:
            return
        if "no-takeover" in self.ctx.defects:
            self.ctx.truth(OPS.hb_watchdog, "failover_skipped", reason="defect no-takeover")
            return
        self.launch_app()

    def launch_app(self) -> int:
        """The toolkit's `launch_app`: popen the script (through `sh -c`), read its output to the end."""
        env = dict(os.environ, **{PID_ENV: str(os.getpid())})
        self.ctx.truth(OPS.hb_watchdog, "failover_launched", script=self.script)
        try:
            # the toolkit's popen(appName, "r") runs `sh -c appName`: the configured shellScriptName is a command
            # line for the shell, as it is there (quoting it would make it one word, unlike the real toolkit)
            proc = subprocess.Popen(
                ["/bin/sh", "-c", self.script],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            self.ctx.trace.log("INFO", "APP_LAUNCHER", f"Failure while launching {self.script}")
            self.ctx.truth(OPS.hb_watchdog, "failover_failed", script=self.script, detail=str(exc))
            return 1
        self.ctx.trace.log("DEBUG", "APP_LAUNCHER", f"Successfully launched {self.script}")
        assert proc.stdout is not None
        for line in proc.stdout:
            self.ctx.trace.log("TRACE", "APP_LAUNCHER", f"Result from launched application: {line}")
        rc = proc.wait()
        self.ctx.truth(OPS.hb_watchdog, "failover_script_done", script=self.script, rc=rc)
        return 0


def main(argv: list[str] | None = None) -> int:
    values = parse_args(sys.argv[1:] if argv is None else argv)
    dc = local_dc()
    config_file = values.get("configFileName", "")
    script = values.get("shellScriptName", "")
    tick = float(values.get("timerTickPeriod", "60.0"))
    trace_dir = paths.crossdc_dir(dc) / f"standalone-{os.getpid()}"
    trace_dir.mkdir(parents=True, exist_ok=True)
    ctx = StubContext(
        {
            "dc": dc,
            "job_id": "",
            "job_name": "standalone",
            "app": "standalone",
            "pe_id": "",
            "index": 0,
            "launch_count": 1,
            "params": values,
            "pe_dir": str(trace_dir),
            "tracing": values.get("tracing", "info"),
        }
    )
    composite = main_composite(config_file)
    cfg = crossdc.Config.load(dc, config_file, {}, composite)  # standalone: no application configuration
    print(f"standalone {composite} pid {os.getpid()} in {dc}: {cfg.describe()}", flush=True)
    started = time.time()
    try:
        Stub(ctx, cfg, script, tick).run()
    finally:
        print(f"standalone pid {os.getpid()} ends after {time.time() - started:.1f} s", flush=True)
    return 0


WRAPPER = """#!/bin/sh
# The passive stub of the embedded lab (written by `lab up`; see lab/stub.py): a standalone application, no job.
XDC_LAB_DEFECTS={defects} PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m lab.stub "$@"
"""


#: the failover scripts `lab up` writes per DC under crossdc_dir(dc) (`lab up --failover-script KIND`)
SCRIPTS: tuple[str, ...] = ("reference", "restoring")

REFERENCE = """#!/bin/sh
# Failover script of {dc}, modelled on the toolkit's etc/crossdc-failover.sh (written by `lab up`; lab/stub.py).
# The passive standalone application runs it when the remote data center goes DOWN: start the application in
# distributed mode here, then stop the standalone application.
# As in the reference, nothing restores the replicated state: the new job deletes the stored snapshots on its
# first tick (retainOlderDataSnapshotsAtStartup=false) and starts empty.
{streamtool} submitjob {bundle} -P configFileName={cfg} > {result} 2>&1
# The reference runs `pkill standalone`; the lab stops its own stub by PID ($PPID, as popen's child).
kill "${{XDC_STUB_PID:-$PPID}}"
"""

RESTORING = """#!/bin/bash
# Failover script of {dc} with the restore steps a team adds to etc/crossdc-failover.sh (written by `lab up`;
# lab/stub.py): the new job keeps the stored snapshots (retainOlderDataSnapshotsAtStartup=true) and gets them
# replayed (SendMeDataFromSnapshotFiles on its SpecialMessagePort, found through the name service). All output
# goes to files: the standalone application that reads this script's output is stopped half way.
dir={dir}
# 1. the application's config file with retain=true (the first line of a key wins: drop the existing one)
grep -v '^ *retainOlderDataSnapshotsAtStartup *=' {cfg} > "$dir/{app}-failover.cfg"
echo 'retainOlderDataSnapshotsAtStartup=true' >> "$dir/{app}-failover.cfg"
# 2. submit
rm -f "$dir/{prefix}failover-jobid.txt"
{streamtool} submitjob {bundle} -P configFileName="$dir/{app}-failover.cfg" \\
    --outfile "$dir/{prefix}failover-jobid.txt" > {result} 2>&1
submitted=$?
# 3. stop the standalone application by PID, as the reference does right after the submission: the new job
#    needs its HTTP ports (the reference's `pkill standalone` would hit any such process on the host)
kill "${{XDC_STUB_PID:-$PPID}}"
if [ "$submitted" -eq 0 ]; then
    job=$(cat "$dir/{prefix}failover-jobid.txt")
    # 4. wait (up to 60 s) for the job's SpecialMessagePort in the name service: `SpecialMessagePort host:port`
    entry=
    for _ in $(seq 600); do
        entry=$({streamtool} getnsentry SpecialMessagePort --jobs "$job" 2>/dev/null) && break
        sleep 0.1
    done
    addr=${{entry#* }}
    # 5. ask the new job to replay the stored snapshots
    if [ -n "$entry" ] && printf 'SendMeDataFromSnapshotFiles\\n' > "/dev/tcp/${{addr%:*}}/${{addr##*:}}"; then
        echo "sent SendMeDataFromSnapshotFiles to job $job at $addr" >> {result}
    else
        echo "no SpecialMessagePort of job $job: the state is not restored" >> {result}
    fi
fi
"""


def _prefix(app: str) -> str:
    """File name prefix of an application's failover files: none for orders (the lab's first application)."""
    return "" if app == "orders" else f"{app}-"


def script_path(dc: str, kind: str, app: str = "orders") -> Path:
    """`failover-<kind>.sh` (orders), `<app>-failover-<kind>.sh` (another application)."""
    return paths.crossdc_dir(dc) / f"{_prefix(app)}failover-{kind}.sh"


def install_scripts(dc: str, apps: tuple[str, ...] = ("orders",)) -> None:
    """Write both failover scripts of `dc` for each application (mode 0755, atomic): each submits the
    application's bundle with its config file `<app>.cfg`."""
    d = paths.crossdc_dir(dc)
    d.mkdir(parents=True, exist_ok=True)
    for app in apps:
        prefix = _prefix(app)
        fields = {
            "dc": dc,
            "dir": d,
            "app": app,
            "prefix": prefix,
            "streamtool": paths.bin_dir() / "streamtool",
            "bundle": paths.bundles_dir() / f"{app}.sab",
            "cfg": d / f"{app}.cfg",
            "result": d / f"{prefix}failover-result.txt",
        }
        for kind, template in (("reference", REFERENCE), ("restoring", RESTORING)):
            target = script_path(dc, kind, app)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(template.format(**fields))
            tmp.chmod(0o755)
            os.replace(tmp, target)


def install(defects: list[str]) -> Path:
    """Write ``bin_dir()/standalone`` (mode 0755, atomic)."""
    d = paths.bin_dir()
    d.mkdir(parents=True, exist_ok=True)
    target = d / "standalone"
    tmp = d / ".standalone.tmp"
    tmp.write_text(WRAPPER.format(defects=",".join(defects) or "''", root=paths.PROJECT_ROOT, python=sys.executable))
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


if __name__ == "__main__":
    sys.exit(main())
