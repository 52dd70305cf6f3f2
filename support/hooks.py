"""behave hooks: one RunContext per run (``context.failover``), one World per scenario (``context.world``).

Interrupts: ``before_all`` installs handlers for SIGINT and SIGTERM (``failover-tester run`` forwards both to
behave) that only note the signal (:func:`support.waits.interrupt`). The running step ends at its next wait
(:class:`support.waits.Interrupted`, a ``KeyboardInterrupt`` to behave), ``after_scenario`` runs every heal
and restore and records the scenario as "interrupted", and the scenarios not reached are not run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from support.config import ConfigError, load_config
from support.faults.probe import requirements_skip_reason
from support.orchestration import Journal
from support.outline_names import install as install_outline_names
from support.reporting.allure import attach_scenario, label_drill, label_scenario
from support.reporting.console import install as install_console_fixes
from support.reporting.logs import install_run_log
from support.reporting.summary import append_scenario, write_run_meta, write_summary
from support.step_types import NOUN_PATTERN
from support.waits import HURRY_WINDOW, check_interrupt, interrupt, interrupted, reset_interrupt
from support.world import RunContext, World, new_run_id, run_overrides

log = logging.getLogger(__name__)

install_outline_names()  # behave loads the hooks before it parses the features: rows get readable names
install_console_fixes()  # behave's "Took" line counts the scenarios of rules

RESERVED = {"config", "run_id", "run_dir", "repeat", "repeats"}


def before_all(context: Any) -> None:
    install_interrupt_handlers()  # first: a signal from here on is noted, never a KeyboardInterrupt
    userdata = context.config.userdata
    run_id = userdata.get("run_id") or new_run_id()
    overrides = [*run_overrides(), *(f"{key}={value}" for key, value in userdata.items() if key not in RESERVED)]
    try:
        config = load_config(userdata.get("config"), overrides, run_id=run_id)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None
    settings = config.settings
    run_dir = Path(userdata.get("run_dir") or Path(settings.run.reports_dir) / run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    install_run_log(run_dir / "run.log", config.redact, settings.run.log_level)
    drill = drill_of(userdata)
    write_run_meta(run_dir, {"run_id": run_id, "config": str(config.source), "target": settings.name or "",
                             "gates": [gate.to_json() for gate in settings.gates],
                             **({"started_at": time.time()} if drill is None or drill[0] == 1 else {})})
    log.info("run %s against %s%s", run_id, settings.name or config.source,
             f" (drill {drill[0]}/{drill[1]})" if drill else "")
    context.failover = RunContext.open(config, run_id, run_dir)
    context.failover.drill = drill
    context.failover.start_clocks()  # the data centers' clock offsets, in the background (support/clocks.py)


def _measure_end_clocks(run: RunContext) -> None:
    """The data centers' clock offsets at the end of the run (support/clocks.py); never stops a run."""
    try:
        run.clocks  # noqa: B018 - the start estimate first (a run without scenarios may still be making it)
        run.measure_clocks("end")
    except Exception:
        log.exception("could not estimate the data centers' clock offsets at the end of the run")


def drill_of(userdata: Any) -> tuple[int, int] | None:
    """(k, N) when behave runs round k of ``failover-tester run --repeat N`` (``-D repeat=k -D repeats=N``)."""
    if not userdata.get("repeats"):
        return None
    return int(userdata.get("repeat") or 1), int(userdata["repeats"])


INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


