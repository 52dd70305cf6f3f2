"""Network namespaces and veths of the lab (root only). Everything created is named xdc-*.

Topology::

    root ns  xdc-root 198.18.0.1/24 ── xdc-w0 198.18.0.2/24   netns xdc-wan (router)
                                       xdc-w1 198.18.1.1/24 ── xdc-d1 198.18.1.10/24  netns xdc-dc1
                                       xdc-w2 198.18.2.1/24 ── xdc-d2 198.18.2.10/24  netns xdc-dc2
                                       xdc-w3 198.18.3.1/24 ── xdc-b3 198.18.3.10/24  netns xdc-bastion

The guard route is installed first (unreachable), then replaced by the route via the wan router once the
root veth exists, so no lab packet can ever take the default route.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import bastion, paths

NAMESPACES: tuple[str, ...] = (paths.NETNS_WAN, paths.netns("dc1"), paths.netns("dc2"), bastion.NETNS)


class NetError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _in_ns(ns: str, *args: str) -> None:
    _ip("-n", ns, *args)


def guard() -> None:
    """Leave the lab range unreachable (what `lab down` leaves, and the first step of `lab up`)."""
    _ip("route", "replace", "unreachable", paths.LAB_NET)


def route_via_wan() -> None:
    _ip("route", "replace", paths.LAB_NET, "via", paths.WAN_ROOT_ADDR)


def ns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def existing() -> list[str]:
    found = [ns for ns in NAMESPACES if ns_exists(ns)]
    if link_exists(paths.ROOT_VETH):
        found.append(paths.ROOT_VETH)
    return found


def _disable_ipv6(ns: str | None, dev: str) -> None:
    cmd = ["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    subprocess.run(cmd, capture_output=True, check=False)


def setup() -> None:
    guard()
    wan = paths.NETNS_WAN
    for ns in NAMESPACES:
        _ip("netns", "add", ns)
        _in_ns(ns, "link", "set", "lo", "up")
    # root <-> wan
    _ip("link", "add", paths.ROOT_VETH, "type", "veth", "peer", "name", "xdc-w0", "netns", wan)
    _disable_ipv6(None, paths.ROOT_VETH)
    _ip("addr", "add", f"{paths.ROOT_ADDR}/24", "dev", paths.ROOT_VETH)
    _ip("link", "set", paths.ROOT_VETH, "up")
    _in_ns(wan, "addr", "add", f"{paths.WAN_ROOT_ADDR}/24", "dev", "xdc-w0")
    _in_ns(wan, "link", "set", "xdc-w0", "up")
    # wan <-> dcN
    for n, dc in ((1, "dc1"), (2, "dc2")):
        ns = paths.netns(dc)
        w, d = f"xdc-w{n}", f"xdc-d{n}"
        _in_ns(wan, "link", "add", w, "type", "veth", "peer", "name", d, "netns", ns)
        _in_ns(wan, "addr", "add", f"198.18.{n}.1/24", "dev", w)
        _in_ns(wan, "link", "set", w, "up")
        _in_ns(ns, "addr", "add", f"{paths.DC_ADDR[dc]}/24", "dev", d)
        _in_ns(ns, "link", "set", d, "up")
        _in_ns(ns, "route", "add", "default", "via", f"198.18.{n}.1")
    bastion.setup_network()
    fwd = subprocess.run(
        ["ip", "netns", "exec", wan, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    if fwd.returncode != 0:
        raise NetError(f"ip_forward in {wan}: {fwd.stderr.strip()}")
    route_via_wan()


def teardown() -> None:
    for ns in NAMESPACES:
        if ns_exists(ns):
            _ip("netns", "del", ns, check=False)
    if link_exists(paths.ROOT_VETH):
        _ip("link", "del", paths.ROOT_VETH, check=False)
    guard()


def pids_in_namespaces() -> set[int]:
    pids: set[int] = set()
    for ns in NAMESPACES:
        if ns_exists(ns):
            out = _ip("netns", "pids", ns, check=False).stdout
            pids.update(int(p) for p in out.split() if p.isdigit())
    return pids


def route_get(addr: str) -> str:
    proc = _ip("route", "get", addr, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""
