"""The tester's work on a data center's first host: the toolkit's config files, the standalone stub, the name
service; against a fake executor that records the scripts and answers like the host would."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from support.dchost import StandbyStub, ToolkitFiles, lookup_special_port, parse_config, rewrite_config
from support.faults.core import DataCenterInfo
from support.faults.executor import Executor, Result, _wrap
from support.orchestration import Journal

CONFIG = """# crossdc settings of dc2
localDataCenterName = dc2
heartbeatExchangeInterval=1.0
#heartbeatExchangeInterval=30.0
dataSnapshotJdbcUrl=jdbc:db2://h:5000/x;a=b
consecutiveHeartbeatMissesAllowed=3
"""


class FakeHost(Executor):
    """Answers ``cat``, ``ss``, ``kill`` and streamtool like a host, and keeps what was written."""

    def __init__(self) -> None:
        super().__init__("198.18.2.10")
        self.files = {"/cfg/orders.cfg": CONFIG}
        self.listener: int | None = None
        self.scripts: list[str] = []
        self.ns_entry = ""

    def run(self, script: str, timeout: float = 30.0) -> Result:
        self.scripts.append(script)
        out, rc = "", 0
        if script.startswith("cat -- "):
            path = script.split(" ", 2)[2].strip("'")
            out, rc = (self.files[path], 0) if path in self.files else ("", 1)
        elif script.startswith("printf %s ") and "base64 -d >" in script:
            words = script.split("\n", 1)[0].split()
            self.files[words[7].strip("'").removesuffix(".tester-tmp")] = base64.b64decode(words[2]).decode()
        elif script.startswith("ss "):
            out = "" if self.listener is None else (
                f'LISTEN 0 5 198.18.2.10:25091 0.0.0.0:* users:(("python3",pid={self.listener},fd=3))\n')
        elif "setsid nohup" in script:
            self.listener = 4321
        elif script.startswith("kill -0"):
            rc = 0 if self.listener is not None else 1
        elif script.startswith("kill "):
            self.listener = None
        elif "getnsentry" in script:
            out, rc = (self.ns_entry, 0) if self.ns_entry else ("", 1)
        return Result(self.host, rc, out, "", 0.0)


def dc(**more: object) -> DataCenterInfo:
    return DataCenterInfo(name="dc2", hosts=("198.18.2.10",), ssh=None, crossdc_port=25091,
                          special_message_port=more.pop("port", None), snapshot_dir=None,  # type: ignore[arg-type]
                          streamtool="/opt/streams/bin/streamtool", config_files={"application": "/cfg/orders.cfg"})


def test_the_config_file_is_read_as_the_toolkit_reads_it() -> None:
    values = parse_config(CONFIG)
    assert values["localDataCenterName"] == "dc2"  # spaces trimmed
    assert values["heartbeatExchangeInterval"] == "1.0"  # the commented line is not read
    assert "dataSnapshotJdbcUrl" not in values  # a value holding '=' is ignored, as the toolkit's parser does
    assert parse_config("a==b\na=c\nk=1\nk=2\n") == {"a": "b", "k": "1"}  # empty tokens dropped; first line wins


def test_a_rewrite_replaces_active_lines_keeps_comments_and_appends_new_keys() -> None:
    text = rewrite_config(CONFIG, {"heartbeatExchangeInterval": "0.5", "crossDCInitDelay": "2.0"})
    assert "#heartbeatExchangeInterval=30.0" in text
    assert parse_config(text)["heartbeatExchangeInterval"] == "0.5"
    assert text.rstrip().endswith("crossDCInitDelay=2.0")
    with pytest.raises(ValueError):
        rewrite_config(CONFIG, {"bad key; rm -rf /": "1"})


def test_files_are_set_and_the_undo_writes_the_original_back() -> None:
    host = FakeHost()
    files = ToolkitFiles(dc(), host)
    undo = files.set("application", {"consecutiveHeartbeatMissesAllowed": "5"})
    assert files.values("application")["consecutiveHeartbeatMissesAllowed"] == "5"
    assert any("mv -f -- /cfg/orders.cfg.tester-tmp /cfg/orders.cfg" in s for s in host.scripts)  # atomic
    undo()
    assert host.files["/cfg/orders.cfg"] == CONFIG


def test_the_stub_is_found_by_the_port_it_holds_started_detached_and_stopped_by_pid() -> None:
    host = FakeHost()
    stub = StandbyStub("orders", dc(), "standalone -P configFileName=/cfg/s.cfg", "/run/t/standby.log", host,
                       Journal(None, "t"))
    assert stub.pid() is None
    assert stub.start(timeout=2) == 4321
    started = next(s for s in host.scripts if "setsid nohup" in s)
    assert "sh -c 'standalone -P configFileName=/cfg/s.cfg'" in started and ">> /run/t/standby.log" in started
    stub.stop(timeout=2)
    assert "kill 4321 2>/dev/null; true" in host.scripts and stub.pid() is None


def test_the_special_message_port_comes_from_the_name_service_unless_configured() -> None:
    host = FakeHost()
    host.ns_entry = "SpecialMessagePort 198.18.2.10:41234\n"
    assert lookup_special_port(dc(), host, "7", timeout=2) == ("198.18.2.10", 41234)
    assert host.scripts[-1] == "/opt/streams/bin/streamtool getnsentry SpecialMessagePort --jobs 7"
    assert lookup_special_port(dc(port=25099), FakeHost(), "7") == ("198.18.2.10", 25099)


def test_the_start_script_returns_at_once_inside_the_ssh_sessions_capture(tmp_path: Path) -> None:
    """The SSH executor's persistent shell captures a command's stderr with ``$(...)``: a start script that left
    that pipe open in a background process would never return (the session's 'no answer within 20 s')."""
    log_file = str(tmp_path / "logs" / "standby.log")
    stub = StandbyStub("orders", dc(), "sleep 3", log_file, FakeHost(), Journal(None, "t"))
    session = f"exec 3>&1; __e=$({_wrap(stub.start_script(), 10, (), ' 2>&1 1>&3 3>&-')}); echo rc=$?"
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", session], capture_output=True, text=True, timeout=10, check=False)
    assert done.stdout.split() == ["started", "rc=0"]
    assert time.monotonic() - started < 2.0  # not the 3 s the stub lives
    assert (tmp_path / "logs" / "standby.log").exists()


@pytest.mark.parametrize("text", ["a=1\nlast=no newline", "XDC_TESTER_EOF\nk=v\n", "", "q='\"$(id)`\n\\n\n"])
def test_a_config_file_is_written_byte_for_byte_whatever_its_text(tmp_path: Path, text: str) -> None:
    """The restore writes back exactly what was read: a file without a final newline, or with a line that
    looks like a here-document marker, once ended the here-document early and the restore wrote garbage."""
    from support.faults.executor import LocalExecutor

    target = tmp_path / "it's a dir" / "orders $(x).cfg"
    target.parent.mkdir()
    info = dataclasses.replace(dc(), config_files={"application": str(target)})
    ToolkitFiles(info, LocalExecutor("localhost")).write("application", text)
    assert target.read_bytes() == text.encode()
