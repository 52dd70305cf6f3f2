"""Faults of the snapshot store: the files the toolkit keeps in a data center's snapshot directory
(``datacenters.<dc>.crossdc.snapshot_dir``, the toolkit's ``dataSnapshotStorageDirectory``: one
``<origin>-<snapshotOrigin>.snapshot`` file per replicated operator, holding the payload as received).

* ``snapshots-lost``: every ``*.snapshot`` file is moved aside, out of the directory, to a tagged backup
  ``<state dir>/<id>@<host>.bak.<name>``. Replication goes on: the next snapshot from the other data center
  is stored as usual. Effect proof: none of the files present at injection is there as it was (each name is
  absent or holds a newer file: another inode, size or time). Revert (heal and dead-man timer): a backup goes
  back only where no file of its name is there now (a newer copy always wins; ``ln`` refuses to replace one
  that arrives meanwhile), then every backup is removed. Heal proof: no tagged backup left, and each name the
  revert put back was in place when it finished.
* ``snapshots-corrupted``: each ``*.snapshot`` file is damaged in place, keeping its name and size: the last
  16 bytes of the serialised state (the blob inside the toolkit's ``HeartbeatMessageType`` payload, found from
  its length fields, which stay intact) each get one bit flipped (``xor 0x40``). That is silent media
  corruption (bit rot) where it does the most harm: the toolkit's ``deserializeTuple`` and the application's
  ``deserializeDataItem`` check nothing, so the damaged state is read without an error and restored with
  other numbers; an application keeping a map of keyed numbers, as the toolkit's sample does, ends with the
  numbers of its last entry (a state with no entries ends with its sizes: then the application's read fails,
  and an exception it does not catch ends its PE). A tagged copy of each original is kept (``.bak.<name>``)
  with the damaged file's checksum (``.dmg.<name>``). Effect proof: the inject script checks every damaged
  file differs from its copy and reports its checksum; the verification reads each file again (still damaged, or already
  replaced by a newer snapshot). Revert: a file still damaged as the fault left it gets its original back
  (atomic rename in the directory); a file replaced since is left alone; then every backup is removed.

Both refuse to run on an empty store (nothing to lose or damage).
"""

from __future__ import annotations

import shlex
from typing import Any

from support.faults.base import Fault, FaultContext, FaultError, Verified, now, poll
from support.faults.executor import Result, run_on_hosts

__all__ = ["SnapshotsCorrupted", "SnapshotsLost", "list_script"]

#: bytes damaged at the end of each stored state, and the bit flipped in each
DAMAGED_BYTES = 16
FLIP = 0x40

LIST = ("find {d} -maxdepth 1 -type f -name '*.snapshot' -printf 'SNAP %f %i %s %T@\\n' 2>/dev/null | sort\n"
        "[ -d {d} ] && [ -w {d} ] && echo WRITABLE\ntrue\n")


def list_script(directory: str) -> str:
    """Shell printing ``SNAP <name> <inode> <size> <mtime>`` per stored snapshot and ``WRITABLE``."""
    return LIST.format(d=shlex.quote(directory))


def _files(result: Result) -> dict[str, tuple[str, ...]]:
    return {f[0]: tuple(f[1:]) for f in result.lines("SNAP") if len(f) == 4}


