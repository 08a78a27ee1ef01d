"""What the machine was doing while a benchmark ran, so that a slow figure from a slow
hour of a shared machine can be told from slow code.

Two measures: the time of a fixed workload (``reference_ms``: a Python loop and the
numpy steps of sampling one token, the two things riffd's model loop spends its time
on) just before and just after the run, and the share of CPU time that the hypervisor
gave to other guests during it (``steal_pct``, from ``/proc/stat``; None where there is
no ``/proc/stat``). Neither is a pass/fail figure; both ride along in each benchmark's
JSON under ``"machine"``.
"""
from __future__ import annotations

import os
import statistics
import time

REPEATS = 7  # the median of seven 2.5-4 ms runs: one preempted run does not move it


def reference_ms(repeats: int = REPEATS) -> float:
    """Median ms of a fixed workload: 20,000 Python loop steps and 200 softmax-and-sample
    steps over 512 logits (float32). 2.25-2.6 ms on this project's 2-core VM when it was
    quiet, 3.5-4.1 ms when it was not (docs/measured.md, "The machine beside each figure")."""
    import numpy as np
    logits = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        acc = 0
        for i in range(20000):
            acc += (i * 7) % 13
        for _ in range(200):
            e = np.exp(logits - logits.max())
            int(np.searchsorted(np.cumsum(e / e.sum()), 0.5))
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def cpu_times() -> tuple[int, int] | None:
    """(all jiffies, steal jiffies) summed over CPUs from ``/proc/stat``; None if unreadable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), (fields[7] if len(fields) > 7 else 0)  # user..steal; guest is inside user


class Meter:
    """Measures the machine at construction and at ``report()``."""

    def __init__(self):
        self.before_ms, self.before = reference_ms(), cpu_times()

    def report(self) -> dict:
        """``{"reference_ms_before", "reference_ms_after", "steal_pct", "cpus"}``."""
        after = cpu_times()
        steal = None
        if self.before and after and after[0] > self.before[0]:
            steal = round(100.0 * (after[1] - self.before[1]) / (after[0] - self.before[0]), 2)
        return {"reference_ms_before": self.before_ms, "reference_ms_after": reference_ms(),
                "steal_pct": steal, "cpus": os.cpu_count()}

    def finish(self, result: dict, echo) -> None:
        """Add ``report()`` to ``result`` as ``"machine"`` and echo its line."""
        result["machine"] = self.report()
        echo(describe(result["machine"]))


def describe(machine: dict) -> str:
    """One line for a benchmark's output."""
    return (f"machine: reference workload {machine['reference_ms_before']} ms before, "
            f"{machine['reference_ms_after']} ms after; "
            + ("steal unknown (no /proc/stat)" if machine["steal_pct"] is None
               else f"steal {machine['steal_pct']} % of CPU time"))
