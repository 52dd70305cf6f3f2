"""Executors: SSH retries and refusals (fake paramiko client, and a real sshd on loopback when root), local."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from faultfakes import is_root

from support.faults.base import SshSettings
from support.faults.executor import ExecutorError, LocalExecutor, SSHExecutor

SSH = SshSettings(user="root", key_file="/nonexistent/key", known_hosts="/nonexistent/known_hosts", port=2222)


class FlakyClient:
    """Stands in for paramiko.SSHClient: connect fails with the queued errors, then succeeds."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.attempts = 0

    def load_host_keys(self, path: str) -> None:
        pass

    def set_missing_host_key_policy(self, policy: object) -> None:
        assert isinstance(policy, paramiko.RejectPolicy)

    def connect(self, host: str, **kwargs: object) -> None:
        self.attempts += 1
        assert kwargs["allow_agent"] is False and kwargs["look_for_keys"] is False
        if self.errors:
            raise self.errors.pop(0)
        raise _Connected()

    def close(self) -> None:
        pass


class _Connected(Exception):
    """Raised by the fake once connect 'succeeds' (the test stops there)."""


def test_connection_errors_are_retried_with_backoff_then_reported() -> None:
    client = FlakyClient([ConnectionRefusedError(111, "Connection refused")] * 10)
    pauses: list[float] = []
    executor = SSHExecutor("198.18.1.10", SSH, retries=3, client_factory=lambda: client,  # type: ignore[arg-type,return-value]
                           pause=pauses.append)
    with pytest.raises(ExecutorError) as caught:
        executor.run("true")
    message = str(caught.value)
    assert client.attempts == 4
    assert pauses == [0.2, 0.4, 0.8]
    assert "root@198.18.1.10:2222: 4 attempt(s)" in message and "Connection refused" in message
    assert "tried key /nonexistent/key, known_hosts /nonexistent/known_hosts" in message


def test_a_transient_error_then_success_connects() -> None:
    client = FlakyClient([TimeoutError("timed out"), EOFError()])
    executor = SSHExecutor("198.18.1.10", SSH, retries=3, client_factory=lambda: client,  # type: ignore[arg-type,return-value]
                           pause=lambda _: None)
    with pytest.raises(_Connected):
        executor.run("true")
    assert client.attempts == 3


@pytest.mark.parametrize(("error", "text"), [
    (paramiko.SSHException("Server '[198.18.1.10]:2222' not found in known_hosts"), "not in known_hosts"),
    (paramiko.AuthenticationException("Authentication failed."), "authentication failed"),
])
def test_host_key_and_auth_failures_are_not_retried(error: BaseException, text: str) -> None:
    client = FlakyClient([error])
    executor = SSHExecutor("198.18.1.10", SSH, retries=3, client_factory=lambda: client,  # type: ignore[arg-type,return-value]
                           pause=lambda _: None)
    with pytest.raises(ExecutorError, match=text):
        executor.run("true")
    assert client.attempts == 1


