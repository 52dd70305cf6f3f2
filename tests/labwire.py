"""Wire-level helpers for the embedded lab tests.

Tests talk to the lab only over the wire (HTTPS verified against the lab CA) and read the ground-truth
log; they never import lab internals except for constants.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parents[1]
LAB_DIR = Path("/run/xdc-lab")
CA = LAB_DIR / "ca" / "ca.pem"
ADDR = {"dc1": "198.18.1.10", "dc2": "198.18.2.10"}
T = TypeVar("T")

NEEDS_ROOT = "the embedded lab needs root to create network namespaces"


def run_lab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(cond: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    end = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


#: main composite of each lab application (the jobs' applicationName)
MAIN_COMPOSITES = {"orders": "orders::Orders", "telemetry": "telemetry::Telemetry"}


class Lab:
    """Wire-level client of the running lab."""

    def __init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Log in afresh: `lab up` after `lab down` makes a new password and CA."""
        self.password = (LAB_DIR / "secrets" / "streams-password").read_text().strip()
        self.auth = ("streamsadmin", self.password)
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace session-level verify

    def rest(self, dc: str) -> str:
        return f"https://{ADDR[dc]}:9714/streams/instances/streams-{dc}"

    def root(self, dc: str) -> str:
        return f"https://{ADDR[dc]}:9714/streams"

    def data(self, dc: str) -> str:
        return f"https://{ADDR[dc]}:9715/streams/data"

    def request(self, method: str, url: str, auth: Any = True, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.http.request(method, url, auth=self.auth if auth is True else auth, verify=str(CA), **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", url, **kw)

    def upload(self, dc: str, app: str) -> str:
        """Upload the lab's ``bundles/<app>.sab`` to the DC's instance (``POST applicationbundles``); its bundleId."""
        data = (LAB_DIR / "bundles" / f"{app}.sab").read_bytes()
        r = self.post(f"{self.rest(dc)}/applicationbundles", data=data, headers={"Content-Type": "application/x-jar"})
        assert r.status_code == 200, r.text
        return str(r.json()["bundleId"])

    def gone(self, job: dict[str, Any], timeout: float = 15) -> None:
        """Wait until a canceled job is gone (DELETE answers at once; the job shows `canceling` meanwhile)."""
        wait_until(lambda: self.get(job["self"]).status_code == 404, timeout, f"job {job['id']} to be gone")

    @staticmethod
    def streamtool(dc: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``/run/xdc-lab/bin/streamtool`` run on the DC host (in its network namespace)."""
        return subprocess.run(
            ["ip", "netns", "exec", f"xdc-{dc}", str(LAB_DIR / "bin" / "streamtool"), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def job(self, dc: str, name: str) -> dict[str, Any] | None:
        """The newest job named ``name``, or of that application: a failover script submits without a job name, and
        the instance names the job ``<main composite>_<id>`` (``orders::Orders_7``)."""
        main = MAIN_COMPOSITES.get(name)
        jobs = [j for j in self.get(f"{self.rest(dc)}/jobs").json()["jobs"]
                if j["name"] == name or (main is not None and j.get("applicationName") == main)]
        return max(jobs, key=lambda j: int(j["id"])) if jobs else None

    @staticmethod
    def standby() -> dict[str, Any] | None:
        """The default deployment's standalone passive stub (state.json `standby`, see lab/stub.py) while its
        process runs, as the probes' stub dicts (`stub`, `dc`, `pid`, `trace`); None once it has ended."""
        info = json.loads((LAB_DIR / "state.json").read_text()).get("standby")
        if not info:
            return None
        pid = int(info["pid"])
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return None
        # the start time (field 22) tells our process from a later one with the same PID; a zombie has ended
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" or int(fields[19]) != int(info["starttime"]):
            return None
        return {"stub": True, "dc": info["dc"], "pid": pid, "script": info.get("script"),
                "trace": LAB_DIR / info["dc"] / "crossdc" / f"standalone-{pid}" / "trace.log"}

    def endpoints(self, dc: str, job_id: str) -> dict[str, str]:
        doc = self.get(self.data(dc)).json()
        job = next(j for j in doc["jobs"] if j["jobId"] == job_id)
        return {e["kind"]: e["url"] for e in job["endpoints"]}

    @staticmethod
    def truth() -> list[dict[str, Any]]:
        with open(LAB_DIR / "truth.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def events(self, event: str, dc: str | None = None, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.truth() if e["event"] == event and (dc is None or e["dc"] == dc) and e["t"] >= since]


def first_truth_event(events: list[dict[str, Any]], event: str, dc: str, after: float,
                      **match: Any) -> dict[str, Any] | None:
    """The first ground-truth event of that name in ``dc`` at or after ``after`` whose fields match."""
    for e in events:
        if e["event"] == event and e["dc"] == dc and e["t"] >= after and all(e.get(k) == v for k, v in match.items()):
            return e
    return None


def truth_instants(truth: list[dict[str, Any]], fault_t: float) -> dict[str, float]:
    """The lab's own record of one failover around the measured fault instant (a job cancel of orders in dc1, dc2
    taking over): the instants of the fault, the detection, the takeover and the first output, in true time."""
    canceled = [e for e in truth if e["event"] == "job_canceled" and e["dc"] == "dc1" and e["job_name"] == "orders"
                and fault_t - 5 <= e["t"] <= fault_t + 1]
    assert canceled, "the lab recorded no cancel of orders in dc1"
    start = canceled[-1]["t"]
    down = first_truth_event(truth, "remote_down", "dc2", start - 0.5)
    submitted = first_truth_event(truth, "job_submitted", "dc2", start - 0.5, application="orders")
    assert down and submitted, "the lab did not record the failover"
    first = first_truth_event(truth, "first_output", "dc2", submitted["t"], job_id=submitted["job_id"])
    assert first, "the new job in dc2 produced no output"
    return {"fault_effective": start, "down_detected": down["t"], "takeover": submitted["t"],
            "first_output": first["t"]}
