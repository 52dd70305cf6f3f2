"""What the installed tool carries besides its code: the step modules, the schemas and configurations.

A checkout keeps them in ``steps/`` and ``config/``; the wheel packages those two folders as
``failover_tester_steps`` and ``failover_tester_config`` (see ``setup.py``), so they are found the same way from
a checkout (an editable install maps the packages to the folders) and from an installed wheel. A checkout that
was not (re)installed since the mapping came in still works: the folders next to ``support/`` are used then.

A project made by ``failover-tester init`` loads the steps through :func:`load_steps` (its behave glue), so an
upgrade of the tool brings its steps with it: nothing is copied into the project.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

__all__ = ["CONFIG_PACKAGE", "DISTRIBUTION", "STEPS_PACKAGE", "config_dir", "config_file", "load_steps", "steps_dir",
           "version"]

DISTRIBUTION = "streams-failover-tester"
STEPS_PACKAGE = "failover_tester_steps"
CONFIG_PACKAGE = "failover_tester_config"

_CHECKOUT = Path(__file__).resolve().parents[1]
_CHECKOUT_FOLDERS = {STEPS_PACKAGE: "steps", CONFIG_PACKAGE: "config"}


def _package_dir(package: str) -> Path:
    """The folder of data package ``package``: the installed (or editable-mapped) one, else the checkout's."""
    spec = importlib.util.find_spec(package)
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            if Path(location).is_dir():
                return Path(location)
    folder = _CHECKOUT / _CHECKOUT_FOLDERS[package]
    if (_CHECKOUT / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    raise FileNotFoundError(f"{package}: not installed with the tool (reinstall {DISTRIBUTION})")


def steps_dir() -> Path:
    """The folder of the tool's behave step modules (``steps/`` of a checkout)."""
    return _package_dir(STEPS_PACKAGE)


def config_dir() -> Path:
    """The folder of the schemas and the shipped configurations (``config/`` of a checkout)."""
    return _package_dir(CONFIG_PACKAGE)


def config_file(name: str) -> Path:
    """One file of :func:`config_dir`, e.g. ``schema.json``, ``lab.yaml``."""
    return config_dir() / name


def load_steps() -> None:
    """Register the tool's steps with behave (call it from a module of a project's ``steps/`` folder).

    The step modules are executed the way behave executes a ``steps/`` folder, from where the tool is installed.
    """
    from behave.runner_util import load_step_modules

    load_step_modules([str(steps_dir())])


def version() -> str:
    """The installed distribution's version (``failover-tester --version``)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
