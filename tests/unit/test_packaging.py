"""The tool as a package: what ``init`` makes, where the packaged steps and configurations are found, ``--version``.

The wheel itself, installed outside the repository and run against the lab: tests/integration/test_wheel_install.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import main
from support.config import ConfigError, load_config
from support.packaged import config_dir, steps_dir, version
from support.reporting.allure import ALLURE_VERSION
from support.scaffold import TEMPLATE_DIR, planned_files, scaffold

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_finds_its_own_steps_and_configurations() -> None:
    assert steps_dir().resolve() == (ROOT / "steps").resolve()
    assert config_dir().resolve() == (ROOT / "config").resolve()


def test_init_writes_a_project_and_never_overwrites(tmp_path: Path) -> None:
    project = tmp_path / "failover-tests"
    written = scaffold(project)
    names = {str(p.relative_to(project)) for p in written}
    assert names == {str(p) for p in planned_files()}
    assert names >= {"README.md", ".gitignore", "behave.ini", "environment.py", "package.json",
                     "steps/failover_tester.py", "config/lab.yaml", "config/pair.yaml"}
    features = sorted((project / "features").glob("*.feature"))
    assert len(features) == 2
    assert sum("@smoke" in f.read_text() for f in features) == 1
    # no copied step code: the glue only loads the installed tool's steps and hooks
    assert "load_steps()" in (project / "steps" / "failover_tester.py").read_text()
    assert "from support.hooks import" in (project / "environment.py").read_text()
    (project / "README.md").write_text("ours")
    with pytest.raises(FileExistsError, match=r"README\.md"):
        scaffold(project)
    assert (project / "README.md").read_text() == "ours"


def test_the_scaffolded_lab_config_extends_the_shipped_one_and_copies_no_secret(tmp_path: Path) -> None:
    scaffold(tmp_path)
    text = (tmp_path / "config" / "lab.yaml").read_text()
    assert 'extends: "failover-tester:lab.yaml"' in text
    assert "password" not in text and "secrets" not in text
    with pytest.raises(ConfigError, match=r"ships no configuration 'nope\.yaml'"):
        (tmp_path / "bad.yaml").write_text('extends: "failover-tester:nope.yaml"\n')
        load_config(tmp_path / "bad.yaml")


def test_the_shipped_lab_config_is_what_extends_resolves(tmp_path: Path) -> None:
    scaffold(tmp_path / "p")
    no_lab_secret = [f"datacenters.{dc}.rest.auth.password=xxxx" for dc in ("dc1", "dc2")]
    plain = load_config(ROOT / "config" / "lab.yaml", no_lab_secret)
    scaffolded = load_config(tmp_path / "p" / "config" / "lab.yaml", no_lab_secret)
    assert scaffolded.settings.datacenters == plain.settings.datacenters
    assert scaffolded.settings.applications == plain.settings.applications


def test_the_pair_template_is_the_example(tmp_path: Path) -> None:
    scaffold(tmp_path)
    example = (ROOT / "config" / "example-two-dc.yaml").read_text()
    assert (tmp_path / "config" / "pair.yaml").read_text().endswith(example)


def test_every_step_of_the_scaffolded_features_is_a_step_of_the_tool(tmp_path: Path) -> None:
    scaffold(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "behave", "--dry-run", "--format", "progress", "--no-summary"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "undefined" not in done.stdout.lower()


def test_the_allure_renderer_is_pinned_once() -> None:
    ours = json.loads((ROOT / "package.json").read_text())["devDependencies"]["allure"]
    projects = json.loads((TEMPLATE_DIR / "package.json").read_text())["devDependencies"]["allure"]
    assert ours == projects == ALLURE_VERSION


def test_version_is_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"failover-tester {version()}"
    assert version()[0].isdigit()


def test_run_says_when_features_are_outside_a_project(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    (tmp_path / "loose").mkdir()
    assert main(["run", "--features", str(tmp_path / "loose")]) == 2
    assert "no steps/ or environment.py in it or above it" in capsys.readouterr().err
    assert main(["run", "--features", str(tmp_path / "missing")]) == 2
    assert "missing: not found" in capsys.readouterr().err
    # behave's FILE:LINE selects one scenario of a file that exists (the check stops at the configuration here)
    assert main(["run", "features/failover_api.feature:9", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err
