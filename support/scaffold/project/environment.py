"""behave's hooks for this project: the failover tester's own (installed with it, so upgrades bring them)."""

from support.hooks import after_all, after_scenario, before_all, before_scenario, before_step

__all__ = ["after_all", "after_scenario", "before_all", "before_scenario", "before_step"]
