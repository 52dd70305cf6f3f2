"""Safety layers: the blast-radius allowlist, the dead-man timer on the target, the residue audit and sweep.

Everything a fault creates on a host carries the configured tag (``faults.tag``, default ``xdc-fault``):

* iptables rules: ``-m comment --comment "<tag>:<id>"`` (filter table);
* qdiscs: an htb root qdisc whose handle major is derived from the tag (:func:`qdisc_major`);
* processes (dead-man timers, delayers, stress-ng): the environment variable ``XDC_FAULT=<tag>:<id>``;
* files: ``/run/<tag>/<id>.*`` (revert script, meta data, delayer, snapshot backups),
  ``<snapshot_dir>/.<tag>-*`` (``-fill-<id>`` of disk exhaustion, ``-put-<id>-*`` while a snapshot is put back);
* cgroups: ``<DC cgroup>/<tag>-<id>``.

The dead-man timer is a detached ``sh`` on the target (own session, so it survives the SSH connection and
the tester) that sleeps the TTL and then runs ``/run/<tag>/<id>.revert``. Healing kills it first (its
process group, after checking its command line names the fault), then runs the same revert.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from support.faults.core import FaultRefused, Topology

__all__ = [
    "ENV_TAG",
    "HOST_RE",
    "Allowlist",
    "arm_script",
    "audit_script",
    "check_address",
    "delete_rules",
    "disarm_script",
    "heal_script",
    "kill_tagged",
    "list_script",
    "qdisc_major",
    "state_dir",
    "sweep_script",
]

ENV_TAG = "XDC_FAULT"

#: A host as the schema's ``$defs/host`` accepts it: a DNS name (labels of letters, digits, ``-`` and ``_``)
#: or an IPv4/IPv6 address. Host names also go into iptables-restore lines and /dev/tcp paths, where shell
#: quoting does not apply, so faults check them again (:func:`check_address`).
HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}"
                     r"[A-Za-z0-9])?)*\.?$|^[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[A-Za-z0-9_.-]+)?$")


def check_address(host: str) -> str:
    """``host`` when it is a plain host name or address (see :data:`HOST_RE`), else FaultRefused."""
    if len(host) > 253 or not HOST_RE.match(host) or "\n" in host:
        raise FaultRefused(f"refused: {host!r} is not a host name or address (letters, digits, '.', '-', '_', "
                           "or an IPv6 address)")
    return host


@dataclass(frozen=True)
class Allowlist:
    """Faults only touch the data centers, hosts and jobs declared in config; anything else is refused."""

    topology: Topology

    def check_dc(self, name: str) -> str:
        self.topology.dc(name)
        return name

    def check_pair(self, first: str, second: str) -> tuple[str, str]:
        self.check_dc(first)
        self.check_dc(second)
        if first == second:
            raise FaultRefused(f'refused: a fault between "{first}" and itself makes no sense; name two data centers')
        return first, second

    def check_host(self, host: str) -> str:
        self.topology.dc_of_host(host)
        return host

    def check_job(self, dc: str, job_name: str) -> str:
        self.check_dc(dc)
        if job_name not in self.topology.jobs:
            known = ", ".join(sorted(self.topology.jobs)) or "none"
            raise FaultRefused(f'refused: job "{job_name}" is not declared in {self.topology.source} '
                               f"(declared jobs: {known})")
        return job_name

    def check_application(self, name: str) -> str:
        if name not in self.topology.applications:
            known = ", ".join(sorted(self.topology.applications)) or "none"
            raise FaultRefused(f'refused: application "{name}" is not declared in {self.topology.source} '
                               f"(declared: {known})")
        return self.topology.applications[name]


def qdisc_major(tag: str) -> str:
    """The hex handle major of the tool's qdiscs (stable per tag, in 0x1000-0xefff)."""
    value = int(hashlib.sha256(tag.encode()).hexdigest()[:4], 16) % 0xE000 + 0x1000
    return f"{value:x}"


def state_dir(tag: str) -> str:
    return f"/run/{tag}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def delete_rules(label: str) -> str:
    """Shell deleting every filter rule whose comment starts with ``label`` (``tag:id`` or ``tag:``)."""
    pattern = shlex.quote(f'--comment "{label}')
    return (
        f"__r=$(iptables-save -t filter 2>/dev/null | grep -F -- {pattern} | sed 's/^-A /-D /')\n"
        "if [ -n \"$__r\" ]; then printf '*filter\\n%s\\nCOMMIT\\n' \"$__r\" | iptables-restore -w -n; fi\n"
    )


