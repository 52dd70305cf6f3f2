"""Stop conditions on the lab (issue 13): a PromQL condition that breaches during a partition heals it at once
and fails the scenario with "aborted: <condition>"; REST health read from the lab's instances.

The PromQL condition is a split brain as the exporters report it: both data centers run a job. In the default
deployment only dc1 does (dc2 runs the standalone stub); the partition makes dc2's stub take over, and the next
scrape of dc2's exporter (every 10 s) shows its job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from labwire import ADDR, Lab, wait_until

from support.config import load_config
from support.stopconditions import RestHealthCheck
from support.streams.rest import StreamsRestClient

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = "http://127.0.0.1:19090"  # the lab's (config/lab.yaml metrics.prometheus.url)
SPLIT_BRAIN = "count(count by (dc) (streams_job_status == 1)) > 1"

TAG = "xdc-fault"  # faults.tag of config/lab.yaml
CROSSDC = 25091  # the toolkit's cross-DC port in the lab

pytestmark = pytest.mark.lab


def ns(dc: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", f"xdc-{dc}", *cmd], capture_output=True, text=True, timeout=10,
                          check=False)


def test_a_promql_condition_breached_during_a_partition_heals_it_and_aborts(default_deployment: Lab,
                                                                           tmp_path: Path) -> None:
    # a job dc2 ran in an earlier test stays in Prometheus until the next scrape: start from no split brain
    wait_until(lambda: not default_deployment.http.get(f"{PROMETHEUS}/api/v1/query", params={"query": SPLIT_BRAIN},
                                                       timeout=10).json()["data"]["result"],
               30, "Prometheus to see no split brain before the run", interval=0.5)
    reports = tmp_path / "reports"
    conditions = f"[{{name: split brain, promql: '{SPLIT_BRAIN}'}}, {{rest_health: dc1}}]"
    done = subprocess.run(
        [sys.executable, "-m", "support.cli", "run", "--set", f"run.reports_dir={reports}",
         "--set", f"run.stop_conditions={conditions}", "tests/data/features/stop_condition.feature"],
        cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = reports / "latest"
    summary = json.loads((run_dir / "summary.json").read_text())
    [scenario] = summary["scenarios"]
    assert scenario["status"] == "failed"
    assert scenario["error"].startswith("aborted: split brain (2"), scenario["error"]
    watched = scenario["stop_conditions"]
    assert watched["breached"]["condition"] == "split brain" and watched["unchecked_s"] == {}, watched
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    at = {e["event"]: e for e in journal}
    breached, healed = at["stop_condition.breached"], at["fault.healed"]
    takeover = next(e for e in journal if e["event"] == "toolkit.takeover" and e.get("dc") == "dc2")
    injected = at["fault.injected"]["t"]
    print({name: round(e["t"] - injected, 2) for name, e in (("takeover", takeover), ("breached", breached),
                                                            ("heal_started", at["fault.heal_started"]),
                                                            ("healed", healed))})
    assert takeover["t"] < breached["t"], "the condition breached because of the fault, not before it"
    # healed at once: the heal started within the check's second, and the partition was proven gone soon after
    assert at["fault.heal_started"]["t"] - breached["t"] < 2.0
    assert healed["t"] - breached["t"] < 10.0, (breached, healed)
    assert [e["event"] for e in journal].count("fault.heal_started") == 1  # the cleanup stack did not heal again
    # the step that was waiting failed saying why
    assert "aborted: split brain" in done.stdout, done.stdout[-3000:]
    # the network is whole again: no rule of the tool left, and dc1 reaches dc2's cross-DC port
    for dc in ("dc1", "dc2"):
        rules = ns(dc, "iptables-save")
        assert rules.returncode == 0, rules.stderr
        assert not [line for line in rules.stdout.splitlines() if TAG in line], dc
    reached = ns("dc1", "timeout", "2", "bash", "-c", f"exec 3<>/dev/tcp/{ADDR['dc2']}/{CROSSDC}")
    assert reached.returncode == 0 or "refused" in reached.stderr, reached.stderr


def test_rest_health_reads_the_instance_and_the_job(default_deployment: Lab) -> None:
    settings = load_config(ROOT / "config" / "lab.yaml").settings
    clients = {dc: StreamsRestClient.from_settings(settings, dc) for dc in ("dc1", "dc2")}
    try:
        assert RestHealthCheck("dc1", "dc1", clients["dc1"]).evaluate() is None
        assert RestHealthCheck("orders in dc1", "dc1", clients["dc1"], job_name="orders",
                               application="orders").evaluate() is None
        assert RestHealthCheck("orders in dc2", "dc2", clients["dc2"], job_name="orders",
                               application="orders").evaluate() == "no job of orders in dc2"
    finally:
        for client in clients.values():
            client.close()
