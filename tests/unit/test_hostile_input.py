"""Hostile configuration values never become shell code on a host (issue 13: quoting and patterns).

Every fault's scripts are built from random hostile strings (quotes, ``$()``, backticks, ``;``, newlines,
globs, unicode) in every configuration value that reaches a shell, bypassing the schema (which refuses them
first: see test_config_limits.py). Each script then RUNS in a sandbox bash: PATH is empty, so every external
command it would start goes to ``command_not_found_handle``, which records its argument vector and does
nothing; ``kill`` is recorded too. The checks are the honest ones:

* no injection: a ``xdc_canary`` shell function (named in the hostile strings as ``$(xdc_canary)``,
  `` `xdc_canary` ``, ``;xdc_canary;``, a newline then ``xdc_canary``...) never runs;
* round trip: every argument that holds a piece of the hostile value holds all of it (the shell saw the value
  as part of one word, never split or expanded), and the value does reach a command;
* the script parses (``bash -n``; a syntax error would hide everything else).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from faultfakes import lab_shaped_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support.faults.base import Fault, FaultContext, FaultRefused, Topology
from support.faults.executor import READER, ExecutorPool, LocalExecutor, _wrap
from support.faults.guard import (
    HOST_RE,
    Allowlist,
    _bre,
    arm_script,
    audit_script,
    check_address,
    disarm_script,
    heal_script,
    list_script,
    sweep_script,
)
from support.faults.probe import host_probe_script
from support.faults.session import make_fault

START, END = "Q1", "Q2"  # around every hostile value: a piece of it in an argument is easy to spot
CANARY_CALLS = ["$(xdc_canary)", "`xdc_canary`", ";xdc_canary;", "\nxdc_canary\n", "'$(xdc_canary)'",
                '"$(xdc_canary)"', "&& xdc_canary", "| xdc_canary", "${IFS}xdc_canary", "$'\\n'xdc_canary",
                "\\'; xdc_canary #", "<<EOF\nxdc_canary\nEOF\n", "*", "~root", "{a,b}", "日本 é \u2028"]
# no "/" (a value must not walk the sandbox out of its temporary directory), no NUL (no shell can carry it)
HOSTILE = st.text(
    alphabet=st.one_of(st.sampled_from([*"'\"$()`;&|<>\n\t \\*?![]{}~#=%^,:@-._+", "é", "日", "\u2028"]),
                       st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/")),
    max_size=24,
).map(lambda text: text.replace("xdc", "")) | st.sampled_from(CANARY_CALLS)
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SANDBOX = """__xdc_n=0
command_not_found_handle() { printf '%s\\0' "$@" > "$XDC_LOG/$BASHPID.$((__xdc_n += 1))"; return 0; }
kill() { printf '%s\\0' kill "$@" > "$XDC_LOG/$BASHPID.$((__xdc_n += 1))"; return 0; }
xdc_canary() { : > "$XDC_CANARY"; }
IFS= read -r -d '' __xdc_script
( trap wait EXIT; eval "$__xdc_script" )
"""


def sandbox_run(script: str, tmp: Path) -> list[list[str]]:
    """Run ``script`` in the sandbox bash; the argument vectors of the commands it started. Fails the test on
    a syntax error or when the canary ran."""
    syntax = subprocess.run(["/bin/bash", "-n"], input=script.encode(), capture_output=True, timeout=10, check=False)
    assert syntax.returncode == 0, f"syntax error: {syntax.stderr.decode(errors='replace')}\n{script}"
    log, canary, empty = tmp / "argv", tmp / "canary", tmp / "empty-path"
    shutil.rmtree(log, ignore_errors=True)
    log.mkdir()
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "XDC_LOG": str(log), "XDC_CANARY": str(canary), "LC_ALL": "C.UTF-8",
           "SSH_CONNECTION": "10.9.9.9 50000 10.9.9.10 22"}
    subprocess.run(["/bin/bash", "-c", SANDBOX], input=script.encode(), env=env, cwd=tmp, capture_output=True,
                   timeout=20, check=False)
    assert not canary.exists(), f"shell injection: the canary ran\n{script}"
    # one file per command started (commands of a pipeline run at once)
    argvs = [record.read_bytes().decode("utf-8", "surrogateescape").split("\0")[:-1]
             for record in sorted(log.iterdir())]
    return argvs


def holds(arg: str, value: str) -> bool:
    """``arg`` holds all of ``value`` (as it is, or escaped for a grep pattern that matches it literally)."""
    return value in arg or _bre(value) in arg


def assert_one_word(argvs: list[list[str]], value: str, script: str) -> None:
    """Every argument holding a piece of ``value`` holds all of it; and some argument does."""
    holders = [arg for argv in argvs for arg in argv if START in arg or END in arg]
    for arg in holders:
        assert holds(arg, value), f"{value!r} split or expanded: argument {arg!r}\n{script}"
    assert holders, f"{value!r} reached no command\n{script}"


def hostile_context(tmp: Path, *, state_dir: str | None = None, host: str | None = None,
                    python: str | None = None, streamtool: str | None = None,
                    snapshot_dir: str | None = None) -> FaultContext:
    """The lab-shaped fault context with hostile values put in where the schema would refuse them."""
    config = lab_shaped_config(tmp)
    faults = config.settings.faults
    # by default inside the test's directory too: the sandbox really performs the scripts' redirections, and
    # must never leave a file where a lab on this machine keeps its faults' state
    (tmp / "state").mkdir(exist_ok=True)
    (tmp / "snapshots").mkdir(exist_ok=True)
    state_dir, snapshot_dir = state_dir or str(tmp / "state"), snapshot_dir or str(tmp / "snapshots")
    faults = dataclasses.replace(faults, state_dir=state_dir, python=python or faults.python)
    base = Topology.from_settings(config.settings, str(config.source))
    dc1 = base.datacenters["dc1"]
    # streamtool by a bare name by default: the sandbox runs an absolute path for real, and the lab's
    # /run/xdc-lab/bin/streamtool stopinstance would stop the instance of a lab another session is using
    dc1 = dataclasses.replace(dc1, hosts=(host,) if host else dc1.hosts, streamtool=streamtool or "streamtool",
                              snapshot_dir=snapshot_dir)
    topology = dataclasses.replace(base, datacenters={**base.datacenters, "dc1": dc1})
    allowlist = Allowlist(topology)
    pool = ExecutorPool(topology, allowlist, dry_run=True)
    return FaultContext(topology, faults, pool, allowlist, {}, dry_run=True)


FAULTS: dict[str, Callable[[FaultContext], Fault]] = {
    "partition": lambda ctx: make_fault(ctx, "partition", between=("dc1", "dc2")),
    "isolate": lambda ctx: make_fault(ctx, "isolate", dc="dc1"),
    "latency": lambda ctx: make_fault(ctx, "latency", between=("dc1", "dc2"), delay=0.1),
    "loss": lambda ctx: make_fault(ctx, "loss", between=("dc1", "dc2"), probability=0.5),
    "bandwidth": lambda ctx: make_fault(ctx, "bandwidth", between=("dc1", "dc2"), rate="1mbit"),
    "pe-kill": lambda ctx: make_fault(ctx, "pe-kill", dc="dc1", operator="Aggregator"),
    "pe-hang": lambda ctx: make_fault(ctx, "pe-hang", dc="dc1", operator="Aggregator"),
    "cpu": lambda ctx: make_fault(ctx, "cpu", dc="dc1"),
    "memory": lambda ctx: make_fault(ctx, "memory", dc="dc1"),
    "disk": lambda ctx: make_fault(ctx, "disk", dc="dc1"),
    "instance-stop": lambda ctx: make_fault(ctx, "instance-stop", dc="dc1"),
}


def fault_scripts(fault: Fault) -> list[str]:
    if fault.kind == "latency":  # the delayer's scripts carry faults.python and more state files than netem's
        fault.mode = {host: "delayer" for host in fault.hosts()}  # type: ignore[attr-defined]
    return [script for _, _, script in fault.commands()]


def build(kind: str, tmp: Path, **values: str) -> Fault | None:
    """The fault, or None when it refuses the hostile value (a refusal is a correct answer too)."""
    try:
        return FAULTS[kind](hostile_context(tmp, **values))
    except FaultRefused:
        return None


@pytest.mark.parametrize("kind", sorted(FAULTS))
@FAST
@given(HOSTILE)
@example("$(xdc_canary)")
@example("a'b\"c\nxdc_canary\n`xdc_canary`;xdc_canary")
def test_a_hostile_state_dir_stays_one_word_in_every_fault_script(kind: str, tmp_path: Path, text: str) -> None:
    value = f"{START}{text}{END}"
    fault = build(kind, tmp_path, state_dir=f"{tmp_path}/{value}")
    assert fault is not None
    scripts = fault_scripts(fault)
    argvs = [argv for script in scripts for argv in sandbox_run(script, tmp_path)]
    if fault.reversible and fault.hosts():
        assert_one_word(argvs, value, "\n---\n".join(scripts))


@pytest.mark.parametrize("kind", sorted(FAULTS))
@FAST
@given(HOSTILE)
@example("$(xdc_canary)")
@example("h;xdc_canary")
def test_a_hostile_host_is_refused_or_stays_one_word(kind: str, tmp_path: Path, text: str) -> None:
    value = f"{START}{text}{END}"
    fault = build(kind, tmp_path, host=value)
    plain = HOST_RE.match(value) is not None and "\n" not in value
    if fault is None:
        assert not plain, f"{value!r} refused"
        return
    if kind in ("partition", "isolate", "latency", "loss", "bandwidth"):  # hosts go into iptables lines as they are
        assert plain, f"network fault {kind} took the host {value!r}"
    for script in fault_scripts(fault):
        argvs = sandbox_run(script, tmp_path)
        for arg in (a for argv in argvs for a in argv if START in a or END in a):
            assert holds(arg, value), f"{value!r} split or expanded: argument {arg!r}\n{script}"


@FAST
@given(HOSTILE)
@example("$(xdc_canary)")
def test_hostile_programs_and_directories_stay_one_word(tmp_path: Path, text: str) -> None:
    value = f"{START}{text}{END}"
    cases = [("latency", {"python": value}), ("instance-stop", {"streamtool": value}),
             ("disk", {"snapshot_dir": f"{tmp_path}/{value}"})]
    for kind, values in cases:
        fault = build(kind, tmp_path, **values)
        assert fault is not None
        scripts = fault_scripts(fault)
        argvs = [argv for script in scripts for argv in sandbox_run(script, tmp_path)]
        assert_one_word(argvs, value, "\n---\n".join(scripts))
    probe = host_probe_script(value, value, value)  # doctor / capability probe: faults.python and streamtool
    assert_one_word(sandbox_run(probe, tmp_path), value, probe)


@FAST
@given(HOSTILE, HOSTILE)
@example("$(xdc_canary)", "`xdc_canary`")
def test_the_safety_scripts_quote_directory_host_and_key(tmp_path: Path, directory: str, host: str) -> None:
    """The dead-man timer, heal, list, audit and sweep: every value they name stays one word."""
    where, name = f"{tmp_path}/{START}{directory}{END}", f"{START}{host}{END}"
    key = f"0123abcd@{name}"
    scripts = [arm_script("xdc-fault", key, "partition", 5.0, "true\n", {"summary": "x"}, where),
               heal_script("xdc-fault", key, "true\n", where), disarm_script("xdc-fault", key, where),
               list_script("xdc-fault", name, where), audit_script("xdc-fault", name, [where], [], where),
               sweep_script("xdc-fault", name, [where], where)]
    for script in scripts:
        argvs = sandbox_run(script, tmp_path)
        for arg in (a for argv in argvs for a in argv if START in a or END in a):
            assert holds(arg, f"{START}{directory}{END}") or holds(arg, name), f"split or expanded: {arg!r}\n{script}"
    mkdir = sandbox_run(scripts[0], tmp_path)
    assert ["mkdir", "-p", where] in mkdir


@pytest.mark.parametrize("host", ["198.18.1.10", "dc1-host.example.com", "::1", "fe80::1%eth0", "localhost",
                                  "host_1.lab."])
def test_plain_hosts_pass_the_code_check(host: str) -> None:
    assert check_address(host) == host


@pytest.mark.parametrize("host", ["h;id", "$(id)", "a b", "h\n", "-s 1.2.3.4", "h'", "a..b", "日本", ""])
def test_hostile_hosts_fail_the_code_check(host: str) -> None:
    with pytest.raises(FaultRefused):
        check_address(host)


def test_the_host_check_and_the_schema_pattern_agree() -> None:
    import json
    import re

    from support.config.loader import SCHEMA_PATH

    pattern = json.loads(SCHEMA_PATH.read_text())["$defs"]["host"]["pattern"]
    for host in ["198.18.1.10", "a.b-c.d", "::1", "fe80::1%eth0", "x", "h;id", "a b", "h\n", "a..b", "-x", "日"]:
        in_schema = re.search(pattern, host) is not None
        in_code = True
        try:
            check_address(host)
        except FaultRefused:
            in_code = False
        assert in_schema == in_code, host


# ------------------------------------------------------------------------------- scripts on stdin


def test_a_script_never_appears_in_the_command_line_on_the_host(tmp_path: Path) -> None:
    """The persistent SSH shell and the local executor start ``bash -c READER``: the script (and every value in
    it) comes on stdin, so ``ps`` shows the same constant text for every script."""
    script = f"cat /proc/$PPID/cmdline | tr '\\0' ' '; echo; echo {START}secret-ish{END} > /dev/null\n"
    first = _wrap(script, 5).split("\n")[0]
    assert START not in first and "secret-ish" not in first
    assert first.endswith("<<'" + first.rsplit("<<'", 1)[1])  # a quoted here-document
    result = LocalExecutor("localhost").run(script, timeout=10)
    assert result.ok, result.why()
    assert "secret-ish" not in result.stdout and "bash -c" in result.stdout
    assert READER.split(";")[0] in result.stdout


def test_the_here_document_carries_any_script_unchanged(tmp_path: Path) -> None:
    """Through the same wrapping the SSH session uses: quotes, $(), backslashes and a line that looks like the
    delimiter arrive as they were written."""
    text = "a'b\"c $(xdc_canary) `xdc_canary` \\n \\\\ $HOME ${x:-y}\n__xdc_script_0000\nEOF"
    script = f"cat <<'__inner__'\n{text}\n__inner__\n"
    session = f"exec 3>&1; __e=$({_wrap(script, 10, (), ' 2>&1 1>&3 3>&-')}); echo rc=$?"
    done = subprocess.run(["bash", "-c", "xdc_canary() { : > canary; }\n" + session], cwd=tmp_path,
                          capture_output=True, text=True, timeout=10, check=False)
    assert done.stdout == f"{text}\nrc=0\n"
    assert not (tmp_path / "canary").exists()


# ------------------------------------------------------------------------------ no secret on a host


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_no_fault_script_carries_a_secret(kind: str, tmp_path: Path) -> None:
    """Faults authenticate to nothing on the hosts (instance stop and start use streamtool with the host user's
    own credentials), so no configured secret is ever in a script: not in clear, not base64-encoded."""
    import base64

    ctx = hostile_context(tmp_path)
    fault = FAULTS[kind](ctx)
    secret = "unit-secret-pw"  # lab_shaped_config's REST password
    encoded = {base64.b64encode(f"{prefix}{secret}".encode()).decode()[4:-4] for prefix in ("", "x", "xy")}
    for script in fault_scripts(fault):
        assert secret not in script
        assert not any(piece in script for piece in encoded)


@FAST
@given(HOSTILE)
@example("$(xdc_canary)")
def test_the_data_center_host_scripts_keep_paths_and_programs_one_word(tmp_path: Path, text: str) -> None:
    """support/dchost.py: the standby stub's log file, the toolkit's config files and the snapshot directory
    (the stub's command is a shell command by design, and is one quoted argument of sh -c; streamtool is covered
    with instance-stop above)."""
    from support.dchost import SnapshotStore, StandbyStub, ToolkitFiles
    from support.faults.executor import DryRunExecutor
    from support.orchestration import Journal

    value = f"{START}{text}{END}"
    where = f"{tmp_path}/{value}"
    info = dataclasses.replace(hostile_context(tmp_path).topology.dc("dc1"),
                               config_files={"application": f"{where}/orders.cfg"})
    recorder = DryRunExecutor("198.18.1.10")
    stub = StandbyStub("orders", info, "xdc_canary; echo stub", f"{where}/stub.log", recorder, Journal(None, "t"))
    ToolkitFiles(info, recorder).write("application", "k=v\n")
    ToolkitFiles(info, recorder).read("application")
    SnapshotStore(where, recorder).newest()
    scripts = [stub.start_script(), *(script for _, script in recorder.recorded)]
    for script in scripts:
        argvs = sandbox_run(script, tmp_path)
        for arg in (a for argv in argvs for a in argv if START in a or END in a):
            assert holds(arg, value), f"{value!r} split or expanded: argument {arg!r}\n{script}"
    assert_one_word([argv for script in scripts[1:] for argv in sandbox_run(script, tmp_path)], value,
                    "\n".join(scripts))