class _StoreFault(Fault):
    requires = ("bash", "snapshot-dir")
    one_shot = True  # "dc comes back" does not bring lost or damaged snapshots back: the heal at the end does

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.topology.dc(ctx.allowlist.check_dc(dc))
        self.host = self.dc.primary_host
        if not self.dc.snapshot_dir:
            raise FaultError(f"{self.kind} needs the snapshot directory of {dc} "
                             f"(datacenters.{dc}.crossdc.snapshot_dir)")
        self.directory = self.dc.snapshot_dir.rstrip("/") or "/"
        self.before: dict[str, tuple[str, ...]] = {}
        self.injected: Result | None = None
        self.healed_result: Result | None = None

    def hosts(self) -> list[str]:
        return [self.host]

    def describe(self) -> dict[str, Any]:
        found = {"files": sorted(self.before)} if self.before else {}
        return {"dc": self.dc.name, "host": self.host, "directory": self.directory, **found}

    @property
    def backup(self) -> str:
        """Prefix of the tagged backups on the host (``<state dir>/<id>@<host>.bak.<name>``)."""
        return self.state_file(self.host, "bak.")

    def _list(self) -> dict[str, tuple[str, ...]]:
        result = self.ctx.executors.get(self.host).check(list_script(self.directory),
                                                         what=f"list the snapshots in {self.directory}")
        return _files(result)

    def prepare(self) -> None:
        self.before = self._list()
        if not self.before:
            raise FaultError(f"no stored snapshot in {self.directory} on {self.host} ({self.dc.name}): nothing to "
                             f"{'lose' if self.kind == 'snapshots-lost' else 'corrupt'}")
        super().prepare()

    def inject(self) -> None:
        results = run_on_hosts(self.ctx.executors, self.armed_scripts(), what=f"inject {self.kind}")
        self.injected = results.get(self.host)

    def heal(self) -> None:
        results = run_on_hosts(self.ctx.executors, self.heal_scripts(), what=f"heal {self.kind}")
        self.healed_result = results.get(self.host)

    def _head(self) -> str:
        return f"__d={shlex.quote(self.directory)}\n__b={shlex.quote(self.backup)}\n"

    def verify_healed(self, timeout: float) -> Verified:
        if not self.prepared:
            return Verified(now(), 0, "nothing injected")
        restored = [f[0] for f in self.healed_result.lines("RESTORED")] if self.healed_result else []
        kept = [f[0] for f in self.healed_result.lines("SUPERSEDED")] if self.healed_result else []

        def check() -> tuple[bool, str]:
            result = self.ctx.executors.get(self.host).run(
                f"for __f in {shlex.quote(self.backup)}*; do [ -e \"$__f\" ] && echo \"LEFT $__f\"; done; true")
            left = result.lines("LEFT")
            return not left, (f"{len(left)} tagged backup(s) left" if left else
                              f"no tagged backup left; put back: {', '.join(restored) or 'none'}; replaced by newer "
                              f"copies: {', '.join(kept) or 'none'}")

        return poll(check, timeout, f"the snapshot store of {self.dc.name} restored", interval=0.05)

    def verify_scripts(self) -> dict[str, str]:
        return {self.host: list_script(self.directory)}


class SnapshotsLost(_StoreFault):
    kind = "snapshots-lost"

    def inject_scripts(self) -> dict[str, str]:
        return {self.host: self._head() + (
            "__n=0\n"
            "for __f in \"$__d\"/*.snapshot; do [ -f \"$__f\" ] || continue; __x=${__f##*/}\n"
            "  __s=$(stat -c '%i %s' \"$__f\")\n"
            "  mv -f \"$__f\" \"$__b$__x\" || exit 4\n"
            "  echo \"MOVED $__x $__s\"; __n=$((__n + 1))\n"
            "done\n"
            "[ \"$__n\" -gt 0 ] || { echo 'no stored snapshot to lose' >&2; exit 3; }\n")}

    def revert_scripts(self) -> dict[str, str]:
        tmp = f".{self.ctx.settings.tag}-put-{self.id}"
        return {self.host: self._head() + (
            f"for __f in \"$__b\"*; do [ -f \"$__f\" ] || continue; __x=${{__f#\"$__b\"}}\n"
            f"  __t=\"$__d/{tmp}-$__x\"\n"
            "  if [ ! -e \"$__d/$__x\" ] && cp -p \"$__f\" \"$__t\" && ln \"$__t\" \"$__d/$__x\" 2>/dev/null; then\n"
            "    echo \"RESTORED $__x\"\n"
            "  else echo \"SUPERSEDED $__x\"; fi\n"
            "  rm -f \"$__t\" \"$__f\"\n"
            "done\n")}

    def verify(self, timeout: float) -> Verified:
        moved = {f[0]: tuple(f[1:]) for f in (self.injected.lines("MOVED") if self.injected else [])}
        if not moved:
            raise FaultError(f"{self.kind}: the inject command reported no file moved from {self.directory}")

        def check() -> tuple[bool, str]:
            now_files = self._list()
            still = [n for n, sig in moved.items() if n in now_files and now_files[n][:2] == sig]
            newer = [n for n in moved if n in now_files and n not in still]
            return not still, (f"{len(moved)} stored snapshot(s) lost from {self.directory} "
                               f"({', '.join(sorted(moved))})" + (f"; newer copies arrived since: {', '.join(newer)}"
                                                                  if newer else "")
                               if not still else f"still there as they were: {', '.join(still)}")

        return poll(check, timeout, f"the stored snapshots of {self.dc.name} lost", interval=0.05)


