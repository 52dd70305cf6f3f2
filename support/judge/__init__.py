"""The judge: a pure function from a scenario's recorded history (journal, ledgers, claims) and settings to its
verdicts and record. ``Then`` steps call it on the history so far; ``failover-tester judge`` calls it again on a
stored run."""

from support.judge.checks import CHECKS, Judgement, judge_claim
from support.judge.history import History, Snapshot, load_history, read_journal, scenario_ids
from support.judge.record import judge_scenario
from support.judge.settings import JudgeSettings

__all__ = ["CHECKS", "History", "JudgeSettings", "Judgement", "Snapshot", "judge_claim", "judge_scenario",
           "load_history", "read_journal", "scenario_ids"]
