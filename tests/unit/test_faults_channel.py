"""The Cross-DC channel faults without a lab: which rules go where (heartbeat port vs snapshot ports), the
dead-man armed first, the snapshot pairs, and the proofs (cut ports unanswered while the other kind answers)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from faultfakes import RecordingExecutor, fake_context, lab_shaped_config

from support.cli import faults as faults_cli
from support.config import Config
from support.faults.base import FaultContext, FaultError
from support.faults.executor import ExecutorPool, Result
from support.faults.session import FaultSession, make_fault
from support.orchestration import CleanupStack, Journal

DC1, DC2 = "198.18.1.10", "198.18.2.10"
HB, SNAP = 25091, 25092


@pytest.fixture
def ctx(tmp_path: Path) -> FaultContext:
    return fake_context(lab_shaped_config(tmp_path))


def rule(src: str, port: int, fault_id: str) -> str:
    return f'-I INPUT 1 -p tcp -s {src} --dport {port} -m comment --comment "xdc-ut:{fault_id}" -j DROP'


def test_heartbeat_cut_drops_only_the_heartbeat_port_on_arrival_both_ways(ctx: FaultContext) -> None:
    fault = make_fault(ctx, "heartbeat-cut", between=("dc1", "dc2"))
    armed = fault.armed_scripts()
    assert set(armed) == {DC1, DC2}
    assert rule(DC2, HB, fault.id) in armed[DC1] and rule(DC1, HB, fault.id) in armed[DC2]
    for script in armed.values():
        assert f"--dport {SNAP}" not in script and "OUTPUT" not in script
        assert script.index("setsid sh -c 'sleep") < script.index("iptables-restore")  # dead-man first
    assert fault.describe() == {"between": ["dc1", "dc2"], "heartbeat_ports": {"dc1": HB, "dc2": HB}}


def test_replication_cut_drops_only_the_snapshot_ports_on_the_target(ctx: FaultContext) -> None:
    fault = make_fault(ctx, "replication-cut", between=("dc1", "dc2"))
    armed = fault.armed_scripts()
    assert set(armed) == {DC2}, "the rules and the dead-man timer live on the target only"
    assert rule(DC1, SNAP, fault.id) in armed[DC2]
    assert f"--dport {HB}" not in armed[DC2]
    assert set(fault.revert_scripts()) == {DC2}
    # the proof probes from the source: its snapshot connects cut, its heartbeat connects answered
    probes = fault.verify_scripts()
    assert set(probes) == {DC1}
    assert f"xdc_probe {DC2} {SNAP} " in probes[DC1] and f"xdc_probe {DC2} {HB} " in probes[DC1]


def test_snapshot_pairs_come_from_the_submission_parameters_or_the_call(tmp_path: Path) -> None:
    pairs = "applications.orders.submission_parameters.numberOfHttpSenderReceiverPairs=\"3\""
    config = lab_shaped_config(tmp_path, pairs)
    ctx = fake_context(config)
    assert ctx.topology.snapshot_pairs == 3
    fault = make_fault(ctx, "replication-cut", between=("dc2", "dc1"))
    script = fault.armed_scripts()[DC1]
    assert [int(p) for p in re.findall(r"--dport (\d+)", script)] == [25092, 25093, 25094]
    assert fault.describe()["snapshot_ports"] == [25092, 25093, 25094]
    two = make_fault(ctx, "heartbeat-cut", between=("dc1", "dc2"), pairs=2)
    assert set(map(int, re.findall(rf"xdc_probe {DC2} (\d+) ", two.verify_scripts()[DC1]))) == {HB, 25092, 25093}


@pytest.mark.parametrize("pairs", [0, 65, "2"])
def test_impossible_pairs_are_refused(ctx: FaultContext, pairs: object) -> None:
    with pytest.raises(FaultError, match="pairs must be 1 to 64"):
        make_fault(ctx, "heartbeat-cut", between=("dc1", "dc2"), pairs=pairs)


def test_the_pair_must_be_declared(ctx: FaultContext) -> None:
    with pytest.raises(FaultError, match="dc9"):
        make_fault(ctx, "replication-cut", between=("dc1", "dc9"))


def answering(config: Config, cut: set[int], rules_left: int = 0) -> FaultContext:
    """A context whose hosts answer probes: connects to ``cut`` ports time out, every other port answers."""
    base = fake_context(config)

    def executor(host: str) -> RecordingExecutor:
        def answer(script: str) -> Result:
            lines = [f"RULES {rules_left}"] if "RULES" in script else []
            for dst, port in re.findall(r"xdc_probe (\S+) (\d+) ", script):
                lines.append(f"PROBE {dst} {port} {'timeout' if int(port) in cut else 'open'} 900")
            return Result(host, 0, "\n".join(lines) + "\n", "", 0.0)

        return RecordingExecutor(host, [], answer)

    pool = ExecutorPool(base.topology, base.allowlist, factory=executor)
    return FaultContext(base.topology, base.settings, pool, base.allowlist, {})


def test_heartbeat_cut_is_proven_only_while_the_snapshot_port_still_answers(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    fault = make_fault(answering(config, {HB}), "heartbeat-cut", between=("dc1", "dc2"))
    assert f"still answering: {DC1}->{DC2}:{SNAP} open" in fault.verify(1.0).evidence
    everything = make_fault(answering(config, {HB, SNAP}), "heartbeat-cut",
                            between=("dc1", "dc2"))
    with pytest.raises(FaultError, match=f"still answering: {DC1}->{DC2}:{SNAP} timeout"):
        everything.verify(0.2)  # a partition is not a heartbeat cut


def test_replication_cut_is_proven_only_while_heartbeats_still_answer(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    fault = make_fault(answering(config, {SNAP}), "replication-cut", between=("dc1", "dc2"))
    assert f"{DC1}->{DC2}:{SNAP} timeout" in fault.verify(1.0).evidence
    nothing = make_fault(answering(config, set()), "replication-cut", between=("dc1", "dc2"))
    with pytest.raises(FaultError, match="replication from dc1 to dc2 cut"):
        nothing.verify(0.2)


def test_healed_needs_the_rules_gone_and_the_ports_answering(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    healed = make_fault(answering(config, set()), "heartbeat-cut", between=("dc1", "dc2"))
    assert healed.verify_healed(1.0).probes >= 1
    left = make_fault(answering(config, set(), rules_left=1), "heartbeat-cut",
                      between=("dc1", "dc2"))
    with pytest.raises(FaultError, match="rule"):
        left.verify_healed(0.2)
    still_cut = make_fault(answering(config, {SNAP}), "replication-cut", between=("dc1", "dc2"))
    with pytest.raises(FaultError, match="reaching dc2 again"):
        still_cut.verify_healed(0.2)


def test_the_cli_passes_the_pairs() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    faults_cli.add_faults_parser(parser.add_subparsers())
    args = parser.parse_args(["faults", "inject", "replication-cut", "--between", "dc1", "dc2", "--pairs", "2"])
    assert faults_cli._params(args) == {"between": ("dc1", "dc2"), "pairs": 2}


def test_a_dry_run_plans_both_kinds_and_touches_nothing(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)
    out = io.StringIO()
    session = FaultSession(config, Journal(None), CleanupStack(), {}, dry_run=True, out=out)
    ran: list[tuple[str, str]] = []
    session.pool._factory = lambda host: RecordingExecutor(host, ran)
    session.inject("heartbeat-cut", between=("dc1", "dc2"))
    session.inject("replication-cut", between=("dc2", "dc1"))
    assert ran == [] and not session.pool.opened()
    assert session.audit() == [] and session.heal_all() == []
    text = out.getvalue()
    assert "[dry run] heartbeat-cut (between=['dc1', 'dc2']" in text
    assert f"-I INPUT 1 -p tcp -s {DC2} --dport {SNAP} -m comment" in text  # replication dc2 -> dc1, on dc1
    assert [e.fields["kind"] for e in session.journal.events("fault.dry_run")] == ["heartbeat-cut",
                                                                                   "replication-cut"]