#: bash: damage the last DAMAGED_BYTES bytes of the blob of payload "$__f" (fields: type uint32, cnt uint64,
#: origin rstring, blob uint64 length + bytes, snapshotOrigin rstring; little-endian, rstring length one byte
#: below 128, else 0x80 and a uint32)
DAMAGE = r"""xdc_damage() {
  __l=$(od -An -tu1 -j12 -N1 "$1" | tr -d ' ')
  if [ -z "$__l" ]; then return 5; fi
  if [ "$__l" -lt 128 ]; then __p=$((13 + __l))
  elif [ "$__l" -eq 128 ]; then __p=$((17 + $(od -An -tu4 -j13 -N4 "$1" | tr -d ' ')))
  else return 5; fi
  __n=$(od -An -tu8 -j"$__p" -N8 "$1" | tr -d ' ')
  [ -n "$__n" ] && [ "$__n" -gt 0 ] || return 5
  __e=$((__p + 8 + __n)); __k=$(( __n < {bytes} ? __n : {bytes} )); __s=$((__e - __k))
  [ "$__e" -le "$(stat -c %s "$1")" ] || return 5
  __o=''
  for __v in $(od -An -tu1 -j"$__s" -N"$__k" "$1"); do printf -v __c '\\%03o' $(( __v ^ {flip} )); __o="$__o$__c"; done
  printf "$__o" | dd of="$1" bs=1 seek="$__s" conv=notrunc status=none || return 6
  echo "$__s $__k"
}
"""


class SnapshotsCorrupted(_StoreFault):
    kind = "snapshots-corrupted"

    def inject_scripts(self) -> dict[str, str]:
        return {self.host: self._head() + DAMAGE.replace("{bytes}", str(DAMAGED_BYTES)).replace(
            "{flip}", str(FLIP)) + (
            "__n=0\n"
            "for __f in \"$__d\"/*.snapshot; do [ -f \"$__f\" ] || continue; __x=${__f##*/}\n"
            "  cp -p \"$__f\" \"$__b$__x\" || exit 4\n"
            "  __at=$(xdc_damage \"$__f\") || { echo \"cannot read the toolkit payload in $__f\" >&2; exit 5; }\n"
            "  __before=$(sha256sum < \"$__b$__x\" | cut -c1-64); __after=$(sha256sum < \"$__f\" | cut -c1-64)\n"
            "  [ \"$__before\" != \"$__after\" ] || { echo \"$__f unchanged\" >&2; exit 6; }\n"
            f"  echo \"$__after\" > {shlex.quote(self.state_file(self.host, 'dmg.'))}\"$__x\"\n"
            "  echo \"DAMAGED $__x $__after $__at $(stat -c %s \"$__f\")\"; __n=$((__n + 1))\n"
            "done\n"
            "[ \"$__n\" -gt 0 ] || { echo 'no stored snapshot to corrupt' >&2; exit 3; }\n")}

    def revert_scripts(self) -> dict[str, str]:
        dmg = shlex.quote(self.state_file(self.host, "dmg."))
        tmp = f".{self.ctx.settings.tag}-put-{self.id}"
        return {self.host: self._head() + (
            f"for __f in \"$__b\"*; do [ -f \"$__f\" ] || continue; __x=${{__f#\"$__b\"}}\n"
            f"  __want=$(cat {dmg}\"$__x\" 2>/dev/null); __t=\"$__d/{tmp}-$__x\"\n"
            "  __now=$(sha256sum < \"$__d/$__x\" 2>/dev/null | cut -c1-64)\n"
            "  if [ -n \"$__want\" ] && [ \"$__now\" = \"$__want\" ] && cp -p \"$__f\" \"$__t\" && "
            "mv -f \"$__t\" \"$__d/$__x\"; then echo \"RESTORED $__x\"\n"
            "  else echo \"SUPERSEDED $__x\"; fi\n"
            f"  rm -f \"$__t\" \"$__f\" {dmg}\"$__x\"\n"
            "done\n")}

    def verify(self, timeout: float) -> Verified:
        damaged = {f[0]: f[1] for f in (self.injected.lines("DAMAGED") if self.injected else []) if len(f) >= 2}
        if not damaged:
            raise FaultError(f"{self.kind}: the inject command reported no file damaged in {self.directory}")
        names = " ".join(shlex.quote(n) for n in sorted(damaged))

        def check() -> tuple[bool, str]:
            result = self.ctx.executors.get(self.host).run(
                f"cd {shlex.quote(self.directory)} && for __x in {names}; do "
                "echo \"SUM $__x $(sha256sum < \"$__x\" 2>/dev/null | cut -c1-64)\"; done; true")
            sums = {f[0]: (f[1] if len(f) > 1 else "") for f in result.lines("SUM")}
            if set(sums) != set(damaged):
                return False, f"could not read the checksums in {self.directory}"
            still = [n for n, s in sums.items() if s == damaged[n]]
            newer = [n for n in sums if n not in still]
            return True, (f"{len(damaged)} stored snapshot(s) damaged in place in {self.directory}, "
                          f"{DAMAGED_BYTES} bytes of state each; still damaged: {', '.join(still) or 'none'}"
                          + (f"; replaced by newer copies since: {', '.join(newer)}" if newer else ""))

        return poll(check, timeout, f"the stored snapshots of {self.dc.name} corrupted", interval=0.05)
