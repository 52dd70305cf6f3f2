"""Redaction everywhere (issue 13, gap 9): one redactor (support/redact.py) for every output, URL passwords are
secrets, secrets under 4 characters and http:// with credentials are config errors."""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cli.config import config_command
from support.config import ConfigError, load_config
from support.orchestration import Journal
from support.redact import Redactor, redacting

SECRET = "S3cret-Pa55"


def config_data(**dc1: Any) -> dict[str, Any]:
    def dc(n: int) -> dict[str, Any]:
        return {
            "rest": {"url": f"https://10.0.0.{n}:9714/streams/resources",
                     "auth": {"type": "basic", "username": "admin", "password": f"{SECRET}-{n}"}},
            "exchange": {"url": f"https://10.0.0.{n}:9715/streams/data"},
        }

    data = {
        "datacenters": {"dc1": dc(1), "dc2": dc(2)},
        "applications": {"orders": {"job_name": "orders", "bundle": "/opt/apps/orders.sab",
                                    "source": {"operator": "In", "port": 0}, "sink": {"operator": "Out", "port": 0}}},
    }
    for key, value in dc1.items():
        data["datacenters"]["dc1"][key] = value
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused(tmp_path: Path, data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, data))
    return caught.value


def test_the_redactor_hides_a_secret_and_its_wire_forms() -> None:
    redactor = Redactor({SECRET}, {"admin"})
    header = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    text = (f"pw {SECRET}; b64 {base64.b64encode(SECRET.encode()).decode()}; header Basic {header}; "
            f"quoted {SECRET.replace('-', '%2D')} url https://bob:{SECRET}@h:1/x and https://eve:unknown-pw@h/")
    clean = redactor.redact(text)
    assert SECRET not in clean and header not in clean and "unknown-pw" not in clean
    assert "https://bob:***@h:1/x" in clean and "https://eve:***@h/" in clean
    assert redactor.redact_tree({"a": [f"x{SECRET}", 1, None]}) == {"a": ["x***", 1, None]}


def test_a_password_inside_a_url_is_a_secret_and_config_show_hides_it(tmp_path: Path) -> None:
    data = config_data()
    data["metrics"] = {"prometheus": {"url": f"https://prom:{SECRET}@10.0.0.9:9090"}}
    config = load_config(write(tmp_path, data))
    assert SECRET in config.secrets
    assert SECRET not in config.redact(f"GET https://10.0.0.9/?q={SECRET}")
    out = io.StringIO()
    args = argparse.Namespace(file=str(write(tmp_path, data)), overrides=[], config_action="show")
    assert config_command(args, stdout=out, stderr=io.StringIO()) == 0
    assert SECRET not in out.getvalue() and "prom:***@10.0.0.9" in out.getvalue()


@pytest.mark.parametrize("where", ["password", "url", "env"])
def test_a_secret_under_4_characters_is_a_config_error(tmp_path: Path, where: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = config_data()
    if where == "password":
        data["datacenters"]["dc1"]["rest"]["auth"]["password"] = "abc"
    elif where == "url":
        data["metrics"] = {"prometheus": {"url": "https://prom:ab@10.0.0.9:9090"}}
    else:
        monkeypatch.setenv("SHORT_PW", "xy")
        data["datacenters"]["dc1"]["rest"]["auth"]["password"] = "${env:SHORT_PW}"
    error = refused(tmp_path, data)
    assert "shorter than 4 characters" in str(error) and len(str(error).splitlines()) == 1
    assert "abc" not in str(error) and "xy" not in str(error).split(":")[-1]


def test_http_with_credentials_is_a_config_error(tmp_path: Path) -> None:
    data = config_data(rest={"url": "http://10.0.0.1:9714/streams/resources",
                             "auth": {"type": "basic", "username": "admin", "password": SECRET}})
    error = refused(tmp_path, data)
    assert error.path == "datacenters.dc1.rest.url" and "http:// with credentials" in error.problem
    # the exchange inherits the rest auth: http:// there is refused too
    error = refused(tmp_path, config_data(exchange={"url": "http://10.0.0.1:9715/streams/data"}))
    assert error.path == "datacenters.dc1.exchange.url"


def test_the_journal_file_and_redacting_streams_carry_no_secret(tmp_path: Path) -> None:
    redactor = Redactor({SECRET})
    journal = Journal(tmp_path / "journal.jsonl", "s", redact=redactor.redact)
    journal.record("fault.injected", error=f"ssh failed: password {SECRET}")
    assert SECRET not in (tmp_path / "journal.jsonl").read_text()
    assert journal.events()[0].fields["error"].endswith(SECRET)  # in memory as given (the tester's own logic)
    out = io.StringIO()
    print(f"oops {SECRET}", file=redacting(out, redactor.redact))
    assert out.getvalue() == "oops ***\n"


def test_scrub_tree_cleans_every_text_file_of_a_run(tmp_path: Path) -> None:
    redactor = Redactor({SECRET}, {"admin"})
    (tmp_path / "junit").mkdir()
    (tmp_path / "junit" / "TESTS-x.xml").write_text(f"<failure message='{SECRET}'/>")
    (tmp_path / "a-result.json").write_text(json.dumps({"m": base64.b64encode(SECRET.encode()).decode()}))
    (tmp_path / "data.parquet").write_bytes(b"\x00\x01" + SECRET.encode())
    changed = redactor.scrub_tree(tmp_path)
    assert sorted(p.name for p in changed) == ["TESTS-x.xml", "a-result.json"]
    assert (tmp_path / "data.parquet").read_bytes().endswith(SECRET.encode())  # binary: not touched


def test_from_settings_finds_the_same_secrets(tmp_path: Path) -> None:
    data = config_data()
    data["metrics"] = {"prometheus": {"url": f"https://prom:{SECRET}x@10.0.0.9:9090"}}
    config = load_config(write(tmp_path, data))
    assert Redactor.from_settings(config.settings).secrets >= {f"{SECRET}-1", f"{SECRET}-2", f"{SECRET}x"}


def test_a_config_error_never_shows_a_url_password(tmp_path: Path) -> None:
    data = config_data()
    data["datacenters"]["dc1"]["rest"]["url"] = f"ftp://admin:{SECRET}@10.0.0.1/x"
    error = refused(tmp_path, data)
    assert error.path == "datacenters.dc1.rest.url" and SECRET not in str(error), str(error)


def test_a_stored_run_config_with_redacted_secrets_loads(tmp_path: Path) -> None:
    """``judge`` reloads a run's config.yaml, written with every secret (URL passwords included) as ``***``."""
    data = config_data()
    data["datacenters"]["dc1"]["rest"]["auth"]["password"] = "***"
    data["datacenters"]["dc1"]["exchange"]["url"] = "https://probe:***@10.0.0.1:9715/streams/data"
    config = load_config(write(tmp_path, data))
    assert "***" not in config.secrets and config.redact("a *** b") == "a *** b"