def test_local_executor_separates_stdout_stderr_and_exit_code() -> None:
    result = LocalExecutor("localhost").run("echo out; echo err >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert LocalExecutor("localhost").run("sleep 5", timeout=0.2).rc == 124


# ---------------------------------------------------------------- a real sshd on loopback (root only)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshSettings, Path]]:
    if not is_root() or not Path("/usr/sbin/sshd").exists() or not shutil.which("ssh-keygen"):
        pytest.skip("needs root, /usr/sbin/sshd and ssh-keygen")
    home = tmp_path_factory.mktemp("sshd")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True)
    port = _free_port()
    (home / "authorized_keys").write_text((home / "client.pub").read_text())
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {(home / 'host.pub').read_text()}")
    (home / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {(home / 'client.pub').read_text()}")
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\n"
        f"PidFile {home / 'sshd.pid'}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(home / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("sshd did not listen")
            time.sleep(0.05)
    try:
        yield SshSettings(user="root", key_file=str(home / "client"), known_hosts=str(home / "known_hosts"),
                          port=port), home
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_real_ssh_runs_commands_on_one_persistent_connection(sshd: tuple[SshSettings, Path]) -> None:
    settings, _ = sshd
    executor = SSHExecutor("127.0.0.1", settings)
    try:
        first = executor.run("echo hi; echo oops >&2; exit 3")
        assert (first.rc, first.stdout, first.stderr.strip()) == (3, "hi\n", "oops")
        started = time.monotonic()
        for _ in range(20):
            assert executor.run("true").ok
        per_command = (time.monotonic() - started) / 20
        assert executor.connects == 1
        assert per_command < 0.05, f"{per_command * 1000:.1f} ms per command on the persistent shell"
        assert executor.run("printf 'no newline'").stdout == "no newline"
        assert executor.run("sleep 5", timeout=0.3).rc == 124
        assert executor.run("echo still here").stdout == "still here\n"
        # the script comes on stdin: the command line of the shell running it (and of its timeout) never holds it
        seen = executor.run("tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' ' ' < /proc/$PPID/cmdline; "
                            "echo; : secret-looking-marker; read -r x && echo \"stdin: $x\"; echo end")
        assert seen.ok and "bash -c" in seen.stdout and "timeout" in seen.stdout
        assert "secret-looking-marker" not in seen.stdout and "stdin:" not in seen.stdout  # stdin at end of file
    finally:
        executor.close()


def test_real_ssh_rejects_an_unknown_host_key(sshd: tuple[SshSettings, Path]) -> None:
    settings, home = sshd
    wrong = SshSettings(user="root", key_file=settings.key_file, known_hosts=str(home / "wrong_known_hosts"),
                        port=settings.port)
    with pytest.raises(ExecutorError, match="host key does not match"):
        SSHExecutor("127.0.0.1", wrong, retries=2).run("true")


def test_privileged_scripts_run_under_the_configured_prefix() -> None:
    from support.faults.executor import _wrap

    first, body, _ = _wrap("true", 5).split("\n", 2)
    assert first.startswith("timeout -k 1 5.000 bash -c ") and body == "true"
    wrapped = _wrap("iptables -L", 5, ("sudo", "-n", "-u", "root"))
    assert wrapped.startswith("sudo -n -u root timeout -k 1 5.000 bash -c ")
    assert wrapped.split("\n")[1] == "iptables -L"  # on stdin (a quoted here-document), not in the arguments
    assert "iptables" not in wrapped.split("\n")[0]


def test_sudo_setting_parses_true_false_and_a_prefix() -> None:
    from support.config.settings import SettingsError, _sudo

    assert _sudo(None, "x") == () and _sudo(False, "x") == ()
    assert _sudo(True, "x") == ("sudo", "-n")
    assert _sudo("pbrun -u root", "x") == ("pbrun", "-u", "root")
    with pytest.raises(SettingsError):
        _sudo("  ", "x")


def test_real_ssh_prefix_keeps_the_ssh_connection(sshd: tuple[SshSettings, Path]) -> None:
    settings, _ = sshd
    prefixed = SshSettings(user="root", key_file=settings.key_file, known_hosts=settings.known_hosts,
                           port=settings.port, sudo=("env", "XDC_VIA=prefix"))
    executor = SSHExecutor("127.0.0.1", prefixed)
    try:
        result = executor.run("echo \"$XDC_VIA|${SSH_CONNECTION##* }\"; echo err >&2; exit 4")
        assert (result.rc, result.stdout, result.stderr.strip()) == (4, f"prefix|{settings.port}\n", "err")
    finally:
        executor.close()


def test_real_ssh_through_a_bastion_checks_both_host_keys(sshd: tuple[SshSettings, Path]) -> None:
    from support.config.settings import BastionSettings

    settings, home = sshd
    # the same sshd serves as the bastion (it forwards TCP by default) and as the target
    jump = BastionSettings(host="127.0.0.1", port=settings.port, user="root", key_file=settings.key_file)
    via = SshSettings(user="root", key_file=settings.key_file, known_hosts=settings.known_hosts,
                      port=settings.port, bastion=jump)
    executor = SSHExecutor("127.0.0.1", via)
    try:
        assert "via bastion root@127.0.0.1" in executor.describe()
        # through the bastion the target sees a connection from the bastion's side of the tunnel
        result = executor.run("echo \"$SSH_CONNECTION\"")
        assert result.ok and result.stdout.split()[0] == "127.0.0.1"
        assert executor.run("echo again").stdout == "again\n" and executor.connects == 1
    finally:
        executor.close()
    wrong = SshSettings(user="root", key_file=settings.key_file, known_hosts=str(home / "wrong_known_hosts"),
                        port=settings.port, bastion=jump)
    with pytest.raises(ExecutorError, match="bastion: host key does not match"):
        SSHExecutor("127.0.0.1", wrong, retries=2).run("true")
