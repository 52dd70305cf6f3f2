"""``failover-tester init DIR``: a project of failover tests for a team's own repository.

The files come from ``project/`` next to this module (``gitignore`` becomes ``.gitignore``), plus
``config/pair.yaml``, the template for a real pair (the tool's ``example-two-dc.yaml``). The project holds no copy
of the tool's code: its behave glue loads the installed tool's steps and hooks (:func:`support.packaged.load_steps`)
and its lab configuration extends the one the tool ships, so upgrading the tool upgrades the project.
"""

from __future__ import annotations

from pathlib import Path

from support.packaged import config_file

__all__ = ["TEMPLATE_DIR", "planned_files", "scaffold"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "project"
_RENAMED = {"gitignore": ".gitignore"}
PAIR_TEMPLATE = Path("config") / "pair.yaml"
_PAIR_HEADER = """\
# This project's configuration for a real pair of Teracloud Streams instances (made by `failover-tester init`
# from the tool's example): fill it in, then `failover-tester config validate config/pair.yaml`.
# `failover-tester config show config/pair.yaml` prints it resolved, with every default, secrets as ***.
"""


def _templates() -> dict[Path, Path]:
    """Project-relative path -> template file."""
    found: dict[Path, Path] = {}
    for source in sorted(TEMPLATE_DIR.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            relative = source.relative_to(TEMPLATE_DIR)
            found[relative.with_name(_RENAMED.get(relative.name, relative.name))] = source
    return found


def planned_files() -> list[Path]:
    """The files ``init`` writes, relative to the project folder."""
    return sorted([*_templates(), PAIR_TEMPLATE])


def scaffold(target: Path) -> list[Path]:
    """Write the project into ``target`` (created if missing) and return the files written.

    Raises ``FileExistsError`` (nothing written) when any of them exists already.
    """
    existing = [str(target / name) for name in planned_files() if (target / name).exists()]
    if existing:
        raise FileExistsError(f"{target}: would overwrite {', '.join(existing)}")
    written: list[Path] = []
    for relative, source in _templates().items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
        written.append(destination)
    pair = target / PAIR_TEMPLATE
    pair.parent.mkdir(parents=True, exist_ok=True)
    pair.write_text(_PAIR_HEADER + config_file("example-two-dc.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    written.append(pair)
    return sorted(written)
