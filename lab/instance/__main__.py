"""`python -m lab.instance --dc dcN`: the instance service of one DC (see `lab.instance.server`)."""

from __future__ import annotations

import sys

from lab.instance.server import main

if __name__ == "__main__":
    sys.exit(main())
