"""One typed, validated configuration object, built once per run.

Loading steps, in order:

1. read the YAML file (``FAILOVER_TESTER_CONFIG`` or ``config/lab.yaml`` when no file is given);
2. ``extends: other.yaml`` (relative to the extending file, chains allowed; ``failover-tester:lab.yaml`` is the
   configuration of the embedded lab shipped with the tool): the base is deep-merged
   under the file (mappings merged recursively, lists and scalars replaced);
3. ``--set a.b.c=value`` overrides (value read as a YAML scalar; ``[..]``/``{..}`` as YAML flow);
4. interpolation in strings: ``${env:NAME}``, ``${env:NAME:-default}``, ``${file:PATH}`` (relative to the
   file that contains the reference), ``${ref:a.b}``, ``${run_id}``; ``$${`` is a literal ``${``.
   A string that is exactly one reference keeps the referenced value's type;
5. validation against ``config/schema.json`` (JSON Schema 2020-12), then the schema defaults are filled in;
6. semantic checks (durations parse, objectives name existing applications);
7. the frozen typed :class:`~support.config.settings.Settings` are built (``Config.settings``).

Every problem is a :class:`ConfigError` whose ``str()`` is one line ``FILE: dotted.path: problem``.
Secret values (under keys matching ``password|token|secret|passphrase``) never appear in errors and are
replaced by ``***`` in :meth:`Config.redacted`, :meth:`Config.redact` and :meth:`Config.to_yaml`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match

from support.config.settings import Settings, SettingsError, build_settings
from support.config.trust import check_plain_http_auth, check_secrets
from support.config.yamlread import MAX_DEPTH, MAX_NODES, MAX_STRING, TooLarge, exhausted, parse_yaml, yaml_problem
from support.packaged import config_dir, config_file
from support.redact import MIN_SECRET_LENGTH, Redactor, url_passwords
from support.units import parse_duration

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_VAR",
    "MISSING",
    "SCHEMA_PATH",
    "Config",
    "ConfigError",
    "is_secret_key",
    "load_config",
    "section_defaults",
]

DEFAULT_CONFIG = Path("config/lab.yaml")
ENV_VAR = "FAILOVER_TESTER_CONFIG"
SCHEMA_PATH = config_file("schema.json")
OVERRIDE_SOURCE = "--set"
ROOT = "(root)"
REDACTED = "***"

_SECRET_KEY_RE = re.compile(r"password|token|secret|passphrase", re.IGNORECASE)
_TOKEN_RE = re.compile(r"\$(\$?)\{([^{}]*)\}")
_ENV_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_OVERRIDE_RE = re.compile(r"^([^=\s]+)=(.*)$", re.DOTALL)

PathKey = tuple[str | int, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class ConfigError(Exception):
    """A configuration problem: ``str(e) == f"{file}: {path}: {problem}"``, always one line."""

    def __init__(self, file: str | Path, path: str, problem: str) -> None:
        self.file = str(file)
        self.path = path or ROOT
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.file}: {self.path}: {self.problem}")

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.problem}"


def is_secret_key(key: object) -> bool:
    """True for mapping keys whose values are secrets (``password``, ``api_token``, ``client_secret``...)."""
    return isinstance(key, str) and _SECRET_KEY_RE.search(key) is not None


def _is_secret_path(path: PathKey) -> bool:
    return any(is_secret_key(part) for part in path)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or ROOT


def _split_dotted(dotted: str) -> PathKey:
    parts: list[str | int] = []
    for segment in dotted.split("."):
        for piece in re.split(r"(\[\d+\])", segment):
            if not piece:
                continue
            parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    return tuple(parts)


def _lookup(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, int) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int | str) and str(part).isdigit():
            index = int(part)
            if index >= len(node):
                return MISSING
            node = node[index]
        else:
            return MISSING
    return node


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _show(value: Any, path: PathKey) -> str:
    """A short, secret-safe rendering of a value for error messages."""
    if _is_secret_path(path):
        return REDACTED
    if isinstance(value, str):
        value = Redactor().redact(value)  # a user:password@ in a URL
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return f"a {_type_name(value)}"


# ---------------------------------------------------------------------------------------------- YAML


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ROOT, "cannot read configuration: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, ROOT, f"cannot read configuration: {exc}") from None
    try:
        document = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, ROOT, yaml_problem(exc)) from None
    except TooLarge as exc:
        raise ConfigError(path, ROOT, str(exc)) from None
    except (RecursionError, MemoryError) as exc:
        raise ConfigError(path, ROOT, f"cannot read configuration: {exhausted(exc)}") from None
    if document is None:
        raise ConfigError(path, ROOT, "the file is empty; expected a mapping of settings")
    if not isinstance(document, dict):
        raise ConfigError(path, ROOT, f"expected a mapping of settings, got a {_type_name(document)}")
    return document


# ------------------------------------------------------------------------------- extends and --set

Origins = dict[PathKey, Path | None]  # where each node came from (None = a --set override)


def _node_paths(value: Any, path: PathKey = ()) -> list[PathKey]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.extend(_node_paths(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.extend(_node_paths(child, (*path, index)))
    return paths


def _deep_merge(base: Any, child: Any) -> Any:
    if isinstance(base, dict) and isinstance(child, dict):
        merged = dict(base)
        for key, value in child.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return child


#: ``extends: failover-tester:lab.yaml``: a configuration shipped with the tool (kept current by its upgrades).
TOOL_CONFIG_PREFIX = "failover-tester:"


def _extended_path(path: Path, extends: str) -> Path:
    """The file ``extends`` names: relative to the extending file, or ``failover-tester:NAME``, the tool's own."""
    if not extends.startswith(TOOL_CONFIG_PREFIX):
        return path.parent / extends
    name = extends.removeprefix(TOOL_CONFIG_PREFIX)
    shipped = sorted(p.name for p in config_dir().glob("*.yaml"))
    if name not in shipped:
        raise ConfigError(path, "extends", f"the tool ships no configuration {name!r} (it ships: {', '.join(shipped)})")
    return config_dir() / name


