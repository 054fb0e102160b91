"""The CPU time a server's own processes spend, from the kernel's accounting: what a request costs
the server whatever else the machine runs, where throughput moves with everything on it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

# Each thread's on-CPU time in nanoseconds (schedstat's first field, kept by the scheduler); where
# the kernel lacks it, user + system time from stat, counted in clock ticks (10 ms here).
SCHEDSTAT = Path("/proc/self/schedstat").exists()
SOURCE = "/proc/<pid>/task/*/schedstat (ns)" if SCHEDSTAT else "/proc/<pid>/task/*/stat utime+stime (ticks)"
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass
class Snapshot:
    """On-CPU nanoseconds by (pid, thread id); and by pid, user + system time from the process's
    stat, in ticks but counting the threads that have ended too: the cross-check."""

    threads: dict[tuple[int, int], int] = field(default_factory=dict)
    processes: dict[int, int] = field(default_factory=dict)


def _stat_fields(path: Path) -> list[str]:
    # The command name, in parentheses, may hold spaces: the fields are what follows its last ")".
    return path.read_text().rsplit(")", 1)[1].split()


def _stat_ns(path: Path) -> int:
    fields = _stat_fields(path)
    return (int(fields[11]) + int(fields[12])) * _TICK_NS


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: a uvicorn supervisor's workers, and whatever they started."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat_fields(entry / "stat")[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _thread_ns(task: Path) -> int:
    if SCHEDSTAT:
        return int((task / "schedstat").read_text().split()[0])
    return _stat_ns(task / "stat")


def snapshot(pid: int) -> Snapshot:
    """The on-CPU time of every thread of `pid` and of its descendants, now."""
    taken = Snapshot()
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            taken.processes[process] = _stat_ns(Path(f"/proc/{process}/stat"))
            for task in Path(f"/proc/{process}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    taken.threads[(process, int(task.name))] = _thread_ns(task)
    return taken


def spent(before: Snapshot, after: Snapshot) -> int:
    """Nanoseconds spent between two snapshots by the threads alive at the second, new ones whole.
    A thread that ended in between takes its time with it: uncounted, never subtracted (an idle
    worker thread that anyio retires mid-round would otherwise take its whole life off the round).
    What that misses, spent_by_stat() shows."""
    return sum(ns - before.threads.get(key, 0) for key, ns in after.threads.items())


def spent_by_stat(before: Snapshot, after: Snapshot) -> int:
    """The same from the processes' stat: to the tick only, but with the threads that ended."""
    return sum(ns - before.processes.get(pid, 0) for pid, ns in after.processes.items())


def cores_busy(cpus: set[int]) -> tuple[int, int]:
    """(busy, elapsed) nanoseconds of `cpus` since boot, from /proc/stat: busy is every process's
    time, interrupts', and what the hypervisor gave to other machines (steal)."""
    busy = elapsed = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(value) for value in values[:8]]  # user nice system idle iowait irq softirq steal
            elapsed += sum(ticks) * _TICK_NS
            busy += (sum(ticks) - ticks[3] - ticks[4]) * _TICK_NS
    return busy, elapsed