#: the interrupts of this run already journaled (once each)
_NOTED: set[str] = set()


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM only note the signal and say what happens next: no ``KeyboardInterrupt`` can land in
    the middle of a heal or a restore."""
    reset_interrupt()
    _NOTED.clear()
    for signum in INTERRUPT_SIGNALS:
        signal.signal(signum, _on_signal)


def _on_signal(signum: int, _frame: object) -> None:
    name = signal.Signals(signum).name
    kind = interrupt(name)
    message = {
        "first": f"{name}: stopping. The running step ends at its next wait, then every heal and restore runs and "
                 f"the reports are written. Again within {HURRY_WINDOW:g} s: skip the remaining waiting "
                 "(never the heals).",
        "hurry": f"{name} again: skipping what is left of the waiting; the heals and restores still run.",
        "again": f"{name}: already stopping (heals and restores in progress; twice within {HURRY_WINDOW:g} s skips "
                 "the remaining waiting).",
    }[kind]
    with contextlib.suppress(OSError):  # no print(): a signal handler must not re-enter buffered I/O
        os.write(2, f"\n{message}\n".encode())


def _note_interrupt(context: Any, journal: Journal | None = None) -> None:
    """Once per run, after a signal: journal ``run.interrupted`` and tell behave not to start another scenario."""
    name = interrupted()
    if name is None:
        return
    if name not in _NOTED:
        _NOTED.add(name)
        run: RunContext | None = getattr(context, "failover", None)
        if journal is None and run is not None:
            journal = Journal(run.run_dir / "journal.jsonl")
        try:
            if journal is not None:
                journal.record("run.interrupted", signal=name)
            if run is not None:
                write_run_meta(run.run_dir, {"interrupted_by": name})
        except Exception:  # never in the way of the heals that follow
            log.exception("could not record the interrupt")
    if not context.aborted:
        context.abort(reason=f"{name}: the scenarios not reached are not run")


TRAFFIC_STEP = re.compile(rf"^({NOUN_PATTERN}) flow at \d+ tuples per second$")


def unknown_input_noun(step_names: Iterable[str], known: Iterable[str]) -> str | None:
    """One line naming the first traffic step whose noun no application declares, with the known ones; else
    None."""
    nouns = sorted(set(known))
    for name in step_names:
        match = TRAFFIC_STEP.match(name.strip())
        if match and match.group(1) not in nouns:
            return (f"unknown input {match.group(1)!r} in '{name.strip()}': the applications' inputs are "
                    f"{', '.join(nouns) or 'none'} (applications.<app>.data.noun)")
    return None


def before_scenario(context: Any, scenario: Any) -> None:
    if interrupted() is not None:  # a signal between two scenarios: this one does not start
        _note_interrupt(context)
        scenario.skip(f"not run: the run was interrupted ({interrupted()})")
        return
    tags = list(scenario.effective_tags)
    reason = requirements_skip_reason(context.failover, tags)
    if reason:
        scenario.skip(reason)
        return
    label_scenario(tags)
    drill = context.failover.drill
    if drill is not None:  # every drill its own Allure test (not a retry of the previous one)
        label_drill(*drill)
    context.world = World(context.failover, scenario.feature.name, scenario.name, tags)
    applications = context.failover.config.settings.applications.values()
    problem = unknown_input_noun((step.name for step in scenario.all_steps), (a.data.noun for a in applications))
    if problem:  # before the first step: nothing is deployed
        context.world.setup_error = problem
        raise ValueError(problem)


def before_step(context: Any, step: Any) -> None:
    world: World | None = getattr(context, "world", None)
    if world is not None:
        world.step = f"{step.keyword} {step.name}"
    check_interrupt(f"the step '{step.keyword} {step.name}' to start")  # a signal between two steps: no next one


def after_scenario(context: Any, scenario: Any) -> None:
    world: World | None = getattr(context, "world", None)
    if world is None:
        return
    if interrupted() is not None:  # journaled before the heals, so the journal reads in order
        _note_interrupt(context, world.journal)
    cleanup_errors = world.close()
    status = scenario.status.name if hasattr(scenario.status, "name") else str(scenario.status)
    status = {"passed": "passed", "skipped": "skipped", "untested": "skipped"}.get(status, "failed")
    if world.interrupted is not None:  # the signal came while the scenario ran (its steps were cut short)
        status = "interrupted"
        _note_interrupt(context, world.journal)
    error = None  # an error of the scenario that is not a verdict (a verdict speaks for itself in the record)
    for step in scenario.steps:
        if step.error_message:
            error = str(step.error_message).strip().splitlines()[-1].removeprefix("ASSERT FAILED: ")[:500]
            break
    if error is not None and world.verdict_error is not None and world.verdict_error[:200] in error:
        error = None
    error = error or world.setup_error
    steps_passed = status == "passed"
    if status == "interrupted":
        error = f"interrupted by {world.interrupted}" + (f" during '{world.step}'" if world.step else "")
    elif world.aborted:  # a stop condition breached: that is why it failed, whichever step noticed it first
        status, error = "failed", world.aborted
    record = context.failover.config.redactor.redact_tree(world.finish(status, error, cleanup_errors))
    append_scenario(context.failover.run_dir, record)
    attach_scenario(record, world.journal.events(), world.ledger_dir / "metrics.csv")
    if cleanup_errors:
        raise AssertionError("cleanup failed: " + "; ".join(cleanup_errors))
    if world.aborted and steps_passed:  # the breach came after the last wait: behave must see it fail too
        raise AssertionError(world.aborted)


def after_all(context: Any) -> None:
    run: RunContext | None = getattr(context, "failover", None)
    if run is None:
        return
    _note_interrupt(context)
    _measure_end_clocks(run)
    write_run_meta(run.run_dir, {"finished_at": time.time()})
    write_summary(run.run_dir)
    run.config.redactor.scrub_tree(run.run_dir)
    run.close()