def _load_chain(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Origins]:
    document = _read_yaml(path)
    origins: Origins = {node: path for node in _node_paths(document)}
    extends = document.pop("extends", None)
    origins.pop(("extends",), None)
    if extends is None:
        return document, origins
    if not isinstance(extends, str) or not extends.strip():
        raise ConfigError(path, "extends", f"must be a file name, got {_show(extends, ())}")
    base_path = _extended_path(path, extends)
    here = path.resolve()
    seen = (*chain, here)
    if base_path.resolve() in seen:
        names = [str(p) for p in seen[seen.index(base_path.resolve()) :]] + [str(base_path.resolve())]
        raise ConfigError(path, "extends", f"extends cycle: {' -> '.join(names)}")
    if not base_path.is_file():
        raise ConfigError(path, "extends", f"cannot read {base_path}: file not found")
    base, base_origins = _load_chain(base_path, seen)
    return _deep_merge(base, document), {**base_origins, **origins}


def _override_value(text: str) -> Any:
    stripped = text.strip()
    if stripped == "":
        return ""
    try:
        value = parse_yaml(stripped)
    except yaml.YAMLError:
        return text
    except (TooLarge, RecursionError, MemoryError) as exc:
        raise ConfigError(OVERRIDE_SOURCE, ROOT, f"override value {text[:40]!r}...: {exc or type(exc).__name__}") \
            from None
    if isinstance(value, dict | list) and not stripped.startswith(("{", "[")):
        return text  # e.g. "a: b" is meant as a string, not a mapping
    return value


def _apply_override(data: dict[str, Any], origins: Origins, override: str) -> None:
    match = _OVERRIDE_RE.match(override.strip())
    keys = match.group(1).split(".") if match else []
    if match is None or any(not key for key in keys):
        raise ConfigError(
            OVERRIDE_SOURCE,
            ROOT,
            f"malformed override {override!r}: expected KEY.PATH=VALUE, e.g. run.log_level=DEBUG",
        )
    if keys[0] == "extends":
        raise ConfigError(OVERRIDE_SOURCE, "extends", "cannot be overridden with --set")
    if len(keys) > MAX_DEPTH:
        raise ConfigError(OVERRIDE_SOURCE, ROOT, f"override key nests deeper than {MAX_DEPTH} levels")
    node: dict[str, Any] = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
            origins[tuple(keys[: depth + 1])] = None
        if not isinstance(child, dict):
            prefix = _dotted(keys[: depth + 1])
            raise ConfigError(
                OVERRIDE_SOURCE,
                match.group(1),
                f"cannot set {match.group(1)}: {prefix} is a {_type_name(child)}, not a mapping",
            )
        node = child
    value = _override_value(match.group(2))
    node[keys[-1]] = value
    path: PathKey = tuple(keys)
    for sub in [*_node_paths(value, path), path]:
        origins[sub] = None


