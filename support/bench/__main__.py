"""``python -m support.bench [NAME...]``: run the benchmarks (default all), each in its own process.

Exit code 0 when every benchmark succeeded, 1 when one failed, 2 for an unknown name.
"""

from __future__ import annotations

import subprocess
import sys

from support.bench import BENCHMARKS


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"bench: unknown benchmark {unknown[0]!r} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    failed = 0
    for name in names or list(BENCHMARKS):
        print(f"== bench: {name}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"support.bench.{name}", *BENCHMARKS[name]], check=False)
        failed = failed or int(done.returncode != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
