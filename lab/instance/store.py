"""What an instance keeps besides its jobs: uploaded application bundles and application configurations.

- Bundles: ``POST <instance>/applicationbundles`` (raw ``.sab``, ``application/x-jar``) stores a copy under
  ``/run/xdc-lab/dcN/applicationbundles/<bundleId>.sab``; a job submission names the ``bundleId`` or an https
  URL of a ``.sab``, which the instance downloads (reference §2).
- Application configurations: one ``appconfig_dir(dc)/<name>.json`` each, ``{"name", "description",
  "properties"}``, written atomically (tmp + rename). Only the instance writes them; the toolkit in a PE reads
  ``CrossDCFailover.json`` at operator start.

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab import bundles, paths
from lab.apps import AppSpec
from lab.instance.model import ApiError, now_ms

DOWNLOAD_TIMEOUT = 30.0
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")


@dataclass(frozen=True)
class Bundle:
    id: str
    app: AppSpec
    path: Path


class BundleStore:
    """The bundles an instance received (uploaded, or downloaded for a submission by URL)."""

    def __init__(self, dc: str) -> None:
        self.dir = paths.LAB_DIR / dc / "applicationbundles"
        self.lock = threading.Lock()
        self.known: dict[str, Bundle] = {}

    def add(self, data: bytes) -> Bundle:
        if not data:
            raise ApiError(400, "The request body is empty: send the application bundle (.sab) as application/x-jar.")
        if len(data) > bundles.MAX_BUNDLE_BYTES:
            raise ApiError(413, f"The application bundle is larger than {bundles.MAX_BUNDLE_BYTES} bytes.")
        try:
            app = bundles.application_of(data)
        except bundles.BundleError as exc:
            raise ApiError(400, f"The application bundle is not valid: {exc}") from exc
        bid = bundles.bundle_id(data)
        with self.lock:
            found = self.known.get(bid)
            if found is not None:
                return found
            self.dir.mkdir(parents=True, exist_ok=True)
            target = self.dir / f"{bid}.sab"
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            bundle = Bundle(bid, app, target)
            self.known[bid] = bundle
            return bundle

    def resolve(self, application: str) -> Bundle:
        """The bundle a submission's ``application`` names: an uploaded ``bundleId`` or an https URL of a .sab.

        A bare application name is refused, as on the real product."""
        if "://" in application:
            return self.add(self._download(application))
        with self.lock:
            found = self.known.get(application)
        if found is None:
            raise ApiError(
                404,
                f"The {application} application bundle does not exist in the instance: upload it "
                "(POST applicationbundles) and submit its bundleId, or give an https URL of a .sab file.",
            )
        return found

    @staticmethod
    def _download(url: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ApiError(400, f"The application bundle URL {url} is not valid: use an https URL of a .sab file.")
        if not parts.path.endswith(".sab"):
            raise ApiError(400, f"The application bundle URL {url} does not name a .sab file.")
        ctx = ssl.create_default_context()
        with contextlib.suppress(OSError, ssl.SSLError):
            ctx.load_verify_locations(cafile=str(paths.ca_pem()))  # servers with lab certificates, too
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT, context=ctx) as resp:
                data: bytes = resp.read(bundles.MAX_BUNDLE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise ApiError(404, f"The application bundle at {url} could not be downloaded: HTTP {exc.code}.") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(404, f"The application bundle at {url} could not be downloaded: {exc}.") from exc
        return data


class AppConfigStore:
    """The application configurations of one instance (``appconfig_dir(dc)/<name>.json``)."""

    def __init__(self, dc: str) -> None:
        self.dir = paths.appconfig_dir(dc)
        self.lock = threading.Lock()
        self.created: dict[str, int] = {}

    def _file(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ApiError(
                400,
                f"The application configuration name {name!r} is not valid: use letters, digits, '_', '.' or '-'.",
            )
        return self.dir / f"{name}.json"

    def _read(self, name: str) -> dict[str, Any] | None:
        f = self._file(name)
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            mtime = f.stat().st_mtime_ns // 1_000_000
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        props = doc.get("properties") or {}
        return {
            "name": name,
            "description": str(doc.get("description") or ""),
            "properties": {str(k): str(v) for k, v in props.items()} if isinstance(props, dict) else {},
            "creationTime": self.created.get(name, mtime),
            "lastModifiedTime": mtime,
        }

    def _write(self, name: str, description: str, properties: dict[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self._file(name)
        tmp = target.with_name(f".{target.name}.tmp")
        doc = {"name": name, "description": description, "properties": properties}
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if _NAME.match(p.stem))

    def all(self) -> list[dict[str, Any]]:
        return [doc for doc in (self._read(n) for n in self.names()) if doc is not None]

    def get(self, name: str) -> dict[str, Any]:
        doc = self._read(name)
        if doc is None:
            raise ApiError(404, f"The {name} application configuration does not exist in the instance.")
        return doc

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "")
        if not name:
            raise ApiError(400, "The application configuration has no name.")
        props = _properties(body.get("properties"), allow_delete=False)
        with self.lock:
            if self._read(name) is not None:
                raise ApiError(409, f"The {name} application configuration already exists in the instance.")
            self.created[name] = now_ms()
            self._write(name, str(body.get("description") or ""), {k: v for k, v in props.items() if v is not None})
        return self.get(name)

    def update(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH: given properties are set, a property given as null is removed; description replaced if given."""
        props = _properties(body.get("properties"), allow_delete=True)
        with self.lock:
            doc = self.get(name)
            merged: dict[str, str] = dict(doc["properties"])
            for k, v in props.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            description = doc["description"] if body.get("description") is None else str(body["description"])
            self._write(name, description, merged)
        return self.get(name)

    def delete(self, name: str) -> None:
        with self.lock:
            f = self._file(name)
            try:
                f.unlink()
            except FileNotFoundError as exc:
                raise ApiError(404, f"The {name} application configuration does not exist in the instance.") from exc
            self.created.pop(name, None)


def _properties(raw: Any, allow_delete: bool) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "The properties of an application configuration must be a JSON object.")
    out: dict[str, str | None] = {}
    for k, v in raw.items():
        if v is None:
            if allow_delete:
                out[str(k)] = None
            continue
        if isinstance(v, dict | list):
            raise ApiError(400, f"The property {k} must have a string value.")
        out[str(k)] = str(v)
    return out