# ------------------------------------------------------------------------------------ interpolation


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, default=str)


class _Resolver:
    """Resolves ``${...}`` references over the merged document (memoised, with cycle detection)."""

    def __init__(
        self, raw: dict[str, Any], origins: Origins, source: Path, run_id: str, environ: Mapping[str, str]
    ) -> None:
        self.raw = raw
        self.origins = origins
        self.source = source
        self.run_id = run_id
        self.environ = environ
        self.cache: dict[PathKey, Any] = {}
        self.secret_fragments: set[str] = set()
        self.produced = 0  # values built so far (MAX_NODES)

    def origin(self, path: PathKey) -> Path | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return self.source

    def file_label(self, path: PathKey) -> str:
        origin = self.origin(path)
        return OVERRIDE_SOURCE if origin is None else str(origin)

    def error(self, path: PathKey, problem: str) -> ConfigError:
        return ConfigError(self.file_label(path), _dotted(path), problem)

    def resolve(self) -> dict[str, Any]:
        resolved = self.node(self.raw, (), ())
        assert isinstance(resolved, dict)
        return resolved

    def node(self, value: Any, path: PathKey, stack: tuple[PathKey, ...]) -> Any:
        self.produced += 1
        if self.produced > MAX_NODES:
            raise self.error(path, f"the configuration expands to more than {MAX_NODES} values once its "
                                   "${ref:} references are resolved")
        if isinstance(value, dict):
            return {key: self.node(child, (*path, key), stack) for key, child in value.items()}
        if isinstance(value, list):
            return [self.node(child, (*path, index), stack) for index, child in enumerate(value)]
        if isinstance(value, str):
            return self.string(value, path, stack)
        return value

    def string(self, text: str, path: PathKey, stack: tuple[PathKey, ...]) -> Any:
        if path in self.cache:
            return self.cache[path]
        if "$" not in text:
            return text
        stack = (*stack, path)
        tokens = list(_TOKEN_RE.finditer(text))
        whole = len(tokens) == 1 and tokens[0].group(1) == "" and tokens[0].span() == (0, len(text))
        pieces: list[str] = []
        position = 0
        result: Any = None
        for token in tokens:
            pieces.append(text[position : token.start()])
            position = token.end()
            if token.group(1):  # $${...} -> literal ${...}
                pieces.append(token.group(0)[1:])
                continue
            value = self.reference(token.group(2), path, stack)
            if whole:
                result = value
            pieces.append(_stringify(value))
        pieces.append(text[position:])
        if not whole:
            result = "".join(pieces)
            if len(result) > MAX_STRING:
                raise self.error(path, f"longer than {MAX_STRING} characters once its references are resolved")
        self.cache[path] = result
        return result

    def reference(self, body: str, path: PathKey, stack: tuple[PathKey, ...]) -> Any:
        kind, _, argument = body.partition(":")
        kind = kind.strip()
        if kind == "run_id" and not argument:
            return self.run_id
        if kind == "env":
            return self.env(argument, path)
        if kind == "file":
            return self.file(argument, path)
        if kind == "ref":
            return self.ref(argument.strip(), path, stack)
        raise self.error(
            path,
            f"unknown reference ${{{body}}}: expected ${{env:NAME}}, ${{file:PATH}}, ${{ref:a.b}} or ${{run_id}}",
        )

    def env(self, argument: str, path: PathKey) -> str:
        match = _ENV_RE.match(argument.strip())
        if match is None:
            raise self.error(path, f"malformed ${{env:{argument}}}: expected ${{env:NAME}} or ${{env:NAME:-default}}")
        name, default = match.group(1), match.group(2)
        value = self.environ.get(name)
        if default is not None and not value:
            value = default
        if value is None:
            raise self.error(path, f"environment variable {name} is not set (referenced as ${{env:{name}}})")
        if _is_secret_path(path):
            self.secret_fragment(value, path)
        return value

    def file(self, argument: str, path: PathKey) -> str:
        if not argument.strip():
            raise self.error(path, "malformed ${file:}: expected ${file:PATH}")
        origin = self.origin(path) or self.source
        target = Path(argument.strip()).expanduser()
        if not target.is_absolute():
            target = origin.parent / target
        try:
            content = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error(
                path, f"cannot read file {target} (referenced as ${{file:{argument}}}): not found"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise self.error(
                path, f"cannot read file {target} (referenced as ${{file:{argument}}}): {reason}"
            ) from None
        value = content.rstrip("\r\n")
        if _is_secret_path(path):
            self.secret_fragment(value, path)
        return value

    def secret_fragment(self, value: str, path: PathKey) -> None:
        """Remember a secret read from the environment or a file (refused when too short to redact)."""
        if 0 < len(value) < MIN_SECRET_LENGTH:
            raise self.error(path, f"secret is shorter than {MIN_SECRET_LENGTH} characters; refused (it could not "
                                   "be redacted from the reports without garbling them)")
        self.secret_fragments.add(value)

    def ref(self, argument: str, path: PathKey, stack: tuple[PathKey, ...]) -> Any:
        if not argument:
            raise self.error(path, "malformed ${ref:}: expected ${ref:a.b}")
        target = _split_dotted(argument)
        for earlier in stack:
            if earlier[: len(target)] == target:
                chain = " -> ".join(_dotted(p) for p in stack[stack.index(earlier) :])
                raise self.error(path, f"reference cycle: {chain} -> {_dotted(target)}")
        raw = _lookup(self.raw, target)
        if raw is MISSING:
            raise self.error(path, f"${{ref:{argument}}} refers to {argument}, which is not set")
        value = self.node(raw, target, stack)
        self.count(value, path)  # a copy is as large as what it copies: references must not multiply it unseen
        return copy.deepcopy(value)  # never share one object between two places

    def count(self, value: Any, path: PathKey) -> None:
        """Add the values in ``value`` to :attr:`produced` (ConfigError past MAX_NODES, found without walking
        further than the limit)."""
        pending = [value]
        while pending:
            item = pending.pop()
            self.produced += 1
            if self.produced > MAX_NODES:
                raise self.error(path, f"the configuration expands to more than {MAX_NODES} values once its "
                                       "${ref:} references are resolved")
            if isinstance(item, dict):
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)


