"""Benchmark: how close the measured recovery phases are to the lab's ground truth: ``reports/bench/rto_accuracy.json``.

Runs tests/integration/test_accuracy.py (10 failovers driven by the framework's own classes; the test takes the
lab lock itself) and keeps the error distribution (p50/p95/max of measured - truth, per phase) it writes.

    .venv/bin/python -m support.bench.rto_accuracy [--failovers N] [--out reports/bench/rto_accuracy.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "rto_accuracy.json")
    args = parser.parse_args()
    env = {**os.environ, "XDC_ACCURACY_FAILOVERS": str(args.failovers), "XDC_ACCURACY_OUT": str(args.out.resolve())}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/integration/test_accuracy.py"], cwd=ROOT, env=env, check=False)
    if not args.out.exists():
        print("bench: rto_accuracy.json was not written (lab unavailable?)", file=sys.stderr)
        return 1
    print(args.out.read_text())
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
