"""Constants of the embedded lab: state directory layout, addresses, ports, names.

Standard library only: imported by the instance service and by every PE.
"""

from __future__ import annotations

import os
from pathlib import Path

LAB_DIR = Path("/run/xdc-lab")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DCS: tuple[str, ...] = ("dc1", "dc2")
DC_ADDR: dict[str, str] = {"dc1": "198.18.1.10", "dc2": "198.18.2.10"}
LAB_NET = "198.18.0.0/15"
ROOT_ADDR = "198.18.0.1"
WAN_ROOT_ADDR = "198.18.0.2"

NETNS_WAN = "xdc-wan"
ROOT_VETH = "xdc-root"

REST_PORT = 9714
DATA_PORT = 9715
CROSSDC_HTTP_PORT = 25091
SPECIAL_MESSAGE_PORT = 25099

USER = "streamsadmin"
PRODUCT_VERSION = "7.2.0.0"
PRODUCT_NAME = "Teracloud Streams"

KNOWN_DEFECTS: tuple[str, ...] = (
    "lose-snapshot",
    "no-takeover",
    "slow-detection",
    "duplicate-replay",
    "split-brain",
    "drop-sink",
    "reorder",
    "corrupt-output",
    "refuse-but-deliver",
    "lost-ack",
    "early-input",
    "malformed-output",
)
DEFECTS_ENV = "XDC_LAB_DEFECTS"


def netns(dc: str) -> str:
    return f"xdc-{dc}"


def instance_id(dc: str) -> str:
    return f"streams-{dc}"


def other_dc(dc: str) -> str:
    return "dc2" if dc == "dc1" else "dc1"


def rest_base(dc: str) -> str:
    return f"https://{DC_ADDR[dc]}:{REST_PORT}"


def data_base(dc: str) -> str:
    return f"https://{DC_ADDR[dc]}:{DATA_PORT}"


def ca_pem() -> Path:
    return LAB_DIR / "ca" / "ca.pem"


def ca_key() -> Path:
    return LAB_DIR / "ca" / "ca.key"


def tls_dir(dc: str) -> Path:
    return LAB_DIR / dc / "tls"


def password_file() -> Path:
    return LAB_DIR / "secrets" / "streams-password"


def truth_file() -> Path:
    return LAB_DIR / "truth.jsonl"


def logs_dir() -> Path:
    return LAB_DIR / "logs"


def state_file() -> Path:
    return LAB_DIR / "state.json"


def snapshots_dir(dc: str) -> Path:
    return LAB_DIR / dc / "snapshots"


def pes_dir(dc: str) -> Path:
    return LAB_DIR / dc / "pes"


def crossdc_dir(dc: str) -> Path:
    """The DC host's toolkit files: configuration files (``configFileName``) and failover scripts."""
    return LAB_DIR / dc / "crossdc"


def appconfig_dir(dc: str) -> Path:
    """The instance's application configurations, one ``<name>.json`` each (written only by the instance)."""
    return LAB_DIR / dc / "appconfigs"


def nameservice_dir(dc: str) -> Path:
    """The instance's name service: one file per entry (``getnsentry``), written by the PE that registers it."""
    return LAB_DIR / dc / "nameservice"


def bin_dir() -> Path:
    """Commands the lab installs on its DC hosts (``streamtool``, ``standalone``)."""
    return LAB_DIR / "bin"


def bundles_dir() -> Path:
    """Application bundles (``<application>.sab``) as a team would have them on its build host."""
    return LAB_DIR / "bundles"


def local_dc() -> str | None:
    """The DC whose host address is local here (inside that DC's network namespace), else None (e.g. the root
    namespace): how the lab's host commands (streamtool, standalone) know which DC host they run on."""
    import socket

    for dc, addr in DC_ADDR.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr, 0))
            except OSError:
                continue
            return dc
    return None


def read_password() -> str:
    return password_file().read_text(encoding="ascii").strip()


def active_defects() -> frozenset[str]:
    """Defect switches handed down by `lab up --defect` through the environment."""
    raw = os.environ.get(DEFECTS_ENV, "")
    return frozenset(d.strip() for d in raw.split(",") if d.strip())


def service_dc(prog: str, argv: list[str] | None = None) -> str:
    """The ``--dc`` argument of a lab service's command line (``python -m lab.<service> --dc dc1``), with the
    service's logging set up on stderr."""
    import argparse
    import logging
    import sys

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--dc", required=True, choices=DCS)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return str(args.dc)
