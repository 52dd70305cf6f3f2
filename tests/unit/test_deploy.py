"""The scheduling definitions under deploy/ (docs/continuous.md), checked as far as this machine allows (no docker
engine, no cluster, no Jenkins): the GitHub Actions workflows and the Kubernetes CronJob against their published JSON
schemas (tests/data/schemas/, see its README), the Dockerfile's build context after `pip wheel` (every COPY source
there, .dockerignore keeping it small), the systemd units with `systemd-analyze verify` (a parser check where it is
missing), the Jenkinsfile's structure, and every failover-tester command line in them against the real parser."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from support.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = ROOT / "tests" / "data" / "schemas"
WORKFLOWS = sorted((DEPLOY / "github-actions").glob("*.yml"))
HISTORY = ("reports/history.sqlite", "reports/allure-history.jsonl")
CRON = re.compile(r"^(\S+\s+){4}\S+$")


def cli_ok(argv: list[str]) -> None:
    """``argv`` (after ``failover-tester``) is a valid command line of the tool."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"failover-tester {' '.join(argv)}: refused by the parser") from exc


# ------------------------------------------------------------------------------------------ GitHub Actions

def load_workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean; GitHub (and the schema) mean the string
        doc["on"] = doc.pop(True)
    return dict(doc)


def test_there_is_a_scheduled_and_a_sharded_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["failover-drills-sharded.yml", "failover-drills.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_match_the_published_schema(path: Path) -> None:
    schema = json.loads((SCHEMAS / "github-workflow.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(load_workflow(path)), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_schema_check_catches_a_wrong_field() -> None:
    schema = json.loads((SCHEMAS / "github-workflow.json").read_text())
    doc = load_workflow(DEPLOY / "github-actions" / "failover-drills.yml")
    doc["jobs"]["drills"]["runs_on"] = doc["jobs"]["drills"].pop("runs-on")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(doc))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_scheduled_pinned_and_keep_the_history(path: Path) -> None:
    doc = load_workflow(path)
    assert all(CRON.match(item["cron"]) for item in doc["on"]["schedule"])
    assert "workflow_dispatch" in doc["on"] and doc["concurrency"]["cancel-in-progress"] is False
    steps = [step for job in doc["jobs"].values() for step in job.get("steps", [])]
    for step in steps:
        if "uses" in step:
            assert re.search(r"@v\d+$", step["uses"]), f"{step['uses']}: pin a major version"
    caches = {step["uses"].split("@")[0]: step["with"]["path"].split() for step in steps
              if str(step.get("uses", "")).startswith("actions/cache/")}
    assert caches == {"actions/cache/restore": list(HISTORY), "actions/cache/save": list(HISTORY)}
    save = next(step for step in steps if str(step.get("uses", "")).startswith("actions/cache/save"))
    assert save["if"] == "always()"  # a failed drill still keeps the history
    assert any(str(step.get("uses", "")).startswith("actions/upload-artifact") for step in steps)
    for job in doc["jobs"].values():
        assert job["timeout-minutes"] > 0


def test_the_scheduled_workflow_runs_the_drills_and_publishes_allure() -> None:
    doc = load_workflow(DEPLOY / "github-actions" / "failover-drills.yml")
    runs = [step["run"] for step in doc["jobs"]["drills"]["steps"] if "run" in step]
    command = next(r for r in runs if r.startswith("failover-tester run"))
    cli_ok(shlex.split(command.replace('"$TAGS"', "@smoke"))[1:])
    assert "${{" not in command  # inputs reach the shell through the environment, never pasted into it
    assert doc["jobs"]["drills"]["env"]["FAILOVER_TESTER_WEBHOOK_URL"] == "${{ secrets.FAILOVER_TESTER_WEBHOOK_URL }}"
    assert [s["uses"] for s in doc["jobs"]["publish"]["steps"]] == ["actions/deploy-pages@v4"]


def test_the_sharded_workflow_runs_each_shard_and_merges_them() -> None:
    doc = load_workflow(DEPLOY / "github-actions" / "failover-drills-sharded.yml")
    shard, merge = doc["jobs"]["shard"], doc["jobs"]["merge"]
    shards = shard["strategy"]["matrix"]["shard"]
    assert shard["strategy"]["fail-fast"] is False and shards == list(range(1, len(shards) + 1))
    run = next(s["run"] for s in shard["steps"] if str(s.get("run", "")).startswith("failover-tester run"))
    assert f'--shard "$SHARD/{len(shards)}"' in run and shard["env"]["SHARD"] == "${{ matrix.shard }}"
    assert merge["needs"] == "shard" and merge["if"] == "always()"
    assert any(s.get("run") == "failover-tester report merge shards/shard-*" for s in merge["steps"])
    download = next(s for s in merge["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "shard-*"


# ------------------------------------------------------------------------------------------ Kubernetes

def kubernetes_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text()) if d]


def test_the_cronjob_matches_the_published_schema() -> None:
    cronjob = next(d for d in kubernetes_docs() if d["kind"] == "CronJob")
    schema = json.loads((SCHEMAS / "cronjob-batch-v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(cronjob))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    broken = json.loads(json.dumps(cronjob))
    broken["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secret"] = {}
    assert list(validator.iter_errors(broken)), "the strict schema refuses an unknown field"


def test_the_cronjob_runs_one_unprivileged_drill_at_a_time_with_the_history_on_a_volume() -> None:
    docs = kubernetes_docs()
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    spec = cronjob["spec"]
    assert CRON.match(spec["schedule"]) and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["terminationGracePeriodSeconds"] >= 300
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    cli_ok(container["args"])
    reports = next(v for v in pod["volumes"] if v["name"] == "reports")
    assert reports["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "reports")["mountPath"]
    assert f"run.reports_dir={mount}" in container["args"]


# ------------------------------------------------------------------------------------------ the container image

def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in dockerfile.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def _matches(pattern: str, path: str) -> bool:
    """A .dockerignore pattern (Go filepath.Match: ``*`` stays within a folder) matches ``path`` or a folder of it."""
    regex = re.compile(fnmatch.translate(pattern).replace(".*", "[^/]*"))
    parts = path.split("/")
    return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def in_context(ignore: Path, path: str) -> bool:
    """Whether ``path`` reaches the build context (the last matching .dockerignore line decides)."""
    included = True
    for raw in ignore.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if _matches(line.lstrip("!").rstrip("/"), path):
            included = negate
    return included


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as the image's build instructions make it: `pip wheel --no-deps -w dist .` (on a copy of the
    sources, so that the checkout gets no build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    sources = tmp / "src"
    shutil.copytree(ROOT, sources, ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "reports", "build",
                                                                 "dist", "*.egg-info", "__pycache__", ".*_cache"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", "dist", "."], cwd=sources,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (sources / "dist").glob("*.whl")
    return wheel


def test_the_build_context_after_pip_wheel_holds_every_copy_source_and_little_else(built_wheel: Path) -> None:
    dockerfile = DEPLOY / "container" / "Dockerfile"
    ignore = ROOT / ".dockerignore"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    context = {path for path in [*tracked, f"dist/{built_wheel.name}"] if in_context(ignore, path)}
    assert context == {f"dist/{built_wheel.name}", "package.json", "package-lock.json"}
    size = built_wheel.stat().st_size + sum((ROOT / p).stat().st_size for p in context if not p.startswith("dist/"))
    assert size < 20 * 2**20, f"build context of {size} bytes"
    steps = instructions(dockerfile)
    copies = [args.split()[:-1] for kind, args in steps if kind in ("COPY", "ADD")]
    assert copies
    for sources in copies:
        for source in sources:
            assert not source.startswith("--"), "no COPY --from/--chown surprises in this image"
            source = source.rstrip("/")
            assert any(p == source or p.startswith(source + "/") for p in context), f"COPY {source}: not in context"
    install = next(args for kind, args in steps if kind == "RUN" and "pip install" in args)
    wheel_glob = next(word for word in install.split() if word.endswith(".whl"))
    assert fnmatch.fnmatch(f"/tmp/dist/{built_wheel.name}", wheel_glob), (wheel_glob, built_wheel.name)


def test_the_image_runs_the_tool_unprivileged() -> None:
    steps = instructions(DEPLOY / "container" / "Dockerfile")
    base = next(args for kind, args in steps if kind == "FROM")
    assert ":" in base and not base.endswith(":latest")
    assert next(args for kind, args in reversed(steps) if kind == "USER") == "drills"
    assert json.loads(next(args for kind, args in steps if kind == "ENTRYPOINT")) == ["failover-tester"]
    cli_ok(json.loads(next(args for kind, args in steps if kind == "CMD")))
    assert ("STOPSIGNAL", "SIGTERM") in steps


def test_the_context_check_sees_a_missing_copy_source(tmp_path: Path) -> None:
    ignore = tmp_path / ".dockerignore"
    ignore.write_text("*\n!package.json\n")
    assert in_context(ignore, "package.json") and not in_context(ignore, "dist/x.whl")
    assert not in_context(ignore, "support/cli/run.py")


# ------------------------------------------------------------------------------------------ systemd

UNITS = [DEPLOY / "systemd" / "failover-tester.service", DEPLOY / "systemd" / "failover-tester.timer"]
KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "After", "Requires"},
    "Service": {"Type", "User", "Group", "WorkingDirectory", "EnvironmentFile", "Environment", "ExecStart",
                "KillMode", "KillSignal", "TimeoutStartSec", "TimeoutStopSec", "NoNewPrivileges", "PrivateTmp",
                "ProtectSystem", "ProtectHome", "ReadWritePaths"},
    "Timer": {"OnCalendar", "Persistent", "RandomizedDelaySec", "Unit"},
    "Install": {"WantedBy"},
}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_the_units_parse_with_known_sections_and_keys() -> None:
    for path in UNITS:
        parsed = unit(path)
        for section in parsed.sections():
            assert section in KNOWN_KEYS, f"{path.name}: [{section}]"
            unknown = set(parsed[section]) - KNOWN_KEYS[section]
            assert not unknown, f"{path.name} [{section}]: {unknown}"
    service, timer = unit(UNITS[0]), unit(UNITS[1])
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["KillSignal"] == "SIGTERM"
    assert service["Service"]["User"] != "root"
    command = shlex.split(service["Service"]["ExecStart"])
    assert command[0].endswith("/failover-tester")
    cli_ok(command[1:])
    assert timer["Timer"]["Unit"] == UNITS[0].name and timer["Timer"]["Persistent"] == "true"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    for path in UNITS:  # ExecStart must exist for verify: point it at a program that does
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/failover-tester/bin/failover-tester",
                                                                   shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / p.name) for p in UNITS)],
                          capture_output=True, text=True, timeout=60, check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "failover-tester." in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
    (tmp_path / UNITS[0].name).write_text((tmp_path / UNITS[0].name).read_text().replace("KillMode=", "KilMode="))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / UNITS[0].name)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Unknown key" in done.stderr  # the check above can fail


