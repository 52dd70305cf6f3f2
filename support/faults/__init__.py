"""The fault library: every seed fault kind, verified, reverted by a dead-man timer, inside a declared blast radius.

``session.FaultSession`` is what a scenario uses (``world.faults``); docs/faults.md describes kinds, safety
layers, tags, doctor and dry run.
"""
