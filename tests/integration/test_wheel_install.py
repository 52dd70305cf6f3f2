"""The tool installed like a team installs it: the wheel built from this checkout goes into a fresh virtualenv outside
the repository, ``failover-tester init`` makes a project there, and in it ``failover-tester lab up && failover-tester
run --tags @smoke`` passes against the lab.

The virtualenv gets the tool from the wheel only; its third-party dependencies are the ones this test session runs
with (a ``.pth`` file names their site-packages), so the test needs no package index beyond building the wheel.
The installed tool brings the lab up itself (its services then run from the virtualenv); the session's lab is
restored afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from labwire import Lab, run_lab

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lab

#: What the wheel is built from: the checkout without its environments, outputs and tests (a copy, so that a stale
#: build/ folder of the checkout can never leak into the wheel).
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "node_modules", "reports", "build", "dist", "*.egg-info",
                                      "__pycache__", ".*_cache", "tests", "docs")
#: Environment variables that would let the installed tool see this checkout or this session's settings.
_LEAKS = ("PYTHONPATH", "VIRTUAL_ENV", "FAILOVER_TESTER_CONFIG", "ALLURE_BIN", "BEHAVE_STAGE")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh virtualenv with the tool installed from a freshly built wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source, dist, venv = work / "source", work / "dist", work / "venv"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)],
             cwd=work))
    wheels = sorted(dist.glob("streams_failover_tester-*.whl"))
    assert len(wheels) == 1, wheels
    _ok(_run([sys.executable, "-m", "venv", str(venv)], cwd=work))
    python = venv / "bin" / "python"
    purelib = _ok(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work))
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(purelib.stdout.strip()) / "_session_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    _ok(_run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--ignore-installed",
              str(wheels[0])], cwd=work))
    return venv / "bin"


@pytest.fixture(scope="module")
def project(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project made by the installed ``failover-tester init``, and the environment to run the tool in it."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKS}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    where = tmp_path_factory.mktemp("team") / "failover-tests"
    _ok(_run([str(installed / "failover-tester"), "init", str(where)], cwd=where.parent, env=env))
    return where, env


def test_version_and_where_the_code_comes_from(installed: Path, project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    done = _ok(_run([str(installed / "failover-tester"), "--version"], cwd=folder, env=env))
    assert done.stdout.startswith("failover-tester ") and done.stdout.split()[1][0].isdigit()
    probe = ("import support, lab, support.packaged as p; "
             "print(support.__file__, lab.__file__, p.steps_dir(), p.config_dir(), sep='\\n')")
    where = _ok(_run([str(installed / "python"), "-c", probe], cwd=folder, env=env)).stdout.split()
    venv = installed.parent.resolve()
    assert all(Path(path).resolve().is_relative_to(venv) for path in where), where
    assert not any(Path(path).resolve().is_relative_to(ROOT) for path in where), where


@pytest.fixture()
def lab_of_the_installed_tool(lab: Lab) -> Iterator[None]:
    """The session's lab, taken down so that the installed tool brings up its own; afterwards the session's lab is
    brought up again from this checkout (a new password: the session's client logs in afresh)."""
    assert run_lab("down").returncode == 0
    try:
        yield
    finally:
        run_lab("down")
        up = run_lab("up")
        assert up.returncode == 0, up.stdout + up.stderr
        lab.refresh()


def test_the_scaffolded_smoke_scenario_passes_on_the_lab(lab_of_the_installed_tool: None, installed: Path,
                                                         project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    tool = str(installed / "failover-tester")
    up = _ok(_run([tool, "lab", "up"], cwd=folder, env=env))
    assert "lab: up in" in up.stdout  # brought up by the installed tool, not found up
    done = _ok(_run([tool, "run", "--tags", "@smoke"], cwd=folder, env=env, timeout=600))
    assert "Allure 3 CLI not found" in done.stdout  # no node_modules in the project: said, and the run still passes
    run_dir = folder / "reports" / "latest"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "passed" and summary["totals"]["passed"] == 1, summary["totals"]
    scenario = summary["scenarios"][0]
    assert scenario["fault"] == "job-cancel" and scenario["standby"] == "dc2"
    assert (run_dir / "report.html").is_file()
    # the run used the project's config, which extends the lab configuration shipped with the tool
    run_meta = json.loads((run_dir / "run.json").read_text())
    assert (folder / run_meta["config"]).resolve() == (folder / "config" / "lab.yaml").resolve()
