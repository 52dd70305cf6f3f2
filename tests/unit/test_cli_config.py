"""``failover-tester config validate|show`` through its argparse wiring."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from support.cli.config import add_config_parser, config_command

PROJECT = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="failover-tester")
    add_config_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func is config_command
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    secret = tmp_path / "pw"
    secret.write_text("cli-secret-pw\n")
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"extends: {PROJECT / 'config' / 'lab.yaml'}\n"
        "datacenters:\n"
        f"  dc1: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
        f"  dc2: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
    )
    return path


def test_validate_reports_counts(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config", "validate", str(config_file)], capsys)

    assert (code, err) == (0, "")
    assert out == f"{config_file}: valid (2 data centers, 5 applications)\n"


def test_validate_applies_overrides(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config", "validate", str(config_file), "--set", "http.retries=many"], capsys)

    assert (code, out) == (2, "")
    assert err == "--set: http.retries: expected integer, got string 'many'\n"


def test_invalid_file_is_one_line_on_stderr_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")

    code, out, err = run(["config", "validate", str(bad)], capsys)

    assert (code, out) == (2, "")
    assert err.startswith(f"{bad}: (root): YAML error at line ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_show_prints_resolved_yaml_with_secrets_masked(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config", "show", str(config_file), "--set", "name=from-cli"], capsys)

    assert (code, err) == (0, "")
    assert "cli-secret-pw" not in out
    shown = yaml.safe_load(out)
    assert shown["name"] == "from-cli"
    assert shown["datacenters"]["dc1"]["rest"]["auth"]["password"] == "***"
    assert shown["http"]["retries"] == 3
    assert "extends" not in shown


def test_default_file_comes_from_the_environment(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILOVER_TESTER_CONFIG", str(config_file))

    code, out, _ = run(["config", "validate"], capsys)

    assert code == 0 and out.startswith(f"{config_file}: valid")
