"""Blast radius (only declared DCs, hosts and jobs), dry run (nothing touched) and the CLI's one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from faultfakes import PROJECT, fake_context, lab_shaped_config

from support.faults.base import FaultRefused
from support.faults.executor import Executor, ExecutorPool, Result, run_on_hosts
from support.faults.guard import Allowlist
from support.faults.session import FaultSession, make_fault
from support.orchestration import CleanupStack, Journal


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("partition", {"between": ("dc1", "dc9")}, 'data center "dc9" is not declared'),
    ("partition", {"between": ("dc1", "dc1")}, "makes no sense"),
    ("isolate", {"dc": "prod-eu"}, 'data center "prod-eu" is not declared'),
    ("pe-kill", {"dc": "dc1", "operator": "Aggregator", "app": "payments"}, 'application "payments" is not declared'),
    ("job-cancel", {"dc": "dc1", "job": "payroll"}, 'job "payroll" is not declared'),
    ("meteor", {"dc": "dc1"}, "unknown fault kind 'meteor'"),
])
def test_anything_undeclared_is_refused_in_one_line(tmp_path: Path, kind: str, params: dict, message: str) -> None:
    ctx = fake_context(lab_shaped_config(tmp_path))
    with pytest.raises(FaultRefused) as caught:
        make_fault(ctx, kind, **params)
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith("refused:")


def test_executors_refuse_undeclared_hosts(tmp_path: Path) -> None:
    ctx = fake_context(lab_shaped_config(tmp_path))
    with pytest.raises(FaultRefused, match=r"host 10\.0\.0\.1 is not declared"):
        ctx.executors.get("10.0.0.1")
    with pytest.raises(FaultRefused, match=r"host 192\.168\.1\.1 is not declared"):
        run_on_hosts(ctx.executors, {"192.168.1.1": "true"}, what="test")


class Exploding(Executor):
    def run(self, script: str, timeout: float = 30.0) -> Result:
        raise AssertionError(f"a dry run ran a command on {self.host}")


def test_dry_run_plans_every_kind_and_touches_nothing(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    session = FaultSession(config, Journal(None), CleanupStack(), {}, dry_run=True, out=io.StringIO())
    session.pool._factory = Exploding  # any command on any host would fail the test
    session.ctx.rest = {}  # and any REST call would fail (no clients)
    for kind, params in [("partition", {"between": ("dc1", "dc2")}), ("isolate", {"dc": "dc1"}),
                         ("latency", {"between": ("dc1", "dc2"), "delay": 0.2}),
                         ("loss", {"between": ("dc1", "dc2"), "probability": 0.3}),
                         ("bandwidth", {"between": ("dc1", "dc2"), "rate": "1mbit"}),
                         ("pe-kill", {"dc": "dc1", "operator": "Aggregator"}),
                         ("pe-hang", {"dc": "dc1", "operator": "Aggregator", "duration": 20.0}),
                         ("cpu", {"dc": "dc1"}), ("memory", {"dc": "dc1"}), ("disk", {"dc": "dc1"}),
                         ("job-cancel", {"dc": "dc1", "app": "orders"}), ("instance-stop", {"dc": "dc1"}),
                         ("orderly-shutdown", {"dc": "dc1"})]:
        session.inject(kind, **params)
    assert len(session.planned) == 13
    assert not session.pool.opened()
    assert session.audit() == [] and session.heal_all() == []
    out = session.out.getvalue()  # type: ignore[union-attr]
    assert "[dry run] partition" in out and "inject on 198.18.2.10:" in out and "heal on 198.18.1.10:" in out
    assert "unit-secret-pw" not in out
    planned = [e.fields["kind"] for e in session.journal.events("fault.dry_run")]
    assert planned[0] == "partition" and len(planned) == 13


def cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "support.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_cli_refuses_an_undeclared_dc_with_exit_2_and_one_line(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    done = cli("faults", "inject", "partition", "--between", "dc1", "dc9", "--ttl", "5s", "--config",
               str(config.source))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'data center "dc9" is not declared' in lines[0] and "Traceback" not in done.stderr
    assert lines[0].startswith(str(config.source))


def test_cli_dry_run_prints_the_commands_per_host(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    done = cli("faults", "inject", "partition", "--between", "dc1", "dc2", "--ttl", "5s", "--dry-run",
               "--config", str(config.source))
    assert done.returncode == 0, done.stderr
    assert "dead-man TTL 5 s" in done.stdout
    assert "inject on 198.18.1.10:" in done.stdout and "inject on 198.18.2.10:" in done.stdout
    assert "iptables-restore" in done.stdout
    clean = cli("faults", "clean", "--dry-run", "--config", str(config.source))
    assert clean.returncode == 0 and "[dry run] clean on 198.18.1.10:" in clean.stdout


def test_run_dry_run_plans_only_the_fault_steps(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    feature = tmp_path / "plan.feature"
    feature.write_text(
        "Feature: plan\n"
        "  @wanted\n"
        "  Scenario: partition then heal\n"
        '    Given the "orders" application runs active in "dc1" with "dc2" on standby\n'
        '    When the network between "dc1" and "dc2" is partitioned for 20 seconds\n'
        "    And the fault is healed\n"
        '    Then "dc2" takes over within 45 seconds\n'
        "  Scenario: not selected\n"
        '    When "dc1" is cut off from the network\n'
    )
    done = cli("run", "--dry-run", "--config", str(config.source), "--tags", "@wanted", str(feature))
    assert done.returncode == 0, done.stderr
    assert "(not a fault: not run)" in done.stdout
    assert "[dry run] partition" in done.stdout and "healed after 20 s" in done.stdout
    assert "isolate" not in done.stdout
    assert "1 fault step(s) planned" in done.stdout or "2 fault step(s) planned" in done.stdout


def test_allowlist_names_what_is_declared(tmp_path: Path) -> None:
    ctx = fake_context(lab_shaped_config(tmp_path))
    allow: Allowlist = ctx.allowlist
    assert allow.check_job("dc1", "orders") == "orders"
    with pytest.raises(FaultRefused, match=r"declared jobs: orders, telemetry\)"):
        allow.check_job("dc1", "other")
    assert isinstance(ctx.executors, ExecutorPool)


def test_dry_run_says_what_resource_faults_take_and_what_bounds_them(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, "faults.memory_max=2 GiB", "faults.disk_max=500 MiB")
    session = FaultSession(config, Journal(None), CleanupStack(), {}, dry_run=True, out=io.StringIO())
    session.pool._factory = Exploding  # the sizes are not read from the hosts in a dry run
    for kind in ("cpu", "memory", "disk"):
        session.inject(kind, dc="dc1", duration=15.0)
    out = session.out.getvalue()  # type: ignore[union-attr]
    assert "0 B" not in out and "bounded=False" not in out and "workers=1" not in out
    assert "size=headroom at run time, at most 2.0 GiB" in out
    assert "  size: bounded by 2.0 GiB (faults.memory_max): the commands below show that bound as --vm-bytes" in out
    assert "--vm-bytes 2147483648" in out  # the bound the plan shows is the one the commands use
    assert "  size: disk: fill the file system of /run/xdc-lab/dc1/snapshots on 198.18.1.10 to its free space" in out
    assert "  size: bounded by 500.0 MiB (faults.disk_max)" in out and "fallocate -l 524288000" in out
    assert "  size: cpu: one busy stress-ng worker per CPU of 198.18.1.10" in out
