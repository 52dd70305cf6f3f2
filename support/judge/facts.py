"""Facts the judge reads off a history: the layout of the data centers, the fault, the baseline, the recovery
timeline and the window a data or state check covers. Pure functions of the history."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from support.clocks import Clocks, error_bound
from support.data.ledger import OK, Table
from support.data.validate import SplitBrainReport, check_split_brain, output_times
from support.judge.history import History
from support.measure import (
    RecoveryTimeline,
    recovery_timeline,
    stamped_dcs,
    throughput_baseline,
    throughput_recovered_at,
)
from support.metrics.series import Baseline
from support.orchestration import JournalEvent
from support.units import format_seconds as secs

FAULT = "fault.effective"
TAKEOVER_SLACK = 1.0  # a takeover seen up to this long before the fault was recorded is the fault's


@dataclass(frozen=True)
class Layout:
    """How the application was laid out: ``active/passive`` (active, standby) or ``active/active``."""

    mode: str
    active: str
    standby: str


def layout(history: History, before: JournalEvent | None = None) -> Layout | None:
    """The latest layout recorded (before ``before``, when given)."""
    found = None
    for event in history.events:
        if before is not None and event is before:
            break
        if event.event == "layout":
            found = Layout(str(event.fields.get("mode", "active/passive")), str(event.fields.get("active", "")),
                           str(event.fields.get("standby", "")))
    return found


def latest_fault(history: History, until: float | None = None) -> JournalEvent | None:
    """The latest fault that became effective (recorded before ``until``, when given)."""
    found = None
    for event in history.events:
        if event.event == FAULT and (until is None or event.t <= until):
            found = event
    return found


def fault_duration(history: History, fault: JournalEvent) -> float | None:
    """The duration a fault was injected with (it ends by itself), if any."""
    injected = history.first("fault.injected", id=fault.fields.get("id"))
    value = injected.fields.get("duration") if injected is not None else None
    return float(value) if isinstance(value, int | float) else None


def fault_over(history: History, fault: JournalEvent) -> float | None:
    """When the fault was proven healed within the scenario's steps, if it was (the cleanup's heal after the last
    step is not part of what the scenario observed)."""
    healed = history.first("fault.healed", id=fault.fields.get("id"))
    done = history.first("scenario.steps_done")
    if healed is None or (done is not None and healed.t >= done.t):
        return None
    return healed.t


def pair(history: History, fault: JournalEvent | None) -> tuple[str, str]:
    """(old active, new active) of the failover the fault provokes: in active/active the faulted data center
    and the other; else the active and the standby at the time of the fault."""
    lay = layout(history, fault)
    if lay is None:
        return "", ""
    faulted = str(fault.fields.get("dc", "")) if fault is not None else ""
    if lay.mode == "active/active" and faulted in (lay.active, lay.standby):
        return faulted, lay.standby if faulted == lay.active else lay.active
    took = next((e for e in history.events if fault is not None and e.event == "toolkit.takeover"
                 and e.t >= fault.t - TAKEOVER_SLACK), None)
    if took is not None and took.fields.get("dc") == lay.active:  # after a dual outage the old active resumes
        return lay.active, lay.active
    return lay.active, lay.standby


def mode(history: History) -> str:
    lay = layout(history)
    return lay.mode if lay is not None else "active/passive"


def baseline(history: History) -> Baseline | None:
    """Output tuples per second while the system was steady (the ``steady`` event's window)."""
    steady = history.last("steady")
    if steady is None:
        return None
    start = float(steady.fields.get("start", steady.t))
    seconds = float(steady.fields.get("seconds", 0.0))
    return throughput_baseline(history.received, start, start + seconds, history.settings.throughput_window)


def offered_rate(history: History) -> float | None:
    """The input rate the scenario asked for (tuples per second)."""
    started = history.last("traffic.started")
    rate = started.fields.get("rate") if started is not None else None
    return float(rate) if isinstance(rate, int | float) else None


def clocks(history: History) -> Clocks:
    """The data centers' clock offsets the scenario's stamps were corrected by (its ``clock.offsets`` event,
    journaled when it started; none when the run could not estimate them)."""
    event = history.last("clock.offsets")
    offsets = event.fields.get("offsets") if event is not None else None
    if not isinstance(offsets, dict):
        return Clocks()
    return Clocks.from_json({dc: {"start": value} for dc, value in offsets.items()})


def split_brain(history: History, received: Table) -> SplitBrainReport:
    """Who emitted for a key while another data center did too, overlaps within the configured clock tolerance or
    the bound of the clocks that dated the outputs (whichever is longer) not counted."""
    s = history.settings
    dated_by = stamped_dcs(received)
    bound = error_bound(clocks(history), dated_by)
    report = check_split_brain(received, gap=s.split_brain_gap, tolerance=s.clock_tolerance, error_bound=bound)
    return replace(report, clocks_used=list(dated_by))


def timeline(history: History, fraction: float | None = None, standby: str | None = None) -> RecoveryTimeline:
    """The recovery phases of the latest fault, throughput judged against ``fraction`` of the baseline."""
    fault = latest_fault(history)
    old, new = pair(history, fault)
    return recovery_timeline(history.journal, history.received, standby or new, old=old, baseline=baseline(history),
                             fraction=history.settings.throughput_fraction if fraction is None else fraction,
                             window=history.settings.throughput_window, clocks=clocks(history))


def throughput_back(history: History, fault: JournalEvent, fraction: float) -> tuple[float | None, float | None]:
    """(when the output of all data centers was back to ``fraction`` of the baseline after the fault, the
    baseline rate). After a takeover the search starts at the new active's first output; otherwise at the
    fault, so a fault that never lowered the throughput is back at once."""
    rate_base = baseline(history)
    rate = rate_base.mean if rate_base is not None else offered_rate(history)
    if not rate or not len(history.received):
        return None, rate
    line = timeline(history, fraction)
    after = line.first_output if line.takeover is not None and line.first_output is not None else fault.t
    times = output_times(history.received)
    return throughput_recovered_at(times, after, rate, fraction, history.settings.throughput_window), rate


# ------------------------------------------------------------------------------------- data windows


@dataclass(frozen=True)
class Window:
    """What a data or state check covers: traffic sent from ``start`` to ``end``; ``complete`` once the output of
    that traffic is in (or given up on); otherwise ``waiting`` says what is missing and ``deadline`` until when
    waiting makes sense."""

    start: float
    end: float | None
    complete: bool
    waiting: str = ""
    deadline: float | None = None
    fault: JournalEvent | None = None
    recovered: float | None = None
    over: float | None = None

    def describe(self) -> str:
        if self.end is None:
            return "the window is not over yet"
        span = self.end - self.start
        return f"{secs(span, 1)} of traffic" + (f" through {secs(self.end - self.fault.t, 1)} after the fault"
                                              if self.fault is not None else "")

    def to_json(self) -> dict[str, object]:
        fault_t = self.fault.t if self.fault is not None else None
        return {"start": self.start, "end": self.end, "complete": self.complete, "waiting": self.waiting or None,
                "fault_effective": fault_t, "recovered": self.recovered, "fault_over": self.over}


def scenario_deadline(history: History) -> float:
    started = history.first("scenario.started")
    origin = started.t if started is not None else (history.events[0].t if history.events else 0.0)
    return origin + history.settings.scenario_timeout


def data_window(history: History, claimed_at: float, settle: float | None = None) -> Window:
    """The window of a data or state check made at ``claimed_at``: the traffic from its start through the latest
    fault, the recovery (the new active's first output after a takeover, else the output back to the baseline
    band) and the end of the fault when it ends within the scenario (healed, or a stated duration), plus the
    settling period; complete once every acknowledged tuple of it came out, or none of the missing ones came out
    for ``traffic.drain_quiet`` (bounded by ``traffic.drain_timeout``)."""
    s = history.settings
    settle = s.settle_period if settle is None else settle
    traffic = history.first("traffic.started")
    start = traffic.t if traffic is not None else claimed_at
    now = history.as_of
    deadline = scenario_deadline(history)
    fault = latest_fault(history, claimed_at)
    if fault is None:
        end = claimed_at
        return _output_in(history, Window(start, end, False), end, deadline)
    line = timeline(history)
    recovered: float | None
    if line.takeover is not None:
        recovered = line.first_output
        missing = f"the first output of {line.standby} after its takeover"
    else:
        recovered, _ = throughput_back(history, fault, s.throughput_fraction)
        missing = (f"the output back to {s.throughput_fraction * 100:g}% of the baseline or a takeover, "
                   f"{secs(now - fault.t, 1)} after the fault")
    over = fault_over(history, fault)
    duration = fault_duration(history, fault)
    window = Window(start, None, False, fault=fault, recovered=recovered, over=over, deadline=deadline)
    if recovered is None:
        return _replace(window, waiting=f"waiting for {missing}")
    if duration is not None and over is None:
        return _replace(window, waiting=f"waiting for the {fault.fields.get('kind', '')} fault to end "
                                        f"({secs(duration, None)})", deadline=max(deadline, fault.t + duration + 60))
    end = max(recovered, over or fault.t) + settle
    return _output_in(history, _replace(window, end=end), end, deadline)


def _replace(window: Window, **changes: object) -> Window:
    values = {**window.__dict__, **changes}
    return Window(**values)


def _output_in(history: History, window: Window, end: float, deadline: float) -> Window:
    """Complete ``window`` once the output of the traffic sent up to ``end`` is in."""
    s = history.settings
    now = history.as_of
    give_up = end + s.drain_timeout
    if now < end:
        return _replace(window, end=end, waiting=f"watching until {secs(end - now, 1)} from now",
                        deadline=max(deadline, give_up))
    sent, received = history.sent, history.received
    mask = (sent["t_send"] <= end) & sent.is_("outcome", OK)
    wanted = np.unique(sent["id"][mask])
    out = received["id"]
    came = np.isin(wanted, out)
    if came.all() or now >= give_up:
        return _replace(window, end=end, complete=True, waiting="")
    recent = received["t_recv"] > now - s.drain_quiet
    if now >= end + s.drain_quiet and not np.isin(out[recent], wanted).any():
        return _replace(window, end=end, complete=True, waiting="")
    return _replace(window, end=end, waiting=f"waiting for {int((~came).sum())} acknowledged tuples to come out",
                    deadline=max(deadline, give_up))
