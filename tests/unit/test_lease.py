"""The pair lease (support/lease.py, lab/lease.py): one holder per pair, across processes; a crashed holder frees
the local lock at once; host records expire with the TTL or are taken over from a dead local process; the
refusal is one line naming the holder. Host scripts run for real (bash + flock) in a temporary state dir."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faultfakes import PROJECT, lab_shaped_config

from lab import lease as lab_lease
from support.config import Config
from support.config.settings import Settings
from support.faults.base import Topology
from support.faults.executor import Executor, ExecutorError, ExecutorPool, LocalExecutor, Result
from support.faults.guard import Allowlist
from support.lease import (
    ENV_DIR,
    ENV_RUN_ID,
    LeaseHeld,
    acquire,
    describe,
    holder,
    host_holders,
    lock_path,
    pair_key,
)
from support.waits import wait_until

HOLDER = """
import sys
from support.config import load_config
from support.lease import acquire
config = load_config(sys.argv[1], [])
lease = acquire(config.settings, "run", sys.argv[2], hosts=False)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def lease_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "leases"
    monkeypatch.setenv(ENV_DIR, str(folder))
    monkeypatch.delenv(ENV_RUN_ID, raising=False)
    return folder


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    return lab_shaped_config(tmp_path, f"faults.state_dir={tmp_path / 'state'}", "faults.ttl=3s")


def local_pool(settings: Settings, topology: Topology) -> ExecutorPool:
    """Every declared host runs its scripts here (like the lab, whose hosts share one file system)."""
    return ExecutorPool(topology, Allowlist(topology), factory=LocalExecutor)


@contextmanager
def start_holder(config: Config, run_id: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(config.source), run_id], cwd=PROJECT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_second_process_is_refused_with_one_line_naming_the_holder(config: Config) -> None:
    with start_holder(config, "run-one") as proc:
        with pytest.raises(LeaseHeld) as refused:
            acquire(config.settings, "run", "run-two", hosts=False)
        line = str(refused.value)
        assert "\n" not in line
        for part in ("pair embedded-lab", "run run-one", "(run)", f"pid {proc.pid}",
                     f"@{socket.gethostname()}", "since 20", f"expires when pid {proc.pid} ends"):
            assert part in line, line
        held = holder(config.settings)
        assert held is not None and held["run_id"] == "run-one" and held["pid"] == proc.pid
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)
    assert holder(config.settings) is None
    with acquire(config.settings, "run", "run-two", hosts=False) as lease:
        assert holder(config.settings) == lease.record
    assert holder(config.settings) is None


def test_a_crashed_holder_frees_the_lock_at_once(config: Config) -> None:
    with start_holder(config, "run-crash") as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert holder(config.settings) is None  # the record is still in the file, but nobody holds the lock
        with acquire(config.settings, "run", "run-after", hosts=False) as lease:
            assert lease.record["run_id"] == "run-after"


