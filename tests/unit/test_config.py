"""Configuration loading: files, extends, --set, interpolation, validation, secrets; durations."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.config import ENV_VAR, SCHEMA_PATH, Config, ConfigError, load_config
from support.config.loader import _deep_merge
from support.units import format_duration, parse_duration, parse_size

PROJECT = Path(__file__).resolve().parents[2]
LAB = PROJECT / "config" / "lab.yaml"
EXAMPLE = PROJECT / "config" / "example-two-dc.yaml"


def minimal() -> dict[str, Any]:
    def dc(n: int) -> dict[str, Any]:
        return {
            "rest": {
                "url": f"https://10.0.0.{n}:9714/streams/resources",
                "auth": {"type": "basic", "username": "admin", "password": f"pw-{n}-secret"},
            },
            "exchange": {"url": f"https://10.0.0.{n}:9715/streams/data"},
        }

    return {
        "datacenters": {"dc1": dc(1), "dc2": dc(2)},
        "applications": {
            "orders": {
                "job_name": "orders",
                "bundle": "orders",
                "source": {"operator": "OrdersIn"},
                "sink": {"operator": "OrdersOut"},
            }
        },
    }


def write(directory: Path, name: str, content: dict[str, Any] | str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text)
    return path


def error_of(path: Path | str | None, overrides: list[str] | None = None, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides or [], **kwargs)
    return caught.value


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "streams-password"
    path.parent.mkdir()
    path.write_text("lab-Pa55word-xyz\n")
    return path


# ----------------------------------------------------------------------------------- shipped files


def test_lab_yaml_loads_with_its_password_file_replaced_by_an_override(password_file: Path) -> None:
    overrides = [f"datacenters.{dc}.rest.auth.password=${{file:{password_file}}}" for dc in ("dc1", "dc2")]

    config = load_config(LAB, overrides, run_id="r1")

    assert config.datacenters() == ["dc1", "dc2"]
    assert config.get("datacenters.dc2.rest.url") == "https://198.18.2.10:9714/streams/resources"
    assert config.get("datacenters.dc2.rest.instance") == "streams-dc2"
    assert config.get("datacenters.dc1.rest.auth.password") == "lab-Pa55word-xyz"
    config_file = config.get("applications.orders.submission_parameters.configFileName")
    assert config_file == "/run/xdc-lab/{dc}/crossdc/orders.cfg"
    assert config.duration("run.scenario_timeout") == 300.0
    assert config.duration("http.backoff") == 0.2
    assert config.duration("objectives.orders.rto") == 60.0
    assert config.get("traffic.input_file") is None


def test_lab_yaml_loads_from_a_copy_that_extends_it(tmp_path: Path, password_file: Path) -> None:
    shutil.copy(LAB, tmp_path / "lab.yaml")
    secret = {"rest": {"auth": {"password": "${file:secrets/streams-password}"}}}
    child = write(tmp_path, "local.yaml", {"extends": "lab.yaml", "datacenters": {"dc1": secret, "dc2": secret}})

    config = load_config(child)

    assert config.get("datacenters.dc2.rest.auth.password") == "lab-Pa55word-xyz"
    assert config.get("name") == "embedded-lab"


def test_lab_yaml_names_the_missing_password_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    error = error_of(LAB, [f"datacenters.dc1.rest.auth.password=${{file:{missing}}}"])

    assert error.file == "--set"
    assert error.path == "datacenters.dc1.rest.auth.password"
    assert f"cannot read file {missing}" in error.problem and "not found" in error.problem


def test_example_two_dc_loads_with_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_DC1_PASSWORD", "prod-secret-1")
    monkeypatch.setenv("STREAMS_DC2_PASSWORD", "prod-secret-2")

    config = load_config(EXAMPLE)

    assert config.get("datacenters.dc1.rest.url").startswith("https://streams-a.example.com")
    assert {"prod-secret-1", "prod-secret-2"} <= config.secrets
    assert "prod-secret" not in config.to_yaml()


def test_example_two_dc_names_the_missing_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMS_DC1_PASSWORD", raising=False)

    error = error_of(EXAMPLE)

    assert error.path == "datacenters.dc1.rest.auth.password"
    assert "STREAMS_DC1_PASSWORD is not set" in error.problem


def test_default_file_comes_from_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "c.yaml", minimal())
    monkeypatch.setenv(ENV_VAR, str(path))

    assert load_config().source == path


# ------------------------------------------------------------------------------------ invalid files


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "name: x\ndatacenters:\n  dc1: [unclosed\n  dc2: {}\n")

    error = error_of(path)

    assert error.file == str(path) and error.path == "(root)"
    assert re.search(r"line \d+", error.problem)
    assert "\n" not in str(error)


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "name: a\nname: b\n")

    assert "duplicate key 'name'" in error_of(path).problem
    assert "line 2" in error_of(path).problem


@pytest.mark.parametrize(("text", "problem"), [("", "empty"), ("- a\n- b\n", "got a list")])
def test_empty_or_non_mapping_document(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in error_of(write(tmp_path, "x.yaml", text)).problem


def test_missing_config_file(tmp_path: Path) -> None:
    error = error_of(tmp_path / "absent.yaml")

    assert str(error) == f"{tmp_path / 'absent.yaml'}: (root): cannot read configuration: file not found"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    doc = minimal()
    doc["datacenters"]["dc1"]["rset"] = doc["datacenters"]["dc1"].pop("rest")
    path = write(tmp_path, "c.yaml", doc)

    assert str(error_of(path)) == f"{path}: datacenters.dc1.rset: unknown key"


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    doc = minimal()
    del doc["datacenters"]["dc1"]["rest"]["url"]
    path = write(tmp_path, "c.yaml", doc)

    assert str(error_of(path)) == f"{path}: datacenters.dc1.rest.url: is required"


def test_missing_password_of_basic_auth_is_named(tmp_path: Path) -> None:
    doc = minimal()
    del doc["datacenters"]["dc2"]["rest"]["auth"]["password"]

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert (error.path, error.problem) == ("datacenters.dc2.rest.auth.password", "is required")


def test_bad_type(tmp_path: Path) -> None:
    doc = minimal()
    doc["http"] = {"retries": "three"}

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert (error.path, error.problem) == ("http.retries", "expected integer, got string 'three'")


def test_bad_enum_value(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "c.yaml", minimal()), ["run.log_level=LOUD"])

    assert error.path == "run.log_level"
    assert error.problem == "must be one of DEBUG, INFO, WARNING, ERROR; got 'LOUD'"


@pytest.mark.parametrize("value", ["5 minuets", "-3 s", "soon", "true"])
def test_bad_duration(tmp_path: Path, value: str) -> None:
    error = error_of(write(tmp_path, "c.yaml", minimal()), [f"run.scenario_timeout={value}"])

    assert error.path == "run.scenario_timeout"
    assert "duration" in error.problem or "expected number or string" in error.problem


def test_too_few_datacenters(tmp_path: Path) -> None:
    doc = minimal()
    del doc["datacenters"]["dc2"]

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert (error.path, error.problem) == ("datacenters", "needs at least 2 entries, has 1")


def test_bad_datacenter_name(tmp_path: Path) -> None:
    doc = minimal()
    doc["datacenters"]["DC-One"] = doc["datacenters"].pop("dc1")

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert error.path == "datacenters.DC-One" and error.problem.startswith("invalid name")


def test_objectives_must_name_an_application(tmp_path: Path) -> None:
    doc = minimal()
    doc["objectives"] = {"invoices": {"rto": "30 s"}}

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert error.path == "objectives.invoices" and "unknown application 'invoices'" in error.problem


def test_schema_errors_never_show_secret_values(tmp_path: Path) -> None:
    doc = minimal()
    doc["datacenters"]["dc1"]["rest"]["auth"]["password"] = 12345678

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert error.path == "datacenters.dc1.rest.auth.password"
    assert "12345678" not in str(error) and "***" in str(error)


def test_config_error_is_always_one_line() -> None:
    error = ConfigError("f.yaml", "a.b", "first\nsecond")

    assert str(error) == "f.yaml: a.b: first second"
    assert (error.file, error.path, error.problem) == ("f.yaml", "a.b", "first second")


# ----------------------------------------------------------------------------------- interpolation


def test_env_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_USER", "alice")
    monkeypatch.setenv("EMPTY_VAR", "")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    doc = minimal()
    doc["name"] = "lab of ${env:LAB_USER}"
    doc["datacenters"]["dc1"]["rest"]["auth"]["username"] = "${env:UNSET_VAR:-fallback}"
    doc["datacenters"]["dc2"]["rest"]["auth"]["username"] = "${env:EMPTY_VAR:-used-when-empty}"

    config = load_config(write(tmp_path, "c.yaml", doc))

    assert config.get("name") == "lab of alice"
    assert config.get("datacenters.dc1.rest.auth.username") == "fallback"
    assert config.get("datacenters.dc2.rest.auth.username") == "used-when-empty"


def test_unknown_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_XYZ", raising=False)
    doc = minimal()
    doc["name"] = "x ${env:NO_SUCH_VAR_XYZ}"
    path = write(tmp_path, "c.yaml", doc)

    assert str(error_of(path)) == (
        f"{path}: name: environment variable NO_SUCH_VAR_XYZ is not set (referenced as ${{env:NO_SUCH_VAR_XYZ}})"
    )


def test_file_reference_is_relative_to_the_file_that_contains_it(tmp_path: Path) -> None:
    write(tmp_path, "base/token.txt", "tok-from-file\n\n")
    base = minimal()
    base["datacenters"]["dc1"]["rest"]["auth"] = {"type": "bearer", "token": "${file:token.txt}"}
    write(tmp_path, "base/base.yaml", base)
    child = write(tmp_path, "child.yaml", {"extends": "base/base.yaml", "name": "child"})

    config = load_config(child)

    assert config.get("datacenters.dc1.rest.auth.token") == "tok-from-file"


def test_missing_file_reference(tmp_path: Path) -> None:
    doc = minimal()
    doc["datacenters"]["dc1"]["rest"]["auth"]["password"] = "${file:missing.txt}"
    path = write(tmp_path, "c.yaml", doc)

    error = error_of(path)

    assert error.file == str(path) and error.path == "datacenters.dc1.rest.auth.password"
    assert f"cannot read file {tmp_path / 'missing.txt'}" in error.problem


def test_refs_keep_types_when_whole_and_are_stringified_when_embedded(tmp_path: Path) -> None:
    doc = minimal()
    doc["http"] = {"retries": 4}
    doc["traffic"] = {"seed": "${ref:http.retries}"}
    doc["name"] = "retries=${ref:http.retries} of ${ref:applications.orders.job_name}"
    doc["datacenters"]["dc2"]["exchange"] = "${ref:datacenters.dc1.exchange}"

    config = load_config(write(tmp_path, "c.yaml", doc))

    assert config.get("traffic.seed") == 4
    assert config.get("name") == "retries=4 of orders"
    assert config.get("datacenters.dc2.exchange") == {"url": "https://10.0.0.1:9715/streams/data"}


def test_refs_resolve_through_other_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE", "east")
    doc = minimal()
    doc["name"] = "${ref:run.reports_dir}"
    doc["run"] = {"reports_dir": "reports/${env:SITE}/${run_id}"}

    config = load_config(write(tmp_path, "c.yaml", doc), run_id="20261126-1")

    assert config.get("name") == "reports/east/20261126-1"
    assert config.run_id == "20261126-1"


def test_run_id_defaults_to_a_timestamp(tmp_path: Path) -> None:
    doc = minimal()
    doc["name"] = "${run_id}"

    config = load_config(write(tmp_path, "c.yaml", doc))

    assert re.fullmatch(r"\d{8}-\d{6}", config.get("name"))


def test_bad_ref(tmp_path: Path) -> None:
    doc = minimal()
    doc["name"] = "${ref:run.nothing_here}"
    path = write(tmp_path, "c.yaml", doc)

    assert (
        str(error_of(path)) == f"{path}: name: ${{ref:run.nothing_here}} refers to run.nothing_here, which is not set"
    )


def test_ref_cycle(tmp_path: Path) -> None:
    doc = minimal()
    doc["name"] = "${ref:run.reports_dir}"
    doc["run"] = {"reports_dir": "x/${ref:name}"}

    error = error_of(write(tmp_path, "c.yaml", doc))

    assert "reference cycle: name -> run.reports_dir -> name" in error.problem


def test_ref_to_an_enclosing_mapping_is_a_cycle(tmp_path: Path) -> None:
    doc = minimal()
    doc["traffic"] = {"input_file": "${ref:traffic}"}

    assert "reference cycle" in error_of(write(tmp_path, "c.yaml", doc)).problem


def test_unknown_reference_kind_and_escape(tmp_path: Path) -> None:
    doc = minimal()
    doc["name"] = "literal $${env:HOME}"
    assert load_config(write(tmp_path, "ok.yaml", doc)).get("name") == "literal ${env:HOME}"

    doc["name"] = "${vault:secret/x}"
    assert "unknown reference ${vault:secret/x}" in error_of(write(tmp_path, "bad.yaml", doc)).problem


# ------------------------------------------------------------------------------------------ extends


def test_extends_deep_merges_mappings_and_replaces_lists_and_scalars(tmp_path: Path) -> None:
    base = minimal()
    base["name"] = "base"
    base["http"] = {"retries": 1, "backoff": "1 s"}
    base["applications"]["orders"]["submission_parameters"] = {"a": "1", "b": "2"}
    write(tmp_path, "base.yaml", base)
    write(
        tmp_path,
        "middle.yaml",
        {
            "extends": "base.yaml",
            "http": {"retries": 2},
            "applications": {"orders": {"submission_parameters": {"b": "3"}}},
        },
    )
    child = write(tmp_path, "sub/child.yaml", {"extends": "../middle.yaml", "name": "child"})

    config = load_config(child)

    assert config.get("name") == "child"
    assert config.get("http") == {
        "retries": 2,
        "backoff": "1 s",
        "connect_timeout": "3 seconds",
        "read_timeout": "15 seconds",
    }
    assert config.get("applications.orders.submission_parameters") == {"a": "1", "b": "3"}
    assert "extends" not in config.data


def test_merge_replaces_lists_and_scalars_and_merges_mappings() -> None:
    # The schema has no list-valued key yet, so the merge rule for lists is checked on the merge itself.
    base = {"a": {"x": [1, 2, 3], "y": 1, "z": {"deep": True}}, "b": "keep"}
    child = {"a": {"x": [9], "z": {"more": 1}, "y": None}}

    assert _deep_merge(base, child) == {"a": {"x": [9], "y": None, "z": {"deep": True, "more": 1}}, "b": "keep"}
    assert base["a"]["x"] == [1, 2, 3]


def test_extends_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", {"extends": "b.yaml"})
    write(tmp_path, "b.yaml", {"extends": "a.yaml"})

    error = error_of(tmp_path / "a.yaml")

    assert error.path == "extends" and "extends cycle" in error.problem
    assert "a.yaml -> " in error.problem and "b.yaml" in error.problem


def test_extends_of_a_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", {"extends": "nowhere.yaml"})

    assert str(error_of(path)) == f"{path}: extends: cannot read {tmp_path / 'nowhere.yaml'}: file not found"


def test_errors_name_the_file_that_holds_the_bad_value(tmp_path: Path) -> None:
    base = minimal()
    base["run"] = {"log_level": "CHATTY"}
    base_path = write(tmp_path, "base.yaml", base)
    child = write(tmp_path, "child.yaml", {"extends": "base.yaml", "name": "c"})

    assert error_of(child).file == str(base_path)


# ---------------------------------------------------------------------------------------- overrides


def test_overrides_parse_yaml_scalars_and_create_mappings(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", minimal())

    config = load_config(
        path,
        [
            "http.retries=5",
            "traffic.input_file=null",
            "name=a: b",
            "applications.orders.submission_parameters.crossDCInitDelay='1.0'",
            "objectives.orders.max_lost=0",
        ],
    )

    assert config.get("http.retries") == 5
    assert config.get("traffic.input_file") is None
    assert config.get("name") == "a: b"
    assert config.get("applications.orders.submission_parameters") == {"crossDCInitDelay": "1.0"}
    assert config.get("objectives.orders") == {"max_lost": 0}


@pytest.mark.parametrize("override", ["no-equals-sign", "=value", "a..b=1", ".a=1"])
def test_malformed_override(tmp_path: Path, override: str) -> None:
    error = error_of(write(tmp_path, "c.yaml", minimal()), [override])

    assert error.file == "--set" and "malformed override" in error.problem


def test_override_through_a_scalar_is_an_error(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "c.yaml", minimal()), ["applications.orders.job_name.x=1"])

    assert error.file == "--set"
    assert "applications.orders.job_name is a string, not a mapping" in error.problem


def test_unknown_key_from_an_override_blames_the_override(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "c.yaml", minimal()), ["http.retires=5"])

    assert str(error) == "--set: http.retires: unknown key"


# ------------------------------------------------------------------------------------------ Config


def test_get_duration_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.yaml", minimal()))

    assert config.get("http.retries") == 3  # schema default
    assert config.duration("http.read_timeout") == 15.0
    assert config.duration("traffic.batch_interval") == 0.05
    assert config.get("run.nothing", None) is None
    assert config.duration("run.nothing", default="2 minutes") == 120.0
    assert config.get("applications.orders.sink.port") == 0
    with pytest.raises(ConfigError) as caught:
        config.get("run.nothing")
    assert str(caught.value) == f"{config.source}: run.nothing: is not set"
    with pytest.raises(ConfigError, match=r"run.log_level: not a duration: 'INFO'"):
        config.duration("run.log_level")


def test_secrets_are_redacted_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DC2_PW", "env-secret-777")
    doc = minimal()
    doc["datacenters"]["dc2"]["rest"]["auth"]["password"] = "prefix-${env:DC2_PW}"
    doc["datacenters"]["dc1"]["exchange"]["auth"] = {"type": "bearer", "token": "tok-abc-123"}
    doc["name"] = "uses ${ref:datacenters.dc1.rest.auth.password} in a non-secret key"

    config = load_config(write(tmp_path, "c.yaml", doc))

    assert {"pw-1-secret", "prefix-env-secret-777", "env-secret-777", "tok-abc-123"} <= config.secrets
    redacted = config.redacted()
    assert redacted["datacenters"]["dc1"]["rest"]["auth"]["password"] == "***"
    assert redacted["datacenters"]["dc2"]["rest"]["auth"]["password"] == "***"
    assert redacted["datacenters"]["dc1"]["exchange"]["auth"]["token"] == "***"
    assert redacted["name"] == "uses *** in a non-secret key"
    assert redacted["datacenters"]["dc1"]["rest"]["auth"]["username"] == "admin"
    assert config.get("datacenters.dc1.rest.auth.password") == "pw-1-secret"  # data itself untouched

    assert config.redact("login admin/pw-1-secret, env env-secret-777, tok-abc-123") == "login admin/***, env ***, ***"
    text = config.to_yaml()
    for secret in config.secrets:
        assert secret not in text
    assert "***" in text
    assert "pw-1-secret" in config.to_yaml(redacted=False)
    assert "pw-1-secret" not in repr(config)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.yaml", minimal()))

    with pytest.raises(AttributeError):
        config.source = Path("other")  # type: ignore[misc]
    assert isinstance(config, Config)


def test_loading_does_not_modify_the_documents(tmp_path: Path) -> None:
    doc = minimal()
    before = copy.deepcopy(doc)
    path = write(tmp_path, "c.yaml", doc)

    load_config(path, ["http.retries=1"])

    assert yaml.safe_load(path.read_text()) == before


# ---------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500 ms", 0.5),
        ("0.5 s", 0.5),
        ("30 seconds", 30.0),
        ("1 second", 1.0),
        ("2 minutes", 120.0),
        ("1 minute", 60.0),
        ("1.5 min", 90.0),
        ("1h", 3600.0),
        ("2 hours", 7200.0),
        ("10", 10.0),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "fast", "5 parsecs", "-1 s", "1 s 2", -1, float("nan"), True, None])
def test_parse_duration_rejects_nonsense(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (1, "1 second"),
        (45.5, "45.5 seconds"),
        (125, "125 seconds"),
        (150, "2.5 minutes"),
        (7200, "2 hours"),
    ],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_mapping_referenced_twice_is_dumped_without_yaml_anchors(tmp_path: Path) -> None:
    doc = minimal()
    doc["datacenters"]["dc1"]["exchange"] = "${ref:datacenters.dc1.rest}"
    doc["datacenters"]["dc2"]["exchange"] = "${ref:datacenters.dc1.exchange}"

    text = load_config(write(tmp_path, "c.yaml", doc)).to_yaml(redacted=False)

    assert "&id" not in text and "*id" not in text


# ------------------------------------------------------------------------------------------ Settings


def _with_optional_sections() -> dict[str, Any]:
    """minimal() plus the optional sub-sections whose keys have schema defaults (ssh, its bastion, prometheus, the
    notification webhook)."""
    doc = minimal()
    for dc in doc["datacenters"].values():
        dc["ssh"] = {"user": "root", "key_file": "/k", "known_hosts": "/kh", "bastion": {"host": "10.0.0.1"}}
        dc["hosts"] = ["10.0.0.9"]
    doc["metrics"] = {"prometheus": {"url": "http://127.0.0.1:9090"}}
    doc["applications"]["orders"]["standby"] = {"command": "standalone -P configFileName=/opt/{dc}.cfg"}
    doc["notify"] = {"webhook": {"url_env": "FAILOVER_TESTER_WEBHOOK_URL"}}
    return doc


def _expected(default: Any, node: Mapping[str, Any]) -> Any:
    """A schema default as the typed settings carry it."""
    if node.get("$ref") == "#/$defs/duration":
        return parse_duration(default)
    if isinstance(default, list):
        return tuple(default)
    if isinstance(node.get("pattern"), str) and "[kKmMgGtT]" in node["pattern"]:
        return parse_size(default)
    return default


def _schema_defaults(schema: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Any, Mapping[str, Any]]]:
    """(path with '*' for named entries, default, property schema) of every default in the schema."""
    found: list[tuple[tuple[str, ...], Any, Mapping[str, Any]]] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        while "$ref" in node and node["$ref"] != "#/$defs/duration":
            node = {**schema["$defs"][node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        for key, child in node.get("properties", {}).items():
            if "default" in child:
                found.append(((*path, key), child["default"], child))
            walk(child, (*path, key))
        if isinstance(node.get("additionalProperties"), Mapping):
            walk(node["additionalProperties"], (*path, "*"))

    walk(schema, ())
    return found


def _settings_at(settings: Any, path: tuple[str, ...], names: Mapping[str, str]) -> Any:
    node = settings
    parent = ""
    for part in path:
        node = node[names[parent]] if part == "*" else getattr(node, part)
        parent = part
    return node


def test_every_schema_default_reaches_the_typed_settings(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "c.yaml", _with_optional_sections())).settings
    schema = json.loads(SCHEMA_PATH.read_text())
    names = {"datacenters": "dc1", "applications": "orders", "objectives": "orders"}
    checked = 0
    for path, default, node in _schema_defaults(schema):
        value = _settings_at(settings, path, names)
        if default == {}:
            assert value is not None, path  # a section that defaults to empty still exists, with its defaults
            continue
        assert value == _expected(default, node), f"{'.'.join(path)}: {value!r} != schema default {default!r}"
        checked += 1
    assert checked >= 25


def test_documented_derived_defaults(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "c.yaml", minimal())).settings

    assert settings.faults.ttl == settings.run.scenario_timeout == 300.0
    assert settings.faults.directory == "/run/xdc-fault"
    assert settings.datacenters["dc1"].exchange.auth == settings.datacenters["dc1"].rest.auth
    assert settings.metrics.clock_tolerance == 0.5
    assert settings.metrics.prometheus is None
    assert settings.datacenters["dc1"].ssh is None
    assert settings.objectives == {}


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "c.yaml", minimal())).settings

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.metrics.clock_tolerance = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.run = settings.run  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.datacenters["dc3"] = settings.datacenters["dc1"]  # type: ignore[index]
    with pytest.raises(TypeError):
        settings.applications["orders"].submission_parameters["x"] = "1"  # type: ignore[index]


def test_secrets_are_not_in_the_settings_repr(tmp_path: Path) -> None:
    doc = _with_optional_sections()
    doc["datacenters"]["dc1"]["ssh"]["key_passphrase"] = "phrase-very-secret"
    doc["datacenters"]["dc2"]["exchange"]["auth"] = {"type": "bearer", "token": "tok-very-secret"}
    doc["datacenters"]["dc1"]["jmx"] = {"url": "service:jmx:rmi://x", "username": "u", "password": "jmx-secret-pw"}
    config = load_config(write(tmp_path, "c.yaml", doc))

    text = repr(config.settings)

    for secret in ("pw-1-secret", "pw-2-secret", "phrase-very-secret", "tok-very-secret", "jmx-secret-pw"):
        assert secret not in text
    assert config.settings.datacenters["dc1"].rest.auth.password == "pw-1-secret"  # kept as a value
    assert config.settings.datacenters["dc2"].exchange.auth.token == "tok-very-secret"


def test_set_overrides_reach_the_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", minimal())

    settings = load_config(path, ["metrics.clock_tolerance=2 s", "faults.memory_max=256 MiB", "http.retries=0",
                                  "faults.ttl=90 seconds", "traffic.policy=static"]).settings

    assert settings.metrics.clock_tolerance == 2.0
    assert settings.faults.memory_max == 256 * 1024**2
    assert settings.http.retries == 0
    assert settings.faults.ttl == 90.0
    assert settings.traffic.policy == "static"


def test_settings_are_built_once(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.yaml", minimal()))

    assert config.settings is config.settings


def test_objectives_are_typed_and_absent_ones_are_none(tmp_path: Path) -> None:
    doc = minimal()
    doc["objectives"] = {"orders": {"rto": "1 minute", "max_lost": 3}}

    objectives = load_config(write(tmp_path, "c.yaml", doc)).settings.objectives["orders"]

    assert objectives.rto == 60.0 and objectives.max_lost == 3 and objectives.rpo is None
    assert objectives.as_dict() == {"rto": 60.0, "max_lost": 3}