def kill_tagged(value: str) -> str:
    """Shell stopping every process whose environment has ``XDC_FAULT=<value>`` (TERM, then KILL after 2 s)."""
    match = f"^{ENV_TAG}={_bre(value)}$"
    return (
        f"__p=$(grep -lz -- {shlex.quote(match)} /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx \"$$\")\n"
        "if [ -n \"$__p\" ]; then\n"
        "  kill -TERM $__p 2>/dev/null\n"
        "  for __i in $(seq 100); do __left=''; for __x in $__p; do [ -d /proc/$__x ] && "
        "[ \"$(sed 's/.*) //' /proc/$__x/stat 2>/dev/null | cut -d' ' -f1)\" != Z ] && __left=\"$__left $__x\"; done\n"
        "    [ -z \"$__left\" ] && break; sleep 0.02; done\n"
        "  [ -n \"$__left\" ] && kill -KILL $__left 2>/dev/null\n"
        "fi\n"
        "true\n"
    )


def _q(text: str) -> str:
    return shlex.quote(text)


def _bre(text: str) -> str:
    """``text`` matched literally in a grep basic regular expression (a host's dots match only dots)."""
    return "".join(f"\\{char}" if char in ".[]*^$\\" else char for char in text)


def arm_script(tag: str, key: str, kind: str, ttl: float, revert: str, meta: dict[str, str] | None = None,
               directory: str | None = None) -> str:
    """Shell installing the revert script and starting the dead-man timer of fault ``key`` (``<id>@<host>``);
    prints ``DEADMAN <pgid>``."""
    directory = directory or state_dir(tag)
    body = revert + f"rm -f {_q(directory)}/{_q(key)}.*\n"
    fields = {"kind": kind, "key": key, "ttl": f"{ttl:.3f}", **(meta or {})}
    # one line per fact: a value never adds a line of its own
    meta_text = "".join(f"{name}={' '.join(str(value).splitlines())}\n" for name, value in fields.items())
    name = f"{tag}-deadman-{key}"
    revert_file = _q(f"{directory}/{key}.revert")
    return (
        f"mkdir -p {_q(directory)} && chmod 700 {_q(directory)}\n"
        f"printf %s {_b64(body)} | base64 -d > {revert_file}\n"
        f"{ENV_TAG}={_q(f'{tag}:deadman-{key}')} setsid sh -c 'sleep \"$1\"; exec bash \"$2\"' {_q(name)} "
        f"{ttl:.3f} {revert_file} </dev/null >/dev/null 2>&1 &\n"
        "__dm=$!\n"
        f"{{ printf %s {_b64(meta_text)} | base64 -d; echo \"created=$(date +%s)\"; echo \"deadman=$__dm\"; }}"
        f" > {_q(f'{directory}/{key}.meta')}\n"
        "echo \"DEADMAN $__dm\"\n"
    )


def disarm_script(tag: str, key: str, directory: str | None = None) -> str:
    """Shell killing the dead-man timer of fault ``key`` (only if its command line still names the fault)."""
    meta = _q(f"{directory or state_dir(tag)}/{key}.meta")
    name = _q(f"{tag}-deadman-{key}")
    return (
        f"if [ -f {meta} ]; then __dm=$(sed -n 's/^deadman=//p' {meta})\n"
        f"  if [ -n \"$__dm\" ] && tr '\\0' ' ' < /proc/$__dm/cmdline 2>/dev/null | grep -qF -- {name}; then\n"
        "    kill -TERM -- \"-$__dm\" 2>/dev/null; fi\n"
        "fi\n"
    )


def heal_script(tag: str, key: str, revert: str, directory: str | None = None) -> str:
    """Shell healing fault ``key`` on its host: disarm the dead-man, revert, drop the fault's files."""
    directory = directory or state_dir(tag)
    return disarm_script(tag, key, directory) + revert + f"rm -f {_q(directory)}/{_q(key)}.*\ntrue\n"


def _fill_globs(tag: str, directories: Iterable[str]) -> list[str]:
    return [f"{_q(d.rstrip('/') or '/')}/{_q(f'.{tag}-')}*" for d in directories]


def list_script(tag: str, host: str, directory: str | None = None) -> str:
    """Shell listing the faults active on ``host``: one ``FAULT <base64 of the meta file>`` line each."""
    directory = directory or state_dir(tag)
    return (
        f"for __m in {_q(directory)}/*@{_q(host)}.meta; do [ -f \"$__m\" ] || continue\n"
        "  echo \"FAULT $(base64 -w0 < \"$__m\")\"\n"
        "done\ntrue\n"
    )


def _tagged_processes(tag: str, host: str) -> str:
    """Shell printing the PIDs of processes tagged by a fault on ``host``."""
    pattern = shlex.quote(f"^{ENV_TAG}={_bre(tag)}:[^@]*@{_bre(host)}$")
    return (f"grep -lz -- {pattern} /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx \"$$\"")


