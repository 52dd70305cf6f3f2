"""PE process: `python -m lab.pe --dc DC --job J --pe P --config <pe dir>/config.json`.

Started by the instance service (`lab.instance.supervisor`) with its listening socket handed down; builds the
runtime objects (`lab.peruntime`), starts the application's behaviour for this PE (`lab.apps`) and serves
control requests and upstream tuple streams until it is stopped.

Standard library only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from lab import apps
from lab.peruntime import ControlServer, PEContext


def main(argv: list[str]) -> int:
    # --dc/--job/--pe only make `ps` readable; everything comes from the config file
    cfg: dict[str, Any] = json.loads(Path(argv[argv.index("--config") + 1]).read_text())
    ctx = PEContext(cfg)
    listener = socket.socket(fileno=int(cfg["listen_fd"]))
    server = ControlServer(ctx, listener)
    apps.start(ctx, server)
    ctx.trace.log("INFO", "PE", f"PE {ctx.pe_id} of job {ctx.job_id} ({ctx.app}) running, pid {os.getpid()}")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