# ----------------------------------------------------------------------------------------- schema


def _load_schema() -> dict[str, Any]:
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(SCHEMA_PATH, ROOT, f"cannot read the configuration schema: {exc}") from None
    assert isinstance(schema, dict)
    return schema


def _deref(schema: Any, root: Mapping[str, Any]) -> Any:
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **target}
    return schema


#: what a value that fails a shared pattern of the schema is not (the values reach shells on the hosts)
_PATTERN_NAMES = {
    "host": "a host name or address (letters, digits, '-', '_' in dot-separated labels, or an IP address)",
    "safe_path": "a safe absolute path (letters, digits and . _ + @ % = : , / - only: no spaces, quotes, shell "
                 "metacharacters, newlines or '..')",
    "command": "a program name or a safe absolute path (letters, digits and . _ + @ % = : , / - only)",
}


def _readable_pattern(pattern: str) -> str:
    """A schema pattern as people read it (the end-of-text lookahead, which also refuses a final newline, as $)."""
    return pattern.replace("(?![\\s\\S])", "$")


def _schema_problem(error: ValidationError, root: Mapping[str, Any]) -> tuple[PathKey, str]:
    path: PathKey = tuple(error.absolute_path)
    instance = error.instance
    validator = error.validator
    expected: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        pattern = error.schema.get("pattern", "") if isinstance(error.schema, Mapping) else ""
        return (*path, str(instance)), f"invalid name (names must match {_readable_pattern(pattern)})"
    if validator == "required" and isinstance(instance, Mapping):
        missing = next((key for key in expected if key not in instance), expected[0])
        return (*path, missing), "is required"
    if validator == "additionalProperties" and isinstance(instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        known = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = [k for k in instance if k not in known and not any(re.search(p, str(k)) for p in patterns)]
        return (*path, extra[0] if extra else "?"), "unknown key"
    if validator == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        wanted = wanted.replace("object", "mapping").replace("array", "list")
        got = _type_name(instance)
        if isinstance(instance, str | int | float) and not isinstance(instance, bool):
            got = f"{got} {_show(instance, path)}"
        return path, f"expected {wanted}, got {got}"
    if validator == "enum":
        choices = ", ".join(_stringify(choice) for choice in expected)
        return path, f"must be one of {choices}; got {_show(instance, path)}"
    if validator == "const":
        return path, f"must be {_stringify(expected)}; got {_show(instance, path)}"
    if validator == "pattern":
        if expected == root.get("$defs", {}).get("duration", {}).get("pattern"):
            return path, f"not a duration: {_show(instance, path)} (e.g. '500 ms', '30 seconds', '2 minutes')"
        if expected == root.get("$defs", {}).get("url", {}).get("pattern"):
            return path, f"not an http(s) URL: {_show(instance, path)}"
        for name, what in _PATTERN_NAMES.items():
            if expected == root.get("$defs", {}).get(name, {}).get("pattern"):
                return path, f"{_show(instance, path)} is not {what}"
        return path, f"{_show(instance, path)} does not match {_readable_pattern(str(expected))}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[validator]
        return path, f"must be {sign} {expected}; got {_show(instance, path)}"
    if validator == "minLength":
        return path, "must not be empty" if expected == 1 else f"must be at least {expected} characters long"
    if validator == "minProperties":
        count = len(instance) if isinstance(instance, Mapping) else 0
        return path, f"needs at least {expected} entries, has {count}"
    return path, f"fails the schema rule {validator} ({_stringify(expected)})"


def _walk(
    schema: Any,
    value: Any,
    path: PathKey,
    root: Mapping[str, Any],
    visit: Callable[[Any, Any, PathKey], None],
) -> None:
    """Call ``visit(raw_schema, value, path)`` for every value of the document, following the schema."""
    visit(schema, value, path)
    resolved = _deref(schema, root)
    if not isinstance(resolved, Mapping) or not isinstance(value, dict):
        return
    properties = resolved.get("properties", {})
    additional = resolved.get("additionalProperties")
    for key, child in value.items():
        if key in properties:
            _walk(properties[key], child, (*path, key), root, visit)
        elif isinstance(additional, Mapping):
            _walk(additional, child, (*path, key), root, visit)


def _fill_defaults(schema: Any, value: Any, root: Mapping[str, Any]) -> None:
    resolved = _deref(schema, root)
    if not isinstance(resolved, Mapping) or not isinstance(value, dict):
        return
    properties = resolved.get("properties", {})
    for key, sub in properties.items():
        if key not in value:
            default = sub.get("default", _deref(sub, root).get("default", MISSING))
            if default is not MISSING:
                value[key] = copy.deepcopy(default)
        if key in value:
            _fill_defaults(sub, value[key], root)
    additional = resolved.get("additionalProperties")
    if isinstance(additional, Mapping):
        for key, child in value.items():
            if key not in properties:
                _fill_defaults(additional, child, root)


def section_defaults(name: str) -> dict[str, Any]:
    """The top-level section ``name`` as the schema's defaults alone make it (e.g. ``"http"``)."""
    schema = _load_schema()
    section: dict[str, Any] = {}
    _fill_defaults(schema["properties"][name], section, schema)
    return section


def _validate(data: dict[str, Any], resolver: _Resolver) -> None:
    schema = _load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    error = best_match(validator.iter_errors(data))
    if error is not None:
        path, problem = _schema_problem(error, schema)
        raise resolver.error(path, problem)
    _fill_defaults(schema, data, schema)

    def check_duration(raw_schema: Any, value: Any, path: PathKey) -> None:
        if isinstance(raw_schema, Mapping) and raw_schema.get("$ref") == "#/$defs/duration":
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise resolver.error(path, str(exc)) from None
            # a duration used as a divisor, an interval or a timeout: "0 s" passes the schema's numeric rule
            if raw_schema.get("exclusiveMinimum") == 0 and seconds <= 0:
                raise resolver.error(path, f"must be > 0; got {_show(value, path)}")

    _walk(schema, data, (), schema, check_duration)
    check_secrets(data, resolver.error)
    check_plain_http_auth(data, resolver.error)

    applications = data.get("applications", {})
    for name in data.get("objectives", {}):
        if name not in applications:
            known = ", ".join(applications) or "none"
            raise resolver.error(("objectives", name), f"unknown application {name!r} (applications: {known})")


def _secret_values(data: Any, path: PathKey = ()) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, child in data.items():
            found |= _secret_values(child, (*path, key))
    elif isinstance(data, list):
        for index, child in enumerate(data):
            found |= _secret_values(child, (*path, index))
    elif data is not None and _is_secret_path(path):
        found.add(_stringify(data))
    elif isinstance(data, str):
        found.update(url_passwords(data))  # https://user:password@host: the password is a secret too
    return found


# ----------------------------------------------------------------------------------------- Config


@dataclass(frozen=True)
class Config:
    """The resolved, validated configuration.

    ``data`` is the resolved document with schema defaults filled in; ``source`` the file it was loaded
    from; ``secrets`` the secret *values* (used to redact text); ``run_id`` what ``${run_id}`` resolved to.
    """

    data: dict[str, Any]
    source: Path
    secrets: frozenset[str] = field(default_factory=frozenset, repr=False)
    run_id: str = ""

    def __repr__(self) -> str:
        return f"Config(source={str(self.source)!r}, datacenters={self.datacenters()!r})"

    @cached_property
    def settings(self) -> Settings:
        """The typed settings (built once; :func:`load_config` builds them before returning)."""
        try:
            return build_settings(self.data)
        except SettingsError as exc:
            raise ConfigError(self.source, exc.path, exc.problem) from None

    def get(self, dotted: str, default: Any = MISSING) -> Any:
        """The raw value at ``dotted`` (``"datacenters.dc1.rest.url"``); ``default`` or ConfigError if unset.

        Code outside the config package reads :attr:`settings` instead."""
        value = _lookup(self.data, _split_dotted(dotted))
        if value is MISSING:
            if default is MISSING:
                raise ConfigError(self.source, dotted, "is not set")
            return default
        return value

    def duration(self, dotted: str, default: str | float | None = None) -> float:
        """The duration at ``dotted`` in seconds (``default`` when unset; ConfigError when unparsable)."""
        value = self.get(dotted, MISSING if default is None else default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(self.source, dotted, str(exc)) from None

    def datacenters(self) -> list[str]:
        """Data center names in file order."""
        return list(self.data.get("datacenters", {}))

    def applications(self) -> list[str]:
        """Application names in file order."""
        return list(self.data.get("applications", {}))

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        return self.redactor.redact(text)

    @cached_property
    def redactor(self) -> Redactor:
        """The redactor of this configuration (:mod:`support.redact`)."""
        return Redactor.from_config(self)

    def redacted(self) -> dict[str, Any]:
        """A deep copy of ``data`` with secrets replaced by ``***`` (also inside other strings)."""

        def walk(value: Any, path: PathKey) -> Any:
            if isinstance(value, dict):
                return {key: walk(child, (*path, key)) for key, child in value.items()}
            if isinstance(value, list):
                return [walk(child, (*path, index)) for index, child in enumerate(value)]
            if value is not None and _is_secret_path(path):
                return REDACTED
            if isinstance(value, str):
                return self.redact(value)
            return value

        result = walk(self.data, ())
        assert isinstance(result, dict)
        return result

    def to_yaml(self, redacted: bool = True) -> str:
        """The resolved configuration as YAML (secrets ``***`` unless ``redacted=False``)."""
        document = self.redacted() if redacted else self.data
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def default_run_id() -> str:
    """A run id from the local time, e.g. ``20261126-064001``."""
    return time.strftime("%Y%m%d-%H%M%S")


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    run_id: str | None = None,
) -> Config:
    """Load, merge, override, interpolate and validate a configuration (see the module docstring).

    ``path`` defaults to ``$FAILOVER_TESTER_CONFIG`` or ``config/lab.yaml``. ``run_id`` is what
    ``${run_id}`` resolves to (a timestamp id when not given). Raises :class:`ConfigError`.
    """
    source = Path(path) if path is not None else Path(os.environ.get(ENV_VAR) or DEFAULT_CONFIG)
    try:
        return _load(source, overrides, run_id)
    except (RecursionError, MemoryError) as exc:  # the limits above should make this unreachable
        raise ConfigError(source, ROOT, f"cannot load configuration: {exhausted(exc)}") from None


def _load(source: Path, overrides: Sequence[str], run_id: str | None) -> Config:
    if source.is_dir():
        raise ConfigError(source, ROOT, "is a directory; expected a YAML file")
    raw, origins = _load_chain(source)
    for override in overrides:
        _apply_override(raw, origins, override)
    effective_run_id = run_id or default_run_id()
    resolver = _Resolver(raw, origins, source, effective_run_id, os.environ)
    data = resolver.resolve()
    _validate(data, resolver)
    secrets = frozenset(s for s in _secret_values(data) | resolver.secret_fragments if s and s != REDACTED)
    config = Config(data=data, source=source, secrets=secrets, run_id=effective_run_id)
    try:
        config.settings  # noqa: B018 - built (and checked) once, here
    except ConfigError as exc:
        raise resolver.error(_split_dotted(exc.path), exc.problem) from None
    return config
