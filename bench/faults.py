"""Fault apply/revert latency over SSH against the lab -> reports/bench/faults.json.

The measuring is support/bench/faults.py (usable against any configured pair:
``python -m support.bench.faults --config F``); this script holds the lab lock, brings the lab up, runs it
with config/lab.yaml and takes the lab down. Extra arguments pass through (e.g. ``--repeat 20``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import lab_session  # noqa: E402

from support.bench.faults import main  # noqa: E402

if __name__ == "__main__":
    with lab_session():
        code = main(["--config", str(ROOT / "config" / "lab.yaml"),
                     "--out", str(ROOT / "reports" / "bench" / "faults.json"), *sys.argv[1:]])
    sys.exit(code)
