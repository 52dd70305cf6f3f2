"""Hostile configuration files (issue 13): alias bombs, deep nesting, reference bombs, zero divisors and values
that would reach a shell on the hosts are one-line config errors (exit 2), never a traceback, gigabytes of
memory or a command run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.config import ConfigError, load_config
from support.config.loader import MAX_DEPTH, MAX_NODES, SCHEMA_PATH

PROJECT = Path(__file__).resolve().parents[2]
LAB = PROJECT / "config" / "lab.yaml"
# 9 levels of 9 aliases: 9**9 (387 million) strings once expanded, in 342 bytes
BOMB = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True))


def write(tmp_path: Path, text: str, name: str = "hostile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def lab_based(tmp_path: Path, body: str) -> Path:
    secret = tmp_path / "pw"
    secret.write_text("limits-secret-pw\n")
    return write(tmp_path, f"extends: {LAB}\n"
                           "datacenters:\n"
                           f"  dc1: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
                           f"  dc2: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n" + body)


def one_line_error(path: Path, overrides: list[str] | None = None) -> ConfigError:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides or [])
    assert time.monotonic() - started < 10
    assert "\n" not in str(caught.value)
    return caught.value


def test_an_alias_bomb_is_one_line_error_without_expanding_it(tmp_path: Path) -> None:
    assert len(BOMB) < 400
    error = one_line_error(write(tmp_path, BOMB))
    assert error.path == "(root)" and f"more than {MAX_NODES} values" in error.problem


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(MAX_DEPTH + 5)) + "  " * 70
                                  + "leaf: 1\n",
                                  "a: " + "{x: " * 3000 + "1" + "}" * 3000 + "\n"])
def test_deep_nesting_is_one_line_error(tmp_path: Path, text: str) -> None:
    error = one_line_error(write(tmp_path, text))
    assert "nests deeper than" in error.problem


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    assert "refers to the node that contains it" in one_line_error(write(tmp_path, "x: &x [1, *x]\n")).problem


def test_a_reference_bomb_is_one_line_error(tmp_path: Path) -> None:
    strings = "".join(f"  s{i}: \"${{ref:bomb.s{i - 1}}}${{ref:bomb.s{i - 1}}}\"\n" for i in range(1, 40))
    error = one_line_error(lab_based(tmp_path, "bomb:\n  s0: xxxxxxxx\n" + strings))
    assert "longer than" in error.problem or "unknown key" in error.problem  # either limit, before memory runs out
    lists = "".join(f"  l{i}: [\"${{ref:bomb.l{i - 1}}}\", \"${{ref:bomb.l{i - 1}}}\"]\n" for i in range(1, 40))
    error = one_line_error(lab_based(tmp_path, "bomb:\n  l0: [1]\n" + lists))
    assert f"more than {MAX_NODES} values" in error.problem


def test_a_deep_override_key_and_a_bomb_in_an_override_are_refused(tmp_path: Path) -> None:
    path = lab_based(tmp_path, "")
    assert "nests deeper" in one_line_error(path, [".".join(["k"] * 200) + "=1"]).problem
    flow = "[" * 3000 + "]" * 3000
    assert "nests deeper" in one_line_error(path, [f"run.tags={flow}"]).problem


def test_the_labs_anchors_still_work(tmp_path: Path) -> None:
    config = load_config(lab_based(tmp_path, ""))
    apps = config.data["applications"]
    shared = [name for name, app in apps.items() if app.get("data") == apps["orders"]["data"]]
    assert len(shared) >= 3


def _positive_durations() -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text())
    found: list[str] = []

    def walk(node: object, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            if node.get("$ref") == "#/$defs/duration" and node.get("exclusiveMinimum") == 0:
                found.append(".".join(p for p in path if p != "properties"))
            for key, child in node.items():
                walk(child, (*path, key))

    walk(schema["properties"], ())
    return found


def test_every_divisor_interval_and_timeout_is_covered() -> None:
    assert {"metrics.throughput_window", "metrics.interval", "traffic.batch_interval", "traffic.consumer_interval",
            "faults.ttl", "faults.ssh_timeout", "http.read_timeout", "run.scenario_timeout"} <= set(
        _positive_durations())


@pytest.mark.parametrize("dotted", _positive_durations())
@pytest.mark.parametrize("zero", ["0", "'0 s'", "'0ms'", "0.0"])
def test_a_zero_divisor_or_interval_is_refused(tmp_path: Path, dotted: str, zero: str) -> None:
    error = one_line_error(lab_based(tmp_path, ""), [f"{dotted}={zero}"])
    assert error.path == dotted and "must be > 0" in error.problem


# ------------------------------------------------------------------------- values that reach a shell

HOSTILE = ["$(touch {canary})", "`touch {canary}`", "x; touch {canary}", "x\ntouch {canary}", "x'\"y",
           "日本", "x && touch {canary}", "x | touch {canary}", "../../etc", " x"]
SHELL_PATHS = {  # every configuration string that reaches a shell on the hosts, as a --set override
    "datacenters.dc1.hosts": "[{value}]",
    "datacenters.dc1.ssh.bastion.host": "{value}",
    "faults.state_dir": "/run/{value}",
    "faults.python": "{value}",
    "faults.tag": "{value}",
    "datacenters.dc1.crossdc.snapshot_dir": "/run/{value}",
    "datacenters.dc1.crossdc.config_files.application": "/run/{value}",
    "datacenters.dc1.crossdc.streamtool": "{value}",
    "datacenters.dc1.ssh.sudo": "sudo {value}",
    "applications.orders.standby.log_file": "/run/{value}",
}


@pytest.mark.parametrize("dotted", sorted(SHELL_PATHS))
def test_a_hostile_value_where_a_shell_would_see_it_is_refused(tmp_path: Path, dotted: str) -> None:
    canary = tmp_path / "canary"
    path = lab_based(tmp_path, "")
    for raw in HOSTILE:
        if dotted.endswith(".sudo") and raw in ("../../etc", " x"):
            continue  # plain words in a command prefix (each one quoted): nothing a shell would read as code
        value = raw.format(canary=canary)
        override = json.dumps(SHELL_PATHS[dotted].format(value=value)) if "[" not in SHELL_PATHS[dotted] else \
            "[" + json.dumps(value) + "]"
        error = one_line_error(path, [f"{dotted}={override}"])
        assert error.path.startswith(dotted), (value, str(error))
    assert not canary.exists()


def test_a_hostile_config_set_exits_2_from_validate_and_a_dry_run_inject(tmp_path: Path) -> None:
    """Through the real command line: one line, exit 2, no traceback, and the canary never appears."""
    canary = tmp_path / "canary"
    secret = write(tmp_path, "limits-secret-pw\n", "pw")
    path = write(tmp_path, f"extends: {LAB}\n"
                           "datacenters:\n"
                           f"  dc1: {{hosts: ['198.18.1.10$(touch {canary})'], "
                           f"rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
                           f"  dc2: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
                           f"faults: {{state_dir: '/run/x;touch {canary}'}}\n")
    commands = [["config", "validate", str(path)],
                ["faults", "inject", "partition", "--between", "dc1", "dc2", "--dry-run", "--config", str(path)],
                # not a dry run: refused while loading, before any host is reached (no lab needed)
                ["faults", "inject", "partition", "--between", "dc1", "dc2", "--config", str(path)],
                ["config", "validate", str(write(tmp_path, BOMB, "bomb.yaml"))]]
    for argv in commands:
        done = subprocess.run([sys.executable, "-m", "support.cli", *argv], cwd=PROJECT, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not canary.exists()
