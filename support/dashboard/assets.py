"""The dashboard's static files: its own script and style (``support/dashboard/static/``) and the charting
library, uPlot (an npm dependency in ``package.json``, so never a file of this repository).

uPlot is found, in order: in ``support/dashboard/vendor/`` (where ``setup.py`` copies it when it builds a wheel,
so an installed tool carries it), in the checkout's ``node_modules/uplot/dist/`` (``make bootstrap``), in the
current directory's ``node_modules/uplot/dist/`` (a project made by ``failover-tester init`` that ran
``npm ci``). Without it the pages still work; their charts say what is missing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC", "UPLOT_FILES", "VENDOR", "asset_files", "uplot_dir"]

_HERE = Path(__file__).resolve().parent
STATIC = _HERE / "static"
VENDOR = _HERE / "vendor"
#: uPlot's files the pages load (and its licence, shipped beside them)
UPLOT_FILES = ("uPlot.iife.min.js", "uPlot.min.css")
_UPLOT_LICENSE = "LICENSE"


def uplot_dir() -> Path | None:
    """The folder holding :data:`UPLOT_FILES`, or None when uPlot is nowhere to be found."""
    for folder in (VENDOR, _HERE.parents[1] / "node_modules" / "uplot" / "dist",
                   Path.cwd() / "node_modules" / "uplot" / "dist"):
        if all((folder / name).is_file() for name in UPLOT_FILES):
            return folder
    return None


def asset_files() -> dict[str, Path]:
    """``assets/<name>`` of the pages -> the file to serve or copy."""
    files = {p.name: p for p in sorted(STATIC.iterdir()) if p.is_file()}
    folder = uplot_dir()
    if folder is not None:
        files.update({name: folder / name for name in UPLOT_FILES})
        for licence in (folder / _UPLOT_LICENSE, folder.parent / _UPLOT_LICENSE):
            if licence.is_file():
                files["uPlot.LICENSE.txt"] = licence
                break
    return files
