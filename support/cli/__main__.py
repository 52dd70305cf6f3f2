"""``python -m support.cli`` = ``failover-tester``."""

import os
import sys

from support.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
