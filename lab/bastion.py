"""Real-host SSH in the lab: a non-root fault user with sudo on the DC hosts, and a bastion (jump host).

- **Fault user** `xdcfault` (made by `lab up` with `useradd --system`, removed by `lab down`): logs in to the
  DC hosts' sshd with its own key (`/run/xdc-lab/ssh/fault_key`, listed in
  `/run/xdc-lab/ssh-authorized/authorized_keys.xdcfault`) and has passwordless sudo for `/usr/bin/timeout`
  only (`/etc/sudoers.d/xdc-lab-fault`): exactly the form the fault executor uses
  (`sudo -n timeout -k 1 T bash -c <script>`). That grant is root-equivalent (timeout runs any command): it
  proves the command form, it is not a security boundary — on a real host the fault user needs root rights
  for iptables, tc, kill and cgroups anyway.
- **Bastion**: namespace `xdc-bastion` (198.18.3.10, behind the wan router) with its own sshd: only user
  `xdcfault`, no shell (`ForceCommand /bin/false`), TCP forwarding only to the DC hosts' port 22
  (`PermitOpen`). Its host key is in the lab's `known_hosts` next to the DC hosts'.
- **Bastion mode** (`lab up --bastion`; `lab up` without it switches back): iptables rules in each DC
  namespace (comment `xdc-lab-bastion`) refuse port 22 to everyone but the bastion, so the controller can
  reach the DC hosts' sshd only through the bastion. Switching needs no rebuild; `lab status` shows the mode.

Standard library only at import time (paramiko is imported lazily by the checks).
"""

from __future__ import annotations

import contextlib
import json
import pwd
import subprocess
from pathlib import Path

from lab import paths

NETNS = "xdc-bastion"
ADDR = "198.18.3.10"
WAN_ADDR = "198.18.3.1"
WAN_VETH = "xdc-w3"
VETH = "xdc-b3"
SSH_PORT = 22

FAULT_USER = "xdcfault"
FAULT_USER_COMMENT = "xdc-lab fault user (lab up; removed by lab down)"
SUDOERS = Path("/etc/sudoers.d/xdc-lab-fault")
SUDOERS_TEXT = (
    "# written by `lab up` of the streams-failover-tester embedded lab; removed by `lab down`\n"
    f"{FAULT_USER} ALL=(root) NOPASSWD: /usr/bin/timeout\n"
)
RULE_COMMENT = "xdc-lab-bastion"


class BastionError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise BastionError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


# ------------------------------------------------------------------------------------------------ paths


def ssh_dir() -> Path:
    return paths.LAB_DIR / "ssh"


def fault_key() -> Path:
    return ssh_dir() / "fault_key"


def host_key() -> Path:
    return ssh_dir() / "bastion" / "ssh_host_ed25519_key"


def config_file() -> Path:
    return ssh_dir() / "bastion" / "sshd_config"


# -------------------------------------------------------------------------------------------- fault user


def _lab_user() -> pwd.struct_passwd | None:
    """The fault user when it exists and is the lab's (its comment says so), else None."""
    try:
        entry = pwd.getpwnam(FAULT_USER)
    except KeyError:
        return None
    return entry if entry.pw_gecos == FAULT_USER_COMMENT else None


def create_fault_user() -> None:
    """The fault user (no home, bash, not locked: sshd refuses a locked account) and its sudoers file."""
    try:
        pwd.getpwnam(FAULT_USER)
    except KeyError:
        _run("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/bash",
             "--comment", FAULT_USER_COMMENT, FAULT_USER)
    if _lab_user() is None:
        raise BastionError(f"user {FAULT_USER} exists and is not the lab's (comment is not {FAULT_USER_COMMENT!r})")
    _run("usermod", "-p", "*", FAULT_USER)  # no password, but not locked
    tmp = SUDOERS.with_name(".xdc-lab-fault.tmp")  # sudo ignores names with a dot
    tmp.write_text(SUDOERS_TEXT)
    tmp.chmod(0o440)
    _run("visudo", "-cqf", str(tmp))
    tmp.replace(SUDOERS)


