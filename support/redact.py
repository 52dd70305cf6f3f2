"""One redactor for everything the tester writes or prints: run.log, journal.jsonl, summary.json, JUnit,
Allure results and ``environment.properties``, and error messages.

A :class:`Redactor` knows the configuration's secret values (passwords, tokens, passphrases, and the
password part of any ``scheme://user:password@host`` URL) and replaces each of them, and the forms a secret
takes on the wire (base64 of the secret, of ``user:password`` as in a Basic ``Authorization`` header, and
its percent-encoded form), by ``***``. A ``user:password@`` part of a URL is masked even when its password is
not a configured secret.

Secrets shorter than :data:`MIN_SECRET_LENGTH` characters are refused by the configuration loader (replacing
a one-character secret would garble every message), so every value given here is long enough to replace.
"""

from __future__ import annotations

import base64
import io
import json
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, cast
from urllib.parse import quote, urlsplit

from support.atomic import write_atomic

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "SECRET_KEY", "RedactingStream", "Redactor", "redacting", "url_password",
           "url_passwords"]

REDACTED = "***"
#: Shorter secrets are a configuration error (they cannot be redacted without garbling the output).
MIN_SECRET_LENGTH = 4

# scheme://user:password@ -> scheme://user:***@ (any URL, configured or not)
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\"'<>]*:)(?P<pw>[^\s@/\"'<>]+)(?=@)")
_URL_CREDENTIALS_BYTES = re.compile(_URL_CREDENTIALS.pattern.encode("ascii"))
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
#: Keys whose values are secrets (the configuration loader's rule).
SECRET_KEY = re.compile(r"password|token|secret|passphrase", re.IGNORECASE)
#: Files under a run folder that are text and may carry a message (ledgers in Parquet are numbers and ids).
TEXT_SUFFIXES = frozenset({".json", ".jsonl", ".xml", ".txt", ".log", ".properties", ".yaml", ".yml", ".html",
                           ".csv", ".md"})


class _LoadedConfig(Protocol):  # support.config.loader.Config (not imported: the loader imports this module)
    @property
    def secrets(self) -> frozenset[str]: ...

    @property
    def data(self) -> dict[str, Any]: ...


def url_password(url: str) -> str | None:
    """The password of a ``scheme://user:password@host`` URL, or None."""
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def url_passwords(text: str) -> Iterator[str]:
    """The password of every URL with credentials in ``text``."""
    for match in _URL_IN_TEXT.finditer(text):
        password = url_password(match.group(0))
        if password:
            yield password


def _wire_forms(secret: str, users: Iterable[str]) -> set[str]:
    forms = {secret}
    quoted = quote(secret, safe="")
    forms.add(quoted)
    for plain in [secret, *(f"{user}:{secret}" for user in users)]:
        encoded = base64.b64encode(plain.encode("utf-8")).decode("ascii")
        forms.add(encoded)
        forms.add(encoded.rstrip("="))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces known secrets (and their base64 and percent-encoded forms) by ``***``."""

    def __init__(self, secrets: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        plain = {s for s in secrets if s}
        self.users = frozenset(u for u in users if u)
        forms: set[str] = set()
        for secret in plain:
            forms |= _wire_forms(secret, self.users)
        self._forms = sorted(forms, key=len, reverse=True)
        self.secrets = frozenset(plain)
        self._pattern = re.compile("|".join(re.escape(f) for f in self._forms)) if self._forms else None
        self._bytes = re.compile(b"|".join(re.escape(f.encode("utf-8")) for f in self._forms)) if self._forms else None

    @classmethod
    def from_config(cls, config: _LoadedConfig) -> Redactor:
        """The redactor of a loaded configuration (its secret values; URL passwords included)."""
        return cls(config.secrets, _users(config.data))

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        """The redactor of typed settings (``support.config.settings.Settings``): every secret-named field, and
        passwords in URLs."""
        secrets: set[str] = set()
        users: set[str] = set()
        _collect(settings, secrets, users, set())
        return cls(secrets, users)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Redactor({len(self.secrets)} secrets)"

    def redact(self, text: str) -> str:
        """``text`` with every secret (and URL password) replaced by ``***``."""
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED, text)
        return text

    __call__ = redact

    def redact_tree(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_tree(v) for v in value]
        return value

    def redact_json(self, value: Any) -> str:
        return self.redact(json.dumps(value, default=str))

    def _may_hold_secret(self, path: Path) -> bool:
        """Whether ``path`` holds a secret form or URL credentials: one scan of the mapped file, so a run's large
        ledgers are read once and never into memory unless there is something to redact."""
        try:
            with path.open("rb") as handle:
                if path.stat().st_size == 0:
                    return False
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    data = cast(bytes, mapped)
                    return bool((self._bytes is not None and self._bytes.search(data))
                                or _URL_CREDENTIALS_BYTES.search(data))
        except (OSError, ValueError):
            return True  # cannot map it: read it

    def scrub_file(self, path: Path) -> bool:
        """Redact a text file in place; True when it changed. Files that are not UTF-8 text are left alone."""
        if not self._may_hold_secret(path):
            return False
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        clean = self.redact(text)
        if clean == text:
            return False
        write_atomic(path, clean)
        return True

    def scrub_tree(self, folder: Path) -> list[Path]:
        """Redact every text file under ``folder`` (a run's report folder); the files that changed."""
        changed: list[Path] = []
        if not folder.is_dir():
            return changed
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and (path.suffix in TEXT_SUFFIXES or path.name.endswith(
                    "-result.json")) and self.scrub_file(path):
                changed.append(path)
        return changed


def _users(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, child in data.items():
            if key in ("username", "user") and isinstance(child, str):
                found.add(child)
            else:
                found |= _users(child)
    elif isinstance(data, list):
        for child in data:
            found |= _users(child)
    elif isinstance(data, str):
        for match in _URL_IN_TEXT.finditer(data):
            try:
                user = urlsplit(match.group(0)).username
            except ValueError:
                user = None
            if user:
                found.add(user)
    return found


def _collect(value: Any, secrets: set[str], users: set[str], seen: set[int], name: str = "") -> None:
    if id(value) in seen:
        return
    if isinstance(value, str):
        if SECRET_KEY.search(name):
            secrets.add(value)
        elif name in ("username", "user"):
            users.add(value)
        secrets.update(url_passwords(value))
        return
    if value is None or isinstance(value, int | float | bool):
        return
    seen.add(id(value))
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            _collect(getattr(value, f.name), secrets, users, seen, f.name)
    elif isinstance(value, Mapping):
        for key, child in value.items():
            _collect(child, secrets, users, seen, str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for child in value:
            _collect(child, secrets, users, seen, name)


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what is written before passing it to ``target`` (a verb's stdout/stderr)."""

    def __init__(self, target: TextIO, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._target = target
        self._redact = redact

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._target.write(self._redact(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()


def redacting(target: TextIO, redact: Callable[[str], str]) -> TextIO:
    """``target`` seen through :class:`RedactingStream` (typed as the text stream it stands for)."""
    return cast(TextIO, RedactingStream(target, redact))
