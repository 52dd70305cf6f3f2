"""Benchmarks of the tester itself: ``python -m support.bench [NAME...]`` (``make bench``) runs them.

Each benchmark is a module here, runnable alone as ``python -m support.bench.<name>``, writing
``reports/bench/<name>.json``. :data:`BENCHMARKS` lists them with the arguments ``make bench`` gives
(the lab ones need root and take the lab lock; ``_lab`` is their shared helper).
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

#: name -> arguments ``python -m support.bench`` runs ``python -m support.bench.<name>`` with, in order.
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "faults": ("--lab",),
    "rto_accuracy": (),
    "traffic": (),
    "validate": (),
}
