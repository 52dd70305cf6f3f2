"""Process identity from /proc: a PID is only the lab's own process while its kernel start time still matches
the one recorded when the lab started it (`state.json`). Used by `lab.control` and `lab.parts`.

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