def test_a_child_of_the_holder_reenters(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_holder(config, "run-parent"):
        monkeypatch.setenv(ENV_RUN_ID, "run-parent")
        with acquire(config.settings, "faults inject", "run-parent", hosts=False) as lease:
            assert lease.reentered and lease.run_id == "run-parent"
        monkeypatch.setenv(ENV_RUN_ID, "someone-else")
        with pytest.raises(LeaseHeld):
            acquire(config.settings, "faults inject", "someone-else", hosts=False)


def test_the_lab_and_the_tester_share_one_lock(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lab_lease.key() == pair_key(dc.rest.url for dc in config.settings.datacenters.values())
    assert lab_lease.lock_path() == lock_path(config.settings)
    with acquire(config.settings, "run", "run-lab", hosts=False):
        assert os.environ[ENV_RUN_ID] == "run-lab"  # what the holder's children inherit: they pass through
        assert lab_lease.take("lab up") is None
        monkeypatch.setenv(ENV_RUN_ID, "another-run")  # a stranger
        with pytest.raises(lab_lease.Held) as refused:  # what `python -m lab up` prints, exit 3
            lab_lease.take("lab up")
        assert str(refused.value).startswith("pair embedded-lab is leased by run run-lab (run), pid ")
    monkeypatch.delenv(ENV_RUN_ID)
    proc = subprocess.Popen([sys.executable, "-c", "from lab import lease; lease.take('lab up'); "
                             "print('held', flush=True); input()"], cwd=PROJECT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match=r"\(lab up\), pid"):
            acquire(config.settings, "run", "run-x", hosts=False)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_pair_key_ignores_paths_case_and_order() -> None:
    assert pair_key(["https://A.example:9714/streams/resources", "https://b.example:9714/x"]) == \
        pair_key(["https://b.example:9714", "https://a.example:9714/streams"])
    assert pair_key(["https://a.example/x"]) == pair_key(["https://a.example:443"])
    assert pair_key(["https://a.example:9714"]) != pair_key(["https://a.example:9715"])


# ------------------------------------------------------------------------------------------- host records


def host_record(config: Config) -> list[str]:
    return (Path(config.settings.faults.directory) / "lease").read_text().split()


def plant(config: Config, run_id: str, expires: float, **fields: object) -> None:
    folder = Path(config.settings.faults.directory)
    folder.mkdir(parents=True, exist_ok=True)
    blob = base64.b64encode(json.dumps({"run_id": run_id, **fields}).encode()).decode()
    (folder / "lease").write_text(f"{run_id} {int(expires)} {blob}\n")


def test_the_host_record_is_written_renewed_and_removed(config: Config) -> None:
    with acquire(config.settings, "run", "run-h", pool_factory=local_pool) as lease:
        assert sorted(lease.hosts) == ["198.18.1.10", "198.18.2.10"]
        run_id, expires, blob = host_record(config)
        assert run_id == "run-h" and int(expires) >= int(time.time()) + 2
        assert json.loads(base64.b64decode(blob))["purpose"] == "run"
        # faults.ttl 3 s: the heartbeat rewrites the record every second
        wait_until(lambda: int(host_record(config)[1]), lambda e: e > int(expires), timeout=5,
                   what="the heartbeat renewing the host record")
        records = host_holders(config.settings, local_pool(config.settings, Topology.from_settings(config.settings)))
        assert {r["run_id"] for r in records.values() if isinstance(r, dict)} == {"run-h"}
    assert not (Path(config.settings.faults.directory) / "lease").exists()


def test_a_live_host_record_of_another_machine_refuses(config: Config) -> None:
    plant(config, "run-far", time.time() + 60, purpose="run", pid=4242, user="ops", host="elsewhere",
          since=time.time() - 5)
    with pytest.raises(LeaseHeld) as refused:
        acquire(config.settings, "run", "run-me", pool_factory=local_pool)
    line = str(refused.value)
    assert "run run-far (run), pid 4242 ops@elsewhere" in line and "(lease on 198.18." in line and "\n" not in line
    assert host_record(config)[0] == "run-far"  # left as it was
    assert holder(config.settings) is None  # and the local lock was let go


def test_an_expired_host_record_is_taken_over(config: Config) -> None:
    plant(config, "run-old", time.time() - 1, purpose="run", pid=4242, user="ops", host="elsewhere")
    with acquire(config.settings, "run", "run-new", pool_factory=local_pool):
        assert host_record(config)[0] == "run-new"


def test_a_record_left_by_a_dead_process_of_this_machine_is_taken_over(config: Config) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    plant(config, "run-killed", time.time() + 60, purpose="faults inject", pid=dead.pid,
          host=socket.gethostname())
    with acquire(config.settings, "run", "run-next", pool_factory=local_pool):
        assert host_record(config)[0] == "run-next"


class Unreachable(Executor):
    def run(self, script: str, timeout: float = 30.0) -> Result:
        raise ExecutorError(f"ssh {self.host}: 4 attempt(s) failed")


def test_an_unreachable_host_does_not_block_the_lease(config: Config) -> None:
    def pool(settings: Settings, topology: Topology) -> ExecutorPool:
        return ExecutorPool(topology, Allowlist(topology),
                            factory=lambda h: Unreachable(h) if h == "198.18.2.10" else LocalExecutor(h))

    with acquire(config.settings, "run", "run-u", pool_factory=pool) as lease:
        assert lease.hosts == ["198.18.1.10"]


def test_describe_is_one_line_with_every_field() -> None:
    line = describe({"run_id": "r1", "purpose": "run", "pid": 7, "user": "u", "host": "h", "since": 0,
                     "expires": 60, "pair": "p"}, "10.0.0.1")
    assert line == ("pair p is leased by run r1 (run), pid 7 u@h, since 1970-01-01T00:00:00Z, "
                    "expires 1970-01-01T00:01:00Z (lease on 10.0.0.1)")


# ------------------------------------------------------------------------------------------- the CLIs


def cli(lease_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_RUN_ID}  # a stranger, not a child of the holder
    return subprocess.run([sys.executable, "-m", "support.cli", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60, check=False, env={**env, ENV_DIR: str(lease_dir)})


def test_the_clis_are_refused_with_exit_3_and_one_line(config: Config, lease_dir: Path, tmp_path: Path) -> None:
    source = str(config.source)
    with acquire(config.settings, "run", "run-cli", hosts=False):
        refused = {
            "run": cli(lease_dir, "run", "--config", source, "--set", f"run.reports_dir={tmp_path / 'r'}",
                       "features/process_faults.feature"),
            "faults inject": cli(lease_dir, "faults", "inject", "partition", "--between", "dc1", "dc2", "--ttl", "5s",
                                 "--config", source),
            "faults clean": cli(lease_dir, "faults", "clean", "--config", source),
        }
        bad_dc = cli(lease_dir, "faults", "inject", "partition", "--between", "dc1", "dc9", "--config", source)
    for name, done in refused.items():
        assert done.returncode == 3, f"{name}: {done.stdout}{done.stderr}"
        first = done.stderr.splitlines()[0]
        assert first.startswith(f"{name}: refused: pair embedded-lab is leased by run run-cli (run), "
                                f"pid {os.getpid()} ")
    assert len(refused["run"].stderr.splitlines()) == 1 and not (tmp_path / "r").exists()
    assert len(refused["faults inject"].stderr.splitlines()) == 1
    assert "--force" in refused["faults clean"].stderr.splitlines()[1]
    assert bad_dc.returncode == 2 and 'data center "dc9" is not declared' in bad_dc.stderr  # checked before the lease
