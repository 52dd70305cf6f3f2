"""Application bundles (``.sab``) of the embedded lab: how `lab up` writes them and how an instance reads them.

A real Streams application bundle is a zip archive made by the SPL compiler; an instance takes it as an upload
(``POST <instance>/applicationbundles``, ``Content-Type: application/x-jar``) or from an https URL, never by a
bare application name (reference §2). The lab's bundles are zip archives too, with one member the lab reads:
``META-INF/MANIFEST.MF`` naming the application (``Application-Name``, ``Application-Version``,
``Main-Composite``). The rest of a real bundle (ADL, toolkits, executables) is not modelled: the lab runs the
application named there from `lab.apps`.

Standard library only (the instance service imports it).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from lab import paths
from lab.apps import APPS, AppSpec

MANIFEST = "META-INF/MANIFEST.MF"
#: the largest bundle an instance takes (an upload or an https download)
MAX_BUNDLE_BYTES = 64 << 20


class BundleError(ValueError):
    """The bytes are not a bundle the lab can run (not a zip, no manifest, unknown application)."""


def manifest_text(app: AppSpec) -> str:
    lines = [
        "Manifest-Version: 1.0",
        f"Application-Name: {app.name}",
        f"Application-Version: {app.version}",
        f"Main-Composite: {app.main_composite}",
        "Created-By: xdc-lab (embedded lab; not an SPL compiler bundle)",
    ]
    return "\r\n".join(lines) + "\r\n"


def bundle_bytes(app: AppSpec) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        # a fixed timestamp: the same application always gives the same bytes (and bundle id)
        info = zipfile.ZipInfo(MANIFEST, date_time=(2025, 4, 1, 0, 0, 0))
        z.writestr(info, manifest_text(app))
    return buf.getvalue()


def bundle_path(app_name: str) -> Path:
    return paths.bundles_dir() / f"{app_name}.sab"


def write_all() -> list[Path]:
    """Write ``bundles_dir()/<application>.sab`` for every application of the lab (atomic; `lab up`)."""
    d = paths.bundles_dir()
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, app in APPS.items():
        target = bundle_path(name)
        tmp = target.with_suffix(".sab.tmp")
        tmp.write_bytes(bundle_bytes(app))
        os.replace(tmp, target)
        out.append(target)
    return out


def read_manifest(data: bytes) -> dict[str, str]:
    """The manifest entries of a bundle; BundleError when `data` is not a zip with a manifest."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            raw = z.read(MANIFEST).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError) as exc:
        raise BundleError(f"the content is not an application bundle ({type(exc).__name__}: {exc})") from exc
    entries: dict[str, str] = {}
    for line in raw.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            entries[key.strip()] = value.strip()
    return entries


def application_of(data: bytes) -> AppSpec:
    """The lab application a bundle holds; BundleError if there is none."""
    name = read_manifest(data).get("Application-Name", "")
    app = APPS.get(name)
    if app is None:
        raise BundleError(f"the bundle names the application {name!r}, which this lab cannot run")
    return app


def bundle_id(data: bytes) -> str:
    """An opaque id for an uploaded bundle: derived from its content (the same bytes give the same id)."""
    return hashlib.sha256(data).hexdigest()[:32]
