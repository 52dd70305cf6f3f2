"""Allure: attachments during the run, and the Allure 3 single-file HTML render afterwards."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_TRACKING = [
    re.compile(r"<script[^>]*googletagmanager[^>]*>\s*</script>", re.I | re.S),
    re.compile(r"<script[^>]*>(?:(?!</script>).)*?(?:googletagmanager|gtag\(|dataLayer)(?:(?!</script>).)*</script>",
               re.I | re.S),
    re.compile(r"<noscript>(?:(?!</noscript>).)*googletagmanager(?:(?!</noscript>).)*</noscript>", re.I | re.S),
]


def attach_text(name: str, body: str, kind: str = "text") -> None:
    """Attach to the current Allure test when the Allure formatter is active (no-op otherwise)."""
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-behave is a dependency
        return
    types = {
        "text": allure.attachment_type.TEXT,
        "json": allure.attachment_type.JSON,
        "csv": allure.attachment_type.CSV,
        "html": allure.attachment_type.HTML,
    }
    try:
        allure.attach(body, name=name, attachment_type=types[kind])
    except Exception as exc:  # attaching must never fail a scenario
        log.debug("allure attach %s failed: %s", name, exc)


def attach_json(name: str, value: Any) -> None:
    attach_text(name, json.dumps(value, indent=2, default=str), "json")


def label_scenario(tags: list[str], epic: str = "Cross-DC failover") -> None:
    """Labels of the current Allure test: epic, severity (``@smoke`` and ``@critical`` are critical)."""
    try:
        import allure

        allure.dynamic.label("epic", epic)
        critical = {"smoke", "critical"} & set(tags)
        allure.dynamic.severity(allure.severity_level.CRITICAL if critical else allure.severity_level.NORMAL)
    except Exception as exc:  # labelling must never fail a scenario
        log.debug("allure labels failed: %s", exc)


def label_dc_pair(active: str, standby: str) -> None:
    """The data center pair a scenario exercises, as an Allure label (``dc1 → dc2``)."""
    try:
        import allure

        allure.dynamic.label("dc_pair", f"{active} → {standby}")
    except Exception as exc:
        log.debug("allure label failed: %s", exc)


def write_environment(results: Path, values: dict[str, str]) -> None:
    """``environment.properties`` of the results folder (shown by Allure as the run's environment)."""
    lines = [f"{key.replace(' ', '_')}={str(value).replace(chr(10), ' ')}" for key, value in values.items()]
    (results / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def find_allure(root: Path) -> str | None:
    """The Allure 3 CLI: ``$ALLURE_BIN``, the project's ``node_modules/.bin/allure``, or ``allure`` on PATH."""
    candidates = [os.environ.get("ALLURE_BIN"), str(root / "node_modules" / ".bin" / "allure"), shutil.which("allure")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def strip_tracking(html: str) -> str:
    for pattern in _TRACKING:
        html = pattern.sub("", html)
    return html


def render_single_file(results: Path, out_dir: Path, root: Path, name: str = "Failover tests",
                       history: Path | None = None) -> Path | None:
    """Render ``results`` with Allure 3 into ``out_dir/index.html`` (one self-contained file, no tracking).

    ``history`` (a JSON Lines file kept across runs) lets the report show trends and flaky tests.
    """
    allure = find_allure(root)
    if allure is None:
        log.warning("Allure 3 CLI not found (npm install in %s); HTML report not rendered", root)
        return None
    cmd = [allure, "awesome", str(results), "--single-file", "--name", name, "-o", str(out_dir)]
    if history is not None:
        cmd += ["--history-path", str(history)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    index = out_dir / "index.html"
    if done.returncode != 0 or not index.exists():
        log.warning("allure render failed (%s): %s", done.returncode, (done.stderr or done.stdout)[-500:])
        return None
    index.write_text(strip_tracking(index.read_text(encoding="utf-8")), encoding="utf-8")
    return index
