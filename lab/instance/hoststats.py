"""Resource metrics of the DC host (reference §4.1 resource/host) and of PE processes, from /proc and /sys of
the DC's netns.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path


def proc_stats(pid: int | None) -> tuple[int, int, int]:
    """(cpu ms, resident KB, virtual KB) of a live process."""
    if pid is None:
        return 0, 0, 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_ms = (int(fields[11]) + int(fields[12])) * 1000 // ticks
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        return cpu_ms, int(statm[1]) * page_kb, int(statm[0]) * page_kb
    except (OSError, ValueError, IndexError):
        return 0, 0, 0


class HostStats:
    """Resource metrics of the DC host (reference §4.1 resource/host), from /proc and /sys of its netns."""

    def __init__(self, iface: str) -> None:
        self.iface = iface
        self.lock = threading.Lock()
        self.last_cpu: tuple[float, int, int] | None = None  # (monotonic, busy, total)
        self.last_net: tuple[float, int] | None = None
        self.cpu_util = 0
        self.net_util = 0

    @staticmethod
    def _cpu_times() -> tuple[int, int]:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals) - idle, sum(vals)

    def _net_bytes(self) -> int:
        for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
            name, _, rest = line.partition(":")
            if name.strip() == self.iface:
                f = rest.split()
                return int(f[0]) + int(f[8])
        return 0

    def capacity_kbps(self) -> int:
        try:
            speed = int(Path(f"/sys/class/net/{self.iface}/speed").read_text().strip())
        except (OSError, ValueError):
            speed = -1
        return speed * 1000 if speed > 0 else 10_000_000  # veths report no speed: 10 Gbit/s

    def metrics(self) -> list[tuple[str, int, str]]:
        now = time.monotonic()
        with self.lock:
            try:
                busy, total = self._cpu_times()
                if self.last_cpu is not None and total > self.last_cpu[2]:
                    self.cpu_util = round(100 * (busy - self.last_cpu[1]) / (total - self.last_cpu[2]))
                self.last_cpu = (now, busy, total)
                nbytes = self._net_bytes()
                if self.last_net is not None and now > self.last_net[0]:
                    kbps = (nbytes - self.last_net[1]) * 8 / 1000 / (now - self.last_net[0])
                    self.net_util = round(100 * kbps / self.capacity_kbps())
                self.last_net = (now, nbytes)
            except (OSError, ValueError, IndexError):
                pass
            cpu_util, net_util = self.cpu_util, self.net_util
        mem: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                k, _, v = line.partition(":")
                mem[k] = int(v.split()[0])
        mhz = 0
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("cpu MHz"):
                    mhz = round(float(line.split(":")[1]))
                    break
        load = 0
        with contextlib.suppress(OSError, ValueError):
            load = round(float(Path("/proc/loadavg").read_text().split()[0]) * 100)
        cap = mem.get("MemTotal", 0)
        used = cap - mem.get("MemAvailable", cap)
        return [
            ("nProcessors", os.cpu_count() or 1, "gauge"),
            ("cpuSpeed", mhz, "gauge"),
            ("loadAverage", load, "gauge"),
            ("cpuUtilization", cpu_util, "gauge"),
            ("memoryCapacity", cap, "gauge"),
            ("memoryUtilization", round(100 * used / cap) if cap else 0, "gauge"),
            ("appNetworkCapacity", self.capacity_kbps(), "gauge"),
            ("appNetworkUtilization", net_util, "gauge"),
        ]