def audit_script(tag: str, host: str, directories: Sequence[str], watch_pids: Sequence[int] = (),
                 directory: str | None = None) -> str:
    """Shell printing one ``RESIDUE <what>`` line per thing the tool left on ``host``."""
    directory = directory or state_dir(tag)
    major = qdisc_major(tag)
    fills = " ".join(_fill_globs(tag, directories))
    lines = [
        f"for __m in {_q(directory)}/*@{_q(host)}.*; do [ -f \"$__m\" ] && echo \"RESIDUE file $__m\"; done",
        f"iptables-save -t filter 2>/dev/null | grep -F -- {shlex.quote('--comment ' + chr(34) + tag + ':')} "
        "| sed 's/^/RESIDUE iptables /'",
        f"tc qdisc show 2>/dev/null | grep -E {shlex.quote(f'^qdisc [a-z_]+ {major}: ')} | sed 's/^/RESIDUE tc /'",
        f"for __x in $({_tagged_processes(tag, host)}); do "
        "echo \"RESIDUE process $__x $(tr '\\0' ' ' < /proc/$__x/cmdline 2>/dev/null | cut -c1-120)\"; done",
        f"find /sys/fs/cgroup -maxdepth 8 -type d -name {shlex.quote(tag + '-*')} 2>/dev/null "
        "| sed 's/^/RESIDUE cgroup /'",
    ]
    if fills:
        lines.append(f"for __f in {fills}; do [ -e \"$__f\" ] && echo \"RESIDUE file $__f\"; done")
    for pid in watch_pids:
        lines.append(f"[ \"$(sed 's/.*) //' /proc/{int(pid)}/stat 2>/dev/null | cut -d' ' -f1)\" = T ] && "
                     f"echo \"RESIDUE stopped process {int(pid)}\"")
    return "\n".join(lines) + "\ntrue\n"


def sweep_script(tag: str, host: str, directories: Sequence[str], directory: str | None = None) -> str:
    """Shell removing everything tagged on ``host`` (``faults clean``); prints ``CLEANED <what>`` lines."""
    directory = directory or state_dir(tag)
    major = qdisc_major(tag)
    fills = " ".join(_fill_globs(tag, directories))
    script = (
        # 1. every recorded fault: stop its timer, run its revert (which also resumes stopped PEs)
        f"for __m in {_q(directory)}/*@{_q(host)}.meta; do [ -f \"$__m\" ] || continue\n"
        "  __k=$(sed -n 's/^key=//p' \"$__m\"); __dm=$(sed -n 's/^deadman=//p' \"$__m\")"
        "; __kind=$(sed -n 's/^kind=//p' \"$__m\")\n"
        f"  if [ -n \"$__dm\" ] && tr '\\0' ' ' < /proc/$__dm/cmdline 2>/dev/null "
        f"| grep -qF -- {_q(tag + '-deadman-')}\"$__k\"; then kill -TERM -- \"-$__dm\" 2>/dev/null; fi\n"
        f"  [ -f {_q(directory)}/\"$__k\".revert ] && bash {_q(directory)}/\"$__k\".revert >/dev/null 2>&1\n"
        "  echo \"CLEANED fault $__k ($__kind)\"\n"
        f"  rm -f {_q(directory)}/\"$__k\".*\n"
        "done\n"
        # 2. anything tagged that a revert did not cover
        f"__n=$(iptables-save -t filter 2>/dev/null | grep -cF -- {shlex.quote('--comment ' + chr(34) + tag + ':')})\n"
        + delete_rules(f"{tag}:")
        + "[ \"${__n:-0}\" -gt 0 ] && echo \"CLEANED $__n iptables rule(s)\"\n"
        f"for __d in $(tc qdisc show 2>/dev/null | grep -E {shlex.quote(f'^qdisc [a-z_]+ {major}: dev [^ ]+ root')} "
        "| sed 's/.* dev \\([^ ]*\\) .*/\\1/'); do\n"
        "  tc qdisc del dev \"$__d\" root && echo \"CLEANED qdisc on $__d\"; done\n"
        f"__p=$({_tagged_processes(tag, host)})\n"
        "if [ -n \"$__p\" ]; then kill -TERM $__p 2>/dev/null\n"
        "  for __i in $(seq 100); do __left=''; for __x in $__p; do [ -d /proc/$__x ] && "
        "[ \"$(sed 's/.*) //' /proc/$__x/stat 2>/dev/null | cut -d' ' -f1)\" != Z ] && __left=\"$__left $__x\"; done\n"
        "    [ -z \"$__left\" ] && break; sleep 0.02; done\n"
        "  [ -n \"$__left\" ] && kill -KILL $__left 2>/dev/null\n"
        "  echo \"CLEANED $(echo $__p | wc -w) tagged process(es)\"\n"
        "fi\n"
    )
    if fills:
        script += f"for __f in {fills}; do [ -e \"$__f\" ] && rm -f \"$__f\" && echo \"CLEANED file $__f\"; done\n"
    script += (
        f"for __c in $(find /sys/fs/cgroup -maxdepth 8 -type d -name {shlex.quote(tag + '-*')} 2>/dev/null); do "
        "rmdir \"$__c\" && echo \"CLEANED cgroup $__c\"; done\n"
        f"rmdir {_q(directory)} 2>/dev/null\n"
        "true\n"
    )
    return script
