"""Crossdc wire codec and CLI argument checks (no lab needed)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from labwire import ROOT

from lab import crossdc


def test_heartbeat_bytes_are_native_byte_buffer() -> None:
    msg = crossdc.Message(crossdc.TYPE_HEARTBEAT, 7, "dc1")
    data = crossdc.encode(msg)
    assert data == struct.pack("<IQ", 1, 7) + b"\x03dc1" + struct.pack("<Q", 0) + b"\x00"
    assert crossdc.decode(data) == msg


def test_long_rstring_and_blob_roundtrip() -> None:
    origin = "d" * 200
    msg = crossdc.Message(crossdc.TYPE_SNAPSHOT, 2**40, origin, b"\x00\xffblob" * 100, "Aggregator")
    data = crossdc.encode(msg)
    assert data[12] == 0x80 and struct.unpack_from("<I", data, 13)[0] == 200
    assert crossdc.decode(data) == msg


@pytest.mark.parametrize("cut", [3, 12, 20, -1])
def test_truncated_payload_rejected(cut: int) -> None:
    data = crossdc.encode(crossdc.Message(2, 1, "dc1", b"abc", "Aggregator"))
    with pytest.raises(ValueError):
        crossdc.decode(data[:cut])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to check an unknown defect before bringing up")
def test_unknown_defect_rejected() -> None:
    r = _cli("up", "--defect", "lose-snapshot,bogus")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "bogus" in r.stderr


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin")


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None, reason="needs root and a system python3")
def test_not_root_one_line() -> None:
    def drop() -> None:
        os.setgid(65534)
        os.setuid(65534)

    assert SYSTEM_PYTHON is not None
    # the CLI needs only the standard library to refuse; a world-readable interpreter runs it as nobody,
    # on a world-readable copy of the package (the checkout itself may sit in a folder only root can read)
    where = Path(tempfile.mkdtemp(prefix="lab-nobody-"))
    where.chmod(0o755)
    shutil.copytree(ROOT / "lab", where / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [where, *where.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    r = subprocess.run(
        [SYSTEM_PYTHON, "-m", "lab", "up"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=drop,
    )
    shutil.rmtree(where)
    assert r.returncode == 2, r.stderr
    assert r.stderr == (
        "lab: the embedded lab needs root to create network namespaces (running as uid 65534); "
        "to test a real deployment run: failover-tester run --config config/example-two-dc.yaml\n"
    )
