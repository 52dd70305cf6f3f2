"""Doctor per host: SSH as the configured user, sudo, the bastion and the cgroup version, with advice."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from faultfakes import PROJECT, is_root

from support.config import Config, load_config
from support.faults.core import Topology
from support.faults.executor import Executor, ExecutorError, ExecutorPool, LocalExecutor, Result
from support.faults.guard import Allowlist
from support.faults.probe import CapabilityProbe, doctor_table, host_probe_script

DC1, DC2 = "198.18.1.10", "198.18.2.10"


def bastion_config(tmp_path: Path) -> Config:
    """config/lab-bastion.yaml (non-root user, sudo, bastion) with a password from a temp file."""
    secret = tmp_path / "pw"
    secret.write_text("unit-secret-pw\n")
    path = tmp_path / "bastion.yaml"
    path.write_text(
        f"extends: {PROJECT / 'config' / 'lab-bastion.yaml'}\n"
        "datacenters:\n"
        f"  dc1: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
        f"  dc2: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
    )
    return load_config(path)


class CannedHost(Executor):
    """Answers the host probe with fixed output, or fails like a given connection error."""

    def __init__(self, host: str, stdout: str = "", rc: int = 0, stderr: str = "", error: str = "") -> None:
        super().__init__(host)
        self.stdout, self.rc, self.stderr, self.error = stdout, rc, stderr, error

    def run(self, script: str, timeout: float = 30.0) -> Result:
        if self.error:
            raise ExecutorError(self.error)
        return Result(self.host, self.rc, self.stdout, self.stderr, 0.01)

    def describe(self) -> str:
        return f"xdcfault@{self.host}:22 via bastion xdcfault@198.18.3.10:22"


def _probe(config: Config, hosts: dict[str, CannedHost]) -> CapabilityProbe:
    topology = Topology.from_settings(config.settings, str(config.source))
    pool = ExecutorPool(topology, Allowlist(topology), factory=lambda host: hosts[host])
    return CapabilityProbe(config, topology, pool, rest={})


def test_settings_of_the_bastion_variant(tmp_path: Path) -> None:
    ssh = bastion_config(tmp_path).settings.datacenters["dc1"].ssh
    assert ssh is not None and ssh.user == "xdcfault" and ssh.sudo == ("sudo", "-n")
    assert ssh.bastion is not None and ssh.bastion.describe() == "xdcfault@198.18.3.10:22"
    assert ssh.bastion.key_file == ssh.key_file == "/run/xdc-lab/ssh/fault_key"
    assert ssh.known_hosts == "/run/xdc-lab/ssh/known_hosts"  # one known_hosts for both hops


def test_doctor_reports_ssh_user_sudo_bastion_and_cgroup_version_with_advice(tmp_path: Path) -> None:
    good = ("CAP bash yes bash 5.2\nCAP sudo yes root rights: via ssh.sudo `sudo -n`\n"
            "CAP cgroup yes v2 (unified at /sys/fs/cgroup)\nCAP cgroup-cpu yes v2\n")
    hosts = {
        DC1: CannedHost(DC1, good),
        DC2: CannedHost(DC2, rc=1, stderr="sudo: a password is required\n"),
    }
    probe = _probe(bastion_config(tmp_path), hosts)
    table, complete = doctor_table(probe)
    assert not complete
    one = probe.host(DC1)
    assert one.found["ssh"] == (True, f"connected as xdcfault@{DC1}:22 via bastion xdcfault@198.18.3.10:22")
    assert one.found["bastion"] == (True, "through xdcfault@198.18.3.10:22")
    assert one.has("sudo") and one.found["cgroup"][1].startswith("v2")
    two = probe.host(DC2)
    assert two.has("ssh") and not two.has("sudo")
    assert "sudo -n` failed: exit 1: sudo: a password is required" in two.found["sudo"][1]
    assert "NOPASSWD" in table  # the sudo advice
    assert "cgroup         yes  v2 (unified at /sys/fs/cgroup)" in table


def test_doctor_tells_a_bastion_failure_from_a_host_failure(tmp_path: Path) -> None:
    hosts = {
        DC1: CannedHost(DC1, error=f"ssh xdcfault@{DC1}:22 via bastion xdcfault@198.18.3.10:22: bastion: host key "
                                   "does not match known_hosts (known_hosts /run/xdc-lab/ssh/known_hosts; rejected)"),
        DC2: CannedHost(DC2, error=f"ssh xdcfault@{DC2}:22 via bastion xdcfault@198.18.3.10:22: 2 attempt(s) "
                                   "failed, last: Authentication failed"),
    }
    probe = _probe(bastion_config(tmp_path), hosts)
    table, _ = doctor_table(probe)
    assert probe.host(DC1).found["bastion"] == (False, "xdcfault@198.18.3.10:22 failed (see ssh)")
    assert probe.host(DC2).found["bastion"] == (True, "xdcfault@198.18.3.10:22 reached; the host behind it did "
                                                      "not answer")
    assert "AllowTcpForwarding" in table  # the bastion advice
    assert not probe.host(DC2).has("sudo")


@pytest.mark.skipif(not is_root(), reason="needs root (runs the probe as root and as nobody)")
def test_the_probe_script_tells_root_rights_and_the_cgroup_version() -> None:
    script = host_probe_script("python3", privilege="via ssh.sudo `sudo -n`")
    as_root = LocalExecutor("local").run(script)
    assert "CAP sudo yes root rights: via ssh.sudo `sudo -n`" in as_root.stdout
    assert any(line.startswith("CAP cgroup yes") for line in as_root.stdout.splitlines())
    nobody = LocalExecutor("local").run(
        f"setpriv --reuid=65534 --regid=65534 --clear-groups bash -c {shlex.quote(script)}")
    assert "CAP sudo no commands run as uid 65534 (nobody), not root" in nobody.stdout


def test_doctor_names_the_fault_kinds_each_host_can_take(tmp_path: Path) -> None:
    from support.cli.doctor import fault_kinds_report
    from support.faults.probe import ADVICE

    everything = "".join(f"CAP {name} yes probed\n" for name in (
        "bash", "sudo", "iptables", "statistic", "nfqueue", "netem", "tbf", "delayer", "stress-ng", "cgroup",
        "cgroup-cpu", "cgroup-memory", "fallocate", "ss", "streamtool", "pgrep", "snapshot-dir"))
    no_pgrep = everything.replace("CAP pgrep yes probed", "CAP pgrep no not installed")
    probe = _probe(bastion_config(tmp_path), {DC1: CannedHost(DC1, everything), DC2: CannedHost(DC2, no_pgrep)})
    lines = fault_kinds_report(probe)
    ready = lines[0].split(": ", 2)[2].split(", ")
    assert {"partition", "heartbeat-cut", "replication-cut", "clients-cut", "dark", "job-cancel"} <= set(ready)
    assert "pe-crash-loop" not in ready
    assert lines[1:] == [f"doctor: fault pe-crash-loop: not on {DC2}: pgrep: no (not installed) -> "
                         + ADVICE["pgrep"]]