# ------------------------------------------------------------------------------------------ Jenkins

def groovy_code(text: str) -> str:
    """The Jenkinsfile without comments and string contents (strings become ``''``)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("'''", i) or text.startswith('"""', i):
            quote = text[i:i + 3]
            i = text.index(quote, i + 3) + 3
            out.append("''")
        elif text[i] in "'\"":
            end = i + 1
            while text[end] != text[i]:
                end += 2 if text[end] == "\\" else 1
            i = end + 1
            out.append("''")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def balanced(code: str) -> bool:
    stack: list[str] = []
    for char in code:
        if char in "{([":
            stack.append(char)
        elif char in "})]" and (not stack or "{([".index(stack.pop()) != "})]".index(char)):
            return False
    return not stack


def test_the_jenkinsfile_is_a_declarative_pipeline_that_publishes_and_keeps_the_history() -> None:
    text = (DEPLOY / "jenkins" / "Jenkinsfile").read_text()
    code = groovy_code(text)
    assert balanced(code)
    assert re.match(r"\s*pipeline\s*\{", code)
    for block in ("agent", "triggers", "options", "environment", "stages", "post"):
        assert re.search(rf"\b{block}\s*\{{", code), block
    cron = re.search(r"cron\('([^']+)'\)", text)
    assert cron and CRON.match(cron.group(1))
    stages = re.findall(r"stage\('([^']+)'\)\s*\{\s*steps\s*\{", text)
    assert stages == ["Install", "Restore the history", "Drills"]
    assert "disableConcurrentBuilds()" in text
    restore = re.search(r"copyArtifacts\((.*?)\)\n", text, re.S)
    archive = re.search(r"archiveArtifacts\((.*?)\)\n", text, re.S)
    assert restore and archive and all(path in restore.group(1) and path in archive.group(1) for path in HISTORY)
    assert text.count("publishHTML(") == 2 and "allure-report" in text and "junit(" in text
    drills = re.search(r"sh '(\.venv/bin/failover-tester [^']+)'", text)
    assert drills
    cli_ok(shlex.split(drills.group(1).replace('"$TAGS"', "@smoke"))[1:])
    assert re.search(r"FAILOVER_TESTER_WEBHOOK_URL = credentials\('[\w-]+'\)", text)


def test_the_structure_check_sees_an_unclosed_block() -> None:
    text = (DEPLOY / "jenkins" / "Jenkinsfile").read_text()
    assert not balanced(groovy_code(text.replace("post {", "post {{", 1)))
    assert balanced(groovy_code("pipeline { steps { sh 'echo }' } } // }"))


# ------------------------------------------------------------------------------------------ all of them

def test_no_definition_carries_a_secret() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"hooks\.slack\.com/services/[A-Z0-9]", text), path
            assert not re.search(r"(?i)password\s*[:=]\s*['\"]?(?!credentials\()[A-Za-z0-9]{4,}", text), path
