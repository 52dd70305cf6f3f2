"""behave finds this file next to features/ and steps/; the hooks live in support.hooks."""

from support.hooks import after_all, after_scenario, before_all, before_scenario, before_step

__all__ = ["after_all", "after_scenario", "before_all", "before_scenario", "before_step"]