def remove_fault_user() -> list[str]:
    """Remove the sudoers file and the fault user (only the lab's); what could not be removed."""
    left: list[str] = []
    for f in (SUDOERS, SUDOERS.with_name(".xdc-lab-fault.tmp")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    if _lab_user() is not None:
        proc = _run("userdel", FAULT_USER, check=False)
        if proc.returncode != 0:
            left.append(f"user {FAULT_USER}: {proc.stderr.strip()}")
    return left


# ----------------------------------------------------------------------------------------------- network


def setup_network() -> None:
    """Link the bastion namespace to the wan router (`netns.setup` creates both namespaces first)."""
    _run("ip", "-n", paths.NETNS_WAN, "link", "add", WAN_VETH, "type", "veth", "peer", "name", VETH, "netns", NETNS)
    _run("ip", "-n", paths.NETNS_WAN, "addr", "add", f"{WAN_ADDR}/24", "dev", WAN_VETH)
    _run("ip", "-n", paths.NETNS_WAN, "link", "set", WAN_VETH, "up")
    _run("ip", "-n", NETNS, "addr", "add", f"{ADDR}/24", "dev", VETH)
    _run("ip", "-n", NETNS, "link", "set", VETH, "up")
    _run("ip", "-n", NETNS, "route", "add", "default", "via", WAN_ADDR)


# ------------------------------------------------------------------------------------------------- sshd


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))
    path.chmod(0o600)


def make_keys() -> str:
    """The fault user's client key and the bastion's host key; returns the bastion's known_hosts line."""
    (ssh_dir() / "bastion").mkdir(mode=0o700, parents=True, exist_ok=True)
    _keygen(fault_key(), "xdc-lab-fault")
    _keygen(host_key(), "xdc-lab-bastion")
    kind, blob = host_key().with_suffix(".pub").read_text().split()[:2]
    return f"{ADDR} {kind} {blob}\n"


def write_config() -> Path:
    permit = " ".join(f"{addr}:{SSH_PORT}" for addr in paths.DC_ADDR.values())
    cfg = f"""# sshd of the embedded lab's bastion (generated by `lab up`)
ListenAddress {ADDR}:{SSH_PORT}
AddressFamily inet
HostKey {host_key()}
PidFile none
AuthorizedKeysFile {paths.LAB_DIR}/ssh-authorized/authorized_keys.%u
AllowUsers {FAULT_USER}
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding local
PermitOpen {permit}
AllowAgentForwarding no
PermitTunnel no
PermitTTY no
ForceCommand /bin/false
LoginGraceTime 10
MaxStartups 64:30:128
MaxSessions 64
ClientAliveInterval 15
LogLevel INFO
"""
    f = config_file()
    f.write_text(cfg)
    return f


def argv() -> list[str]:
    return ["nsenter", f"--net=/run/netns/{NETNS}", "/usr/sbin/sshd", "-D", "-e", "-f", str(config_file())]


def jump_ok(timeout: float = 3.0) -> str | None:
    """Log in to the bastion as the fault user (RejectPolicy, lab known_hosts) and read the SSH banner of each DC
    host's sshd through a forwarded channel. None on success, else a one-line reason."""
    import paramiko  # lazy: only `lab up`/`lab status` need it

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.load_host_keys(str(ssh_dir() / "known_hosts"))
        client.connect(ADDR, port=SSH_PORT, username=FAULT_USER, key_filename=str(fault_key()), look_for_keys=False,
                       allow_agent=False, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
        transport = client.get_transport()
        if transport is None:
            return "no transport"
        for dc, addr in paths.DC_ADDR.items():
            channel = transport.open_channel("direct-tcpip", (addr, SSH_PORT), ("127.0.0.1", 0), timeout=timeout)
            try:
                channel.settimeout(timeout)
                banner = channel.recv(64)
            finally:
                channel.close()
            if not banner.startswith(b"SSH-"):
                return f"{dc} sshd through the bastion answered {banner[:20]!r}"
        return None
    except (OSError, paramiko.SSHException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------- mode


def _iptables(dc: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", paths.netns(dc), "iptables", "-w", *args, check=check)


def _rule(dc: str) -> list[str]:
    return ["INPUT", "-p", "tcp", "-d", paths.DC_ADDR[dc], "--dport", str(SSH_PORT), "!", "-s", ADDR,
            "-m", "comment", "--comment", RULE_COMMENT, "-j", "REJECT", "--reject-with", "tcp-reset"]


def mode_rules() -> dict[str, bool]:
    """dc -> whether its bastion-mode rule is in place."""
    return {dc: _iptables(dc, "-C", *_rule(dc), check=False).returncode == 0 for dc in paths.DCS}


def set_mode(on: bool) -> None:
    """Bastion mode on: each DC host's port 22 refuses everyone but the bastion (appended to INPUT, so fault
    rules, which are inserted at the top, keep their order); off: the rules removed."""
    for dc in paths.DCS:
        present = _iptables(dc, "-C", *_rule(dc), check=False).returncode == 0
        if on and not present:
            _iptables(dc, "-A", *_rule(dc))
        while not on and _iptables(dc, "-D", *_rule(dc), check=False).returncode == 0:
            pass


def mode_on() -> bool:
    """What `lab up` recorded (state.json ``bastion``)."""
    try:
        return bool(json.loads(paths.state_file().read_text()).get("bastion"))
    except (OSError, ValueError):
        return False
