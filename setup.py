"""The packages of the wheel (everything else about the distribution is in pyproject.toml).

``support`` and ``lab`` are packaged where they are; the behave step modules (``steps/``) and the schemas and
configurations (``config/``) stay where a checkout has them and are packaged as ``failover_tester_steps`` and
``failover_tester_config``, so that an installed tool carries them (see :mod:`support.packaged`).

The dashboard's chart library, uPlot, is an npm dependency (``package.json``): a build copies its minified
script, style and licence from ``node_modules/uplot/`` into the wheel's ``support/dashboard/vendor/``
(:mod:`support.dashboard.assets`). Run ``npm ci`` before building a wheel; without it the wheel's dashboard has
no charts (the build says so).
"""

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

MAPPED = {"failover_tester_steps": "steps", "failover_tester_config": "config"}
UPLOT = Path(__file__).resolve().parent / "node_modules" / "uplot"
UPLOT_FILES = {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css",
               "LICENSE": "LICENSE"}


class BuildWithCharts(build_py):
    """build_py, then uPlot's files into support/dashboard/vendor/ of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install finds them in node_modules/ (support.dashboard.assets)
        missing = [name for name in UPLOT_FILES if not (UPLOT / name).is_file()]
        if missing:
            print(f"warning: {UPLOT} lacks {', '.join(missing)} (run npm ci): the dashboard will have no charts")
            return
        vendor = Path(self.build_lib) / "support" / "dashboard" / "vendor"
        vendor.mkdir(parents=True, exist_ok=True)
        for name, target in UPLOT_FILES.items():
            shutil.copyfile(UPLOT / name, vendor / target)


setup(
    packages=[*find_namespace_packages(include=["support", "support.*", "lab", "lab.*"]), *MAPPED],
    package_dir=MAPPED,
    cmdclass={"build_py": BuildWithCharts},
)
