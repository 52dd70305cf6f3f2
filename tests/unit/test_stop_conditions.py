"""Stop conditions (issue 13): the checks, the watch's schedule (errors are no breach, retried with backoff and
reported), and a breach in a World: faults healed once, waits of the steps' thread stopped, the scenario failed
with "aborted: <condition>"."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faultfakes import lab_shaped_config

from support.config import ConfigError, load_config
from support.faults.base import Fault, Verified, now
from support.hooks import after_scenario
from support.metrics.prometheus import PromSample
from support.orchestration import Journal
from support.stopconditions import PromQLCheck, RestHealthCheck, StopWatch
from support.waits import WaitStopped, add_stop_check, wait_until
from support.world import RunContext, World

# ----------------------------------------------------------------------------------------------- config


def test_config_takes_promql_and_rest_health_conditions(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, 'run.stop_conditions=[{name: split brain, promql: "up == 0"}, '
                                         "{rest_health: dc2}, {rest_health: {dc: dc1, application: orders}}]")
    conditions = config.settings.run.stop_conditions
    assert [c.label for c in conditions] == ["split brain", "REST health of dc2",
                                             "REST health of dc1 and its orders job"]
    assert conditions[0].promql == "up == 0" and conditions[2].rest_application == "orders"


@pytest.mark.parametrize(("value", "problem"), [
    ("[{promql: 'up', rest_health: dc1}]", "run.stop_conditions[0]"),
    ("[{name: nothing}]", "run.stop_conditions[0]"),
    ("[{rest_health: dc9}]", 'unknown data center "dc9"'),
    ("[{rest_health: {dc: dc1, application: nope}}]", 'unknown application "nope"'),
    ("[{promql: ''}]", "run.stop_conditions[0].promql"),
])
def test_config_refuses_malformed_conditions(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        lab_shaped_config(tmp_path, f"run.stop_conditions={value}")


def test_promql_needs_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_DC1_PASSWORD", "unit-secret-1")
    monkeypatch.setenv("STREAMS_DC2_PASSWORD", "unit-secret-2")
    example = Path(__file__).resolve().parents[2] / "config" / "example-two-dc.yaml"  # no Prometheus
    with pytest.raises(ConfigError, match=r"run.stop_conditions\[0\].promql: .*needs metrics.prometheus.url"):
        load_config(example, ["run.stop_conditions=[{promql: up}]"])


# ------------------------------------------------------------------------------------------------ checks


class FakeProm:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.queries: list[str] = []

    def instant(self, query: str) -> list[PromSample]:
        self.queries.append(query)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return [PromSample(labels, 0.0, value) for labels, value in answer]


def test_promql_breaches_on_a_non_zero_sample_only() -> None:
    assert PromQLCheck("c", "q", FakeProm([])).evaluate() is None
    assert PromQLCheck("c", "q", FakeProm([({"dc": "dc1"}, 0.0), ({}, float("nan"))])).evaluate() is None
    assert PromQLCheck("c", "q", FakeProm([({"dc": "dc1"}, 0.0), ({"dc": "dc2"}, 2.0)])).evaluate() == "2 {dc=dc2}"


class FakeRest:
    def __init__(self, health: str = "healthy", job: dict[str, Any] | None = None) -> None:
        self.health, self.job = health, job

    def instance(self, refresh: bool = False) -> dict[str, Any]:
        assert refresh, "the instance is read again every time"
        return {"health": self.health, "status": "running"}

    def find_app_job(self, job_name: str, main_composite: str | None = None) -> dict[str, Any] | None:
        return self.job


def test_rest_health_of_the_instance_and_the_job() -> None:
    assert RestHealthCheck("c", "dc2", FakeRest()).evaluate() is None
    assert "health partiallyHealthy" in (RestHealthCheck("c", "dc2", FakeRest("partiallyHealthy")).evaluate() or "")
    job = {"name": "orders", "health": "healthy", "status": "running"}
    assert RestHealthCheck("c", "dc2", FakeRest(job=job), job_name="orders", application="orders").evaluate() is None
    assert RestHealthCheck("c", "dc2", FakeRest(), job_name="orders", application="orders").evaluate() == \
        "no job of orders in dc2"
    sick = {**job, "health": "unhealthy"}
    assert "job orders in dc2: health unhealthy" in (
        RestHealthCheck("c", "dc2", FakeRest(job=sick), job_name="orders", application="orders").evaluate() or "")


# ------------------------------------------------------------------------------------------------- watch


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_errors_are_no_breach_retried_with_backoff_and_reported() -> None:
    clock, journal, breaches = Clock(), Journal(None), []
    prom = FakeProm(OSError("connection refused"))
    watch = StopWatch([PromQLCheck("p", "q", prom)], journal, breaches.append, lambda: True, clock=clock,
                      max_backoff=4.0)
    pauses = []
    for _ in range(5):
        pauses.append(watch.round())
        clock.t += pauses[-1]
    assert pauses == [1.0, 2.0, 4.0, 4.0, 4.0] and breaches == [] and watch.breached is None
    prom.answers = [[]]  # Prometheus answers again: the gap closes
    assert watch.round() == 1.0
    watch.stop()
    [event] = [e for e in journal.events() if e.event == "stop_condition.watched"]
    assert event.fields["unchecked"] == {"p": 15.0} and event.fields["errors"] == {"p": "connection refused"}
    assert not [e for e in journal.events() if e.event == "stop_condition.breached"]


def test_nothing_is_checked_while_no_fault_is_in_place() -> None:
    prom, in_place = FakeProm([({}, 1.0)]), [False]
    watch = StopWatch([PromQLCheck("p", "q", prom)], Journal(None), lambda _: None, lambda: in_place[0],
                      clock=Clock())
    assert watch.round() == 1.0 and prom.queries == []
    in_place[0] = True
    watch.round()
    assert prom.queries == ["q"] and watch.breached == "aborted: p (1)"


def test_a_breach_is_journaled_and_reported_once() -> None:
    journal, breaches = Journal(None), []
    watch = StopWatch([PromQLCheck("ok", "a", FakeProm([])), PromQLCheck("split brain", "b", FakeProm([({}, 2.0)]))],
                      journal, breaches.append, lambda: True, clock=Clock())
    watch.round()
    assert breaches == ["aborted: split brain (2)"]
    [event] = [e for e in journal.events() if e.event == "stop_condition.breached"]
    assert event.fields == {"condition": "split brain", "value": "2"}


# ---------------------------------------------------------------------------------------- in a World


class FakeFault(Fault):
    """A fault with no host: counts its injections and heals."""

    kind = "fake"

    def __init__(self, ctx: Any, counts: dict[str, int]) -> None:
        super().__init__(ctx)
        self.counts = counts

    def describe(self) -> dict[str, Any]:
        return {"dc": "dc1"}

    def hosts(self) -> list[str]:
        return []

    def stage(self) -> None:
        pass

    def inject_scripts(self) -> dict[str, str]:
        return {}

    def inject(self) -> None:
        self.counts["inject"] += 1

    def verify(self, timeout: float) -> Verified:
        return Verified(now(), 1, "in place")

    def heal(self) -> None:
        self.counts["heal"] += 1

    def verify_healed(self, timeout: float) -> Verified:
        return Verified(now(), 1, "healed")


def test_a_breach_heals_once_stops_the_steps_waits_and_fails_the_scenario(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, f"run.reports_dir={tmp_path / 'reports'}",
                               "run.stop_conditions=[{name: split brain, promql: 'count(x) > 1'}]")
    run = RunContext.open(config, "r1", tmp_path / "run")
    world = World(run, "feature", "scenario", [])
    assert world.stop_watch is not None
    prom = FakeProm([], [({"dc": "dc2"}, 2.0)])  # fine at the first look, breached at the second
    world.stop_watch.checks[0].client = prom  # type: ignore[attr-defined]
    counts = {"inject": 0, "heal": 0}
    world.faults.make = lambda kind, **params: FakeFault(world.faults.ctx, counts)  # type: ignore[method-assign]

    world.inject_fault("fake")
    elsewhere: list[BaseException] = []

    def other_thread() -> None:  # only the steps' thread is stopped (heals wait in other threads)
        try:
            wait_until(lambda: world.aborted, bool, timeout=10, interval=0.05, what="the breach")
        except BaseException as exc:  # pragma: no cover - reported below
            elsewhere.append(exc)

    waiter = threading.Thread(target=other_thread)
    waiter.start()
    with pytest.raises(WaitStopped, match=r"^aborted: split brain \(2 \{dc=dc2\}\)$"):
        wait_until(lambda: False, bool, timeout=10, interval=0.05, what="a takeover")
    waiter.join()
    assert elsewhere == []
    watching = world.stop_watch._thread
    assert watching is not None
    watching.join(10)  # the waits stop as soon as the breach is known; the heal runs in the watch's thread
    assert counts == {"inject": 1, "heal": 1} and not world.faults.in_place()
    with pytest.raises(AssertionError, match=r"^aborted: split brain \(2 \{dc=dc2\}\)$"):
        world.heal_fault()  # the scenario's own heal step: no second heal, the step says why
    with pytest.raises(AssertionError, match=r"^aborted: split brain"):
        world.inject_fault("fake")  # nothing more is injected

    step = SimpleNamespace(error_message="Traceback ...\nAssertionError: aborted: split brain (2 {dc=dc2})")
    scenario = SimpleNamespace(status="failed", steps=[step])
    context = SimpleNamespace(world=world, failover=run)
    after_scenario(context, scenario)
    assert counts == {"inject": 1, "heal": 1}  # the cleanup stack found it healed
    wait_until(lambda: 0, lambda _: True, timeout=1, what="a wait after the scenario")  # the hook is gone
    record = json.loads((run.run_dir / "scenarios.jsonl").read_text().splitlines()[-1])
    events = [e.event for e in world.journal.events()]
    assert events.index("stop_condition.breached") < events.index("fault.healed")
    finished = [e for e in world.journal.events() if e.event == "scenario.finished"][-1]
    assert finished.fields["status"] == "failed"
    assert finished.fields["error"] == "aborted: split brain (2 {dc=dc2})"
    assert record["status"] == "failed" and record["error"] == "aborted: split brain (2 {dc=dc2})"
    assert record["stop_conditions"]["breached"]["condition"] == "split brain"
    assert record["stop_conditions"]["watched_s"] > 0 and record["stop_conditions"]["unchecked_s"] == {}
    run.close()


def test_a_breach_after_the_last_wait_still_fails_the_scenario(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, "run.stop_conditions=[{promql: 'vector(1)'}]")
    run = RunContext.open(config, "r2", tmp_path / "run")
    world = World(run, "feature", "scenario", [])
    assert world.stop_watch is not None
    world.stop_watch.checks[0].client = FakeProm([({}, 1.0)])  # type: ignore[attr-defined]
    counts = {"inject": 0, "heal": 0}
    world.faults.make = lambda kind, **params: FakeFault(world.faults.ctx, counts)  # type: ignore[method-assign]
    world.inject_fault("fake")
    thread = world.stop_watch._thread
    assert thread is not None
    thread.join(10)  # the watch ends after the breach and its heal
    assert counts["heal"] == 1
    scenario = SimpleNamespace(status="passed", steps=[SimpleNamespace(error_message=None)])
    with pytest.raises(AssertionError, match=r"^aborted: promql vector\(1\) \(1\)$"):
        after_scenario(SimpleNamespace(world=world, failover=run), scenario)
    run.close()


def test_stop_checks_are_removed_and_generic() -> None:
    remove = add_stop_check(lambda: "stop now")
    with pytest.raises(WaitStopped, match=r"^stop now$"):
        wait_until(lambda: 1, lambda _: False, timeout=5, what="x")
    remove()
    remove()  # twice is harmless
    assert wait_until(lambda: 1, lambda _: True, timeout=5, what="x") == 1


def test_an_abort_during_an_injection_heals_that_fault_once_it_is_in_place(tmp_path: Path) -> None:
    """The race: the breach comes while a fault is being injected. The heal waits for the injection, then runs
    once; a fault asked for after the abort is refused."""
    from support.faults.session import FaultSession
    from support.orchestration import CleanupStack

    config = lab_shaped_config(tmp_path)
    journal = Journal(None)
    session = FaultSession(config, journal, CleanupStack(journal), {}, pool=None, probe=None)
    session.probe = None
    counts = {"inject": 0, "heal": 0}
    release, injecting = threading.Event(), threading.Event()

    class SlowFault(FakeFault):
        def inject(self) -> None:
            injecting.set()
            release.wait(10)
            super().inject()

    session.make = lambda kind, **params: SlowFault(session.ctx, counts)  # type: ignore[method-assign]
    injector = threading.Thread(target=lambda: session.inject("fake"))
    injector.start()
    assert injecting.wait(10)
    aborted: list[list[str]] = []
    aborter = threading.Thread(target=lambda: aborted.append(session.abort("aborted: x")))
    aborter.start()
    aborter.join(0.3)
    assert aborter.is_alive() and counts["heal"] == 0  # waits for the injection to end
    release.set()
    injector.join(10)
    aborter.join(10)
    assert aborted == [[]] and counts == {"inject": 1, "heal": 1} and not session.in_place()
    with pytest.raises(AssertionError, match=r"^aborted: x$"):
        session.inject("fake")
    assert session.cleanup.run_all() == [] and counts["heal"] == 1
    session.close()


def test_config_validate_and_run_dry_run_show_the_conditions(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = Path(__file__).resolve().parents[2]
    setting = ("run.stop_conditions=[{name: split brain, promql: 'count(x) > 1'}, "
               "{rest_health: {dc: dc2, application: orders}}]")
    shown = "  - split brain: PromQL count(x) > 1 (breached by any sample neither 0 nor NaN)\n" \
            "  - REST: the instance in dc2 or its orders job not healthy\n"
    config = str(lab_shaped_config(tmp_path).source)  # the lab's shape with its own password file: no lab needed
    for args in (["config", "validate", config],
                 ["run", "--config", config, "--dry-run", "features/network_faults.feature"]):
        done = subprocess.run([sys.executable, "-m", "support.cli", *args, "--set", setting], cwd=project,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "stop conditions (2), checked every second while a fault is in place:\n" + shown in done.stdout


def test_doctor_runs_each_promql_condition_once(tmp_path: Path) -> None:
    import io

    from support.cli.doctor import check_promql_conditions

    config = lab_shaped_config(tmp_path, "run.stop_conditions=[{name: a, promql: 'up == 0'}, {name: b, promql: 'x'}, "
                                         "{name: c, promql: 'y('}, {rest_health: dc1}]")

    class Answers(FakeProm):
        def instant(self, query: str) -> list[PromSample]:
            if query == "y(":
                raise ValueError("HTTP 400: bad_data: parse error: unclosed left parenthesis\nmore")
            return [PromSample({}, 0.0, 3.0)] if query == "x" else []

    out = io.StringIO()
    assert check_promql_conditions(config, lambda: Answers([]), out) is False
    assert out.getvalue().splitlines() == [
        "doctor: stop condition 'a': the query runs, not breached now",
        "doctor: stop condition 'b': the query runs, BREACHED already (3): it would abort at the first fault",
        "doctor: stop condition 'c': the query fails: HTTP 400: bad_data: parse error: unclosed left parenthesis",
    ]
    assert check_promql_conditions(lab_shaped_config(tmp_path), lambda: None, out) is True
