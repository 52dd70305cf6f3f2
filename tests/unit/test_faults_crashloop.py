"""``pe-crash-loop`` and ``clients-cut`` without the lab: the crash loop's host program run for real against a
supervisor that relaunches its child, the scripts and refusals of both kinds, the controller-side connect probe."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultfakes import fake_context, lab_shaped_config

from support.faults.base import FaultRefused
from support.faults.clients import ClientsCut, connect, endpoint_of
from support.faults.crashloop import LOOP_PROGRAM, PECrashLoop
from support.faults.process import PeRef
from support.faults.session import KINDS, make_fault
from support.waits import wait_until

#: a supervisor like a host controller: keeps one child with a fixed command line alive, relaunching it when it
#: dies, and writes one line per launch; a second child with another command line is left alone by the loop
SUPERVISOR = r"""
import subprocess, sys, time
launches = open(sys.argv[1], "a", buffering=1)
other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "bystander"])
child = None
end = time.monotonic() + 60
while time.monotonic() < end:
    if child is None or child.poll() is not None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "the-pe", "--pe", "7"])
        launches.write(f"{child.pid}\n")
    time.sleep(0.01)
"""


def _stat(pid: int, field: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[field - 1]


@pytest.mark.skipif(shutil.which("pgrep") is None, reason="needs pgrep (procps)")
def test_the_loop_kills_every_relaunch_and_only_those_then_ends_at_its_ttl(tmp_path: Path) -> None:
    launches = tmp_path / "launches"
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(launches)])
    loop = None
    try:
        first = int(wait_until(lambda: launches.read_text().split() if launches.exists() else [],
                               lambda pids: bool(pids), timeout=10, what="first launch")[0])
        cmdline = tmp_path / "cmdline"
        cmdline.write_bytes(Path(f"/proc/{first}/cmdline").read_bytes())
        program = tmp_path / "loop.sh"
        program.write_text(LOOP_PROGRAM)
        loop = subprocess.Popen(["bash", str(program), str(supervisor.pid), _stat(supervisor.pid, 20), str(cmdline),
                                 "2", "0.02"], stdout=subprocess.PIPE, text=True)
        loop.wait(timeout=10)  # ends by itself at its TTL (2 s)
        out = loop.stdout.read() if loop.stdout else ""
        killed = [line.split()[1] for line in out.splitlines() if line.startswith("KILLED ")]
        launched = launches.read_text().split()
        assert out.startswith("READY") and "TTL reached" in out
        assert str(first) in killed and len(killed) >= 3, out
        assert set(killed) <= set(launched)
        bystanders = subprocess.run(["pgrep", "-P", str(supervisor.pid), "-f", "bystander"], capture_output=True,
                                    text=True, check=False).stdout.split()
        assert len(bystanders) == 1, "a child with another command line is never killed"
        # after the TTL the supervisor's last launch survives
        last = int(launches.read_text().split()[-1])
        assert Path(f"/proc/{last}").exists()
    finally:
        if loop is not None and loop.poll() is None:
            loop.kill()
        children = subprocess.run(["pgrep", "-P", str(supervisor.pid)], capture_output=True, text=True,
                                  check=False).stdout.split()
        supervisor.kill()
        supervisor.wait()
        for pid in children:  # by PID, the ones this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


@pytest.mark.skipif(shutil.which("pgrep") is None, reason="needs pgrep (procps)")
def test_the_loop_stops_when_the_parent_is_gone(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"nothing\0")
    program = tmp_path / "loop.sh"
    program.write_text(LOOP_PROGRAM)
    started = time.monotonic()
    loop = subprocess.Popen(["bash", str(program), str(parent.pid), _stat(parent.pid, 20), str(cmdline), "30",
                             "0.02"], stdout=subprocess.PIPE, text=True)
    try:
        parent.kill()
        parent.wait()
        loop.wait(timeout=10)
        assert "PARENT" in (loop.stdout.read() if loop.stdout else "")
        assert time.monotonic() - started < 10
    finally:
        if loop.poll() is None:
            loop.kill()


def _crash_loop(tmp_path: Path, log: list[tuple[str, str]] | None = None) -> PECrashLoop:
    config = lab_shaped_config(tmp_path)
    fault = make_fault(fake_context(config, log), "pe-crash-loop", dc="dc1", operator="Aggregator")
    assert isinstance(fault, PECrashLoop)
    fault.pe = PeRef("dc1", "orders", "3", "12", 4242, 1, "198.18.1.10")
    fault.starttime, fault.parent, fault.parent_start, fault.cmdline = "777", "100", "55", b"python\0-m\0lab.pe\0"
    fault.instance_id = "StreamsInstance-dc1"
    return fault


def test_crash_loop_scripts_are_tagged_guarded_and_revert_with_restartpe(tmp_path: Path) -> None:
    fault = _crash_loop(tmp_path)
    inject = fault.armed_scripts()["198.18.1.10"]
    assert "setsid sh -c 'sleep" in inject, "the dead-man timer is armed"
    assert f"XDC_FAULT={fault.label}@198.18.1.10 setsid bash" in inject
    assert "/proc/4242/stat" in inject and "777" in inject, "started only while the PE is the process seen"
    assert " 100 55 " in inject
    revert = fault.revert_scripts()["198.18.1.10"]
    assert f"^XDC_FAULT={fault.label}@198\\.18\\.1\\.10$" in revert
    assert "streamtool restartpe -i StreamsInstance-dc1 -j 3" in revert
    assert "pkill" not in inject + revert and "killall" not in inject + revert
    phases = {phase for phase, _, _ in fault.commands()}
    assert phases == {"inject", "verify", "heal"}
    assert fault.requires == ("bash", "pgrep", "streamtool")


def test_crash_loop_effect_and_heal_proofs_read_rest(tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    fault = _crash_loop(tmp_path, log)
    looks = iter([{"id": "12", "status": "running", "launchCount": 1, "processId": "4242"},
                  {"id": "12", "status": "restarting", "launchCount": 2, "processId": ""},
                  {"id": "12", "status": "restarting", "launchCount": 3, "processId": ""},
                  {"id": "12", "status": "stopped", "statusReason": "failure", "launchCount": 7, "processId": ""},
                  {"id": "12", "status": "running", "launchCount": 8, "processId": "5000"}])
    fault._look = lambda: next(looks)  # type: ignore[method-assign]
    proven = fault.verify(5)
    assert "launchCount 3" in proven.evidence and proven.probes == 3
    fault.verify_healed(5)  # stopped (asks restartpe again after RESTART_AGAIN at the earliest), then running
    assert all("restartpe" not in script for _, script in log), "asked again only after RESTART_AGAIN"


def test_both_kinds_are_registered() -> None:
    assert KINDS["pe-crash-loop"] is PECrashLoop and KINDS["clients-cut"] is ClientsCut


# ------------------------------------------------------------------------------------------- clients-cut


def test_endpoint_of_takes_the_port_from_the_url_or_the_scheme() -> None:
    assert endpoint_of("https://198.18.1.10:9715/streams/data", "x") == ("198.18.1.10", 9715)
    assert endpoint_of("https://exchange.dc1.example/data", "x") == ("exchange.dc1.example", 443)
    with pytest.raises(FaultRefused):
        endpoint_of("exchange-without-scheme", "x")


def test_clients_cut_drops_the_controllers_exchange_traffic_from_ssh_connection(tmp_path: Path) -> None:
    fault = make_fault(fake_context(lab_shaped_config(tmp_path)), "clients-cut", dc="dc1")
    script = fault.inject_scripts()["198.18.1.10"]
    assert "${SSH_CONNECTION%% *}" in script
    assert f'-I INPUT 1 -p tcp -s @CONTROLLER@ --dport 9715 -m comment --comment "{fault.label}" -j DROP' in script
    assert "9714" not in script and "25091" not in script, "REST and the crossdc port stay open"
    assert fault.hosts() == ["198.18.1.10"]
    assert fault.describe() == {"dc": "dc1", "exchange": "198.18.1.10:9715", "client": "SSH_CONNECTION"}


def test_clients_cut_uses_the_configured_client_address(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, "faults.client_address=198.18.0.1")
    fault = make_fault(fake_context(config), "clients-cut", dc="dc1")
    script = fault.inject_scripts()["198.18.1.10"]
    assert "-s 198.18.0.1 --dport 9715" in script and "SSH_CONNECTION" not in script


def test_clients_cut_through_a_bastion_needs_the_client_address(tmp_path: Path) -> None:
    bastion = "datacenters.dc1.ssh.bastion={host: 198.18.3.10}"
    with pytest.raises(FaultRefused, match=r"faults\.client_address"):
        make_fault(fake_context(lab_shaped_config(tmp_path, bastion)), "clients-cut", dc="dc1")
    config = lab_shaped_config(tmp_path, bastion, "faults.client_address=198.18.0.1")
    assert make_fault(fake_context(config), "clients-cut", dc="dc1").describe()["client"] == "198.18.0.1"


def test_connect_tells_open_refused_and_silent_apart() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert connect("x", "127.0.0.1", port, 1.0).state == "open"
    assert connect("x", "127.0.0.1", port, 1.0).state == "refused"
    assert connect("x", "127.0.0.1", port, 1.0).answered


def test_the_labs_streamtool_takes_restartpe_by_pe_or_by_job() -> None:
    from lab.streamtool import parser

    by_pe = parser().parse_args(["restartpe", "-i", "streams-dc1", "12", "13"])
    assert (by_pe.subcmd, by_pe.instance_id, by_pe.peid, by_pe.jobs) == ("restartpe", "streams-dc1", ["12", "13"], None)
    by_job = parser().parse_args(["restartpe", "-j", "3"])
    assert by_job.peid == [] and by_job.jobs == "3"
