"""Benchmark: tuples per second the producer sustains into one data center: ``reports/bench/traffic.json``.

1. The tester alone: the framework's producer and consumer (generation, JSON encoding, ledgers) against an
   in-process exchange that accepts every batch at once: the most the tester can offer; for each application
   contract of config/lab.yaml's ``orders`` and ``telemetry`` (``tester_alone_by_application``).
2. The lab: the same Traffic class against dc1's data exchange (HTTPS) with the orders job running, at rising
   offered rates. A rate is sustained when >= 95 % of the offered tuples were acknowledged and came out.
   The tester's CPU share (process time / wall time) at the highest rate says who was the bottleneck: a
   tester using a whole core (the GIL) limits itself; otherwise the lab does.

    .venv/bin/python -m support.bench.traffic [--seconds 5] [--out reports/bench/traffic.json] [--alone]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from support.bench._lab import ROOT, lab_session
from support.config import load_config
from support.data.contract import ORDERS, DataContract, parse_contract
from support.data.generate import ContractGenerator
from support.data.ledger import OK, IdTable, Ledger, ReceivedRow, SentRow
from support.orchestration import Journal
from support.streams.exchange import Endpoints, SinkRead
from support.traffic import Traffic

RATES = (1000, 2000, 4000, 8000, 16000, 24000, 32000, 48000)
SUSTAINED = 0.95


class InstantExchange:
    """Accepts every batch at once (JSON-encoded like the real client), returns it as output."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buffer: list[dict[str, Any]] = []

    def endpoints(self, job_name: str, application: Mapping[str, Any] | None = None) -> Endpoints:
        return Endpoints("1", "in", "out")

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None) -> int:
        json.dumps({"items": list(items)})
        with self.lock:
            self.buffer.extend({**i, "dc": "dc1", "processed_at": time.time()} for i in items)
        return len(items)

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        """A consuming sink that gives no buffer marks."""
        with self.lock:
            out, self.buffer = self.buffer, []
        return SinkRead(out)


def measure(exchanges: Mapping[str, Any], rate: float, seconds: float, folder: Path,
            contract: DataContract = ORDERS, job_name: str = "orders") -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = IdTable(folder / "ids.txt")
    traffic = Traffic(exchanges, job_name, None, ContractGenerator(contract, 1, f"bench-{rate}"),
                      Ledger(folder / "sent.csv", SentRow, ids, columns=contract.sent_columns()),
                      Ledger(folder / "received.csv", ReceivedRow, ids, columns=contract.received_columns()),
                      Journal(None), rate=rate, batch_interval=0.05, consumer_interval=0.05, max_duration=seconds + 30,
                      preferred=["dc1"], contract=contract)
    cpu0, wall0 = time.process_time(), time.monotonic()
    traffic.start()
    stop = threading.Event()
    stop.wait(seconds)
    traffic.stop_producing()
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    traffic.drain(timeout=10, quiet=1.0)
    sent = traffic.sent.table()
    acked = int(sent.is_("outcome", OK).sum())
    received = len(traffic.received)
    for ledger in (traffic.sent, traffic.received):
        ledger.close()
    ids.close()
    return {
        "offered_per_s": rate,
        "acknowledged_per_s": round(acked / wall),
        "received_per_s": round(received / wall),
        "sent": len(sent),
        "acknowledged": acked,
        "received": received,
        "tester_cpu_share": round(cpu / wall, 2),
        "sustained": acked >= SUSTAINED * rate * wall * 0.98 and received >= SUSTAINED * acked,
    }


def lab_contracts() -> dict[str, DataContract]:
    """The contracts config/lab.yaml declares for orders and telemetry (read without resolving the lab's secrets:
    the tester alone needs no lab)."""
    applications = yaml.safe_load((ROOT / "config" / "lab.yaml").read_text())["applications"]
    return {name: parse_contract(applications[name].get("data")) for name in ("orders", "telemetry")
            if name in applications}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "traffic.json")
    parser.add_argument("--alone", action="store_true", help="only the tester alone (no lab), printed, not written")
    args = parser.parse_args()
    contracts = lab_contracts()
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
        by_app = {name: measure({"dc1": InstantExchange()}, 200000, args.seconds, Path(tmp) / f"alone-{name}",
                                contract)
                  for name, contract in contracts.items()}
        alone = by_app["orders"]
        if args.alone:
            print(json.dumps({name: r["acknowledged_per_s"] for name, r in by_app.items()}))
            return 0
        steps = []
        with lab_session():
            from support.streams.exchange import DataExchangeClient

            config = load_config(str(ROOT / "config" / "lab.yaml"), [], run_id="bench")
            client = DataExchangeClient.from_settings(config.settings, "dc1")
            try:
                for rate in RATES:
                    result = measure({"dc1": client}, rate, args.seconds, Path(tmp) / f"lab-{rate}")
                    steps.append(result)
                    print(json.dumps(result), flush=True)
                    if not result["sustained"]:
                        break
            finally:
                client.close()
    best = max((s for s in steps if s["sustained"]), key=lambda s: s["acknowledged_per_s"], default=None)
    top = steps[-1]
    tester_bound = top["tester_cpu_share"] >= 0.9 or alone["acknowledged_per_s"] <= top["acknowledged_per_s"] * 1.2
    bottleneck = ("none reached" if top["sustained"] else "tester" if tester_bound else "lab")
    result = {
        "benchmark": "traffic",
        "seconds_per_rate": args.seconds,
        "sustained_per_s": best["acknowledged_per_s"] if best else 0,
        "highest_offered_per_s": top["offered_per_s"],
        "highest_acknowledged_per_s": top["acknowledged_per_s"],
        "tester_alone_per_s": alone["acknowledged_per_s"],
        "tester_alone_cpu_share": alone["tester_cpu_share"],
        "tester_alone_by_application": {name: r["acknowledged_per_s"] for name, r in by_app.items()},
        "bottleneck": bottleneck,
        "why": (f"at {top['offered_per_s']} tuples/s offered ({'sustained' if top['sustained'] else 'not sustained'}: "
                f"{top['acknowledged_per_s']} acknowledged/s, {top['received_per_s']} out/s) the tester used "
                f"{top['tester_cpu_share']:.0%} of a core; on its own (JSON, ledgers, no network) it offers "
                f"{alone['acknowledged_per_s']} tuples/s"),
        "steps": steps,
        "machine": {"cpus": len(os.sched_getaffinity(0))},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
