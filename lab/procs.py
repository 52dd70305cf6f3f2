"""Process identity from /proc: a PID is only the lab's own process while its kernel start time still matches
the one recorded when the lab started it (`state.json`); the process tree (children, descendants, command lines).
Used by `lab.control` and `lab.parts`.

Standard library only.
"""

from __future__ import annotations

from pathlib import Path


def proc_starttime(pid: int) -> int | None:
    """The kernel start time of a live process (field 22 of /proc/PID/stat), None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    if rest[0] == "Z":
        return None
    return int(rest[19])


def alive(pid: int) -> bool:
    return proc_starttime(pid) is not None


def children_tree() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def with_descendants(roots: list[int], children: dict[int, list[int]]) -> list[int]:
    """``roots`` and every process below them, parents first."""
    found: list[int] = []
    todo = list(reversed(roots))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(reversed(children.get(pid, [])))
    return found


def argv_of(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
