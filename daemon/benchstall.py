"""Stalls of the machine itself while a live benchmark runs, measured by cyclictest.

cyclictest (Debian's ``rt-tests``) is the standard measure of scheduling latency: one
SCHED_FIFO thread per CPU, above every JACK and riffd thread, wakes every millisecond
on an absolute timer and records how late it woke. A thread that high is held up only
by the machine (the hypervisor, an interrupt storm), never by riffd's model or the GIL,
so a late reaction in a minute where cyclictest also woke late was the machine's. Each
wake later than ``trigger_ms`` is kept with its CLOCK_MONOTONIC time (``--spike``), the
clock that ``time.monotonic`` reads on Linux, so the benchmark can bin them by minute.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile

PRIORITY = 90  # SCHED_FIFO: above jackd (10) and its clients, riffd (1); below the kernel's 99
SPIKE = re.compile(r"T:\s*(\d+)\s+Spike:\s+(\d+):\s+TS:\s+(\d+)")
MISSING = "cyclictest not installed (apt-get install rt-tests; `make test` and `make bench` do)"
MAX_SPIKES = 50000  # per thread; at most one a millisecond: 14 minutes of a machine that never keeps up


def parse_spikes(text: str) -> list[tuple[float, float, int]]:
    """(monotonic s, lateness ms, CPU) of every ``T: n Spike: us: TS: us`` line of
    cyclictest's output, in time order."""
    return sorted((int(ts) / 1e6, int(us) / 1000.0, int(cpu)) for cpu, us, ts in SPIKE.findall(text))


class StallWatch:
    """cyclictest for the length of a ``with`` block. ``available`` is False where
    cyclictest is missing or cannot run (no root or rtprio: it exits at once), and
    then every figure is None. ``trigger_ms``: the smallest lateness kept."""

    def __init__(self, trigger_ms: float = 1.0):
        self.trigger_ms = trigger_ms
        self.spikes: list[tuple[float, float, int]] = []
        self.available = shutil.which("cyclictest") is not None
        self._proc = None

    def __enter__(self) -> "StallWatch":
        if self.available:
            self._out = tempfile.TemporaryFile("w+")
            # -S: a thread per CPU, pinned; -d 0: all wake each ms; --default-system: leave
            # the machine's power settings as they are, so the benchmark measures it as it is
            self._proc = subprocess.Popen(
                ["cyclictest", "-q", "-m", "-S", "-d", "0", "-i", "1000", "-p", str(PRIORITY), "--default-system",
                 f"--spike={int(self.trigger_ms * 1000)}", f"--spike-nodes={MAX_SPIKES}"],
                stdout=self._out, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # it prints its summary and spikes on SIGINT
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._out.seek(0)
        text = self._out.read()
        self._out.close()
        if self._proc.returncode not in (0, -signal.SIGINT) and "T:" not in text:
            self.available = False  # it could not run (no realtime rights): say so, not "no stalls"
            return
        self.spikes = parse_spikes(text)

    def max_ms(self) -> float | None:
        """The longest stall (ms; 0.0 for none over the trigger), None if unmeasured."""
        if not self.available:
            return None
        return round(max((ms for _, ms, _ in self.spikes), default=0.0), 2)

    def overlapping(self, start: float, end: float) -> float | None:
        """The longest stall (ms) that overlaps monotonic ``start``..``end`` (s): a spike
        reported at its wake ``t`` stalled from ``t - ms``. 0.0 for none, None if unmeasured."""
        if not self.available:
            return None
        return round(max((ms for t, ms, _ in self.spikes if t - ms / 1000.0 <= end and t >= start), default=0.0), 2)

    def by_minute(self, t0: float, minutes: float) -> list[float] | None:
        """The longest stall of each whole minute after monotonic time ``t0`` (ms; 0.0
        for none over the trigger), None if unmeasured."""
        if not self.available:
            return None
        out = [0.0] * max(1, int(minutes))
        for t, ms, _ in self.spikes:
            k = int((t - t0) // 60)
            if 0 <= k < len(out):
                out[k] = max(out[k], round(ms, 2))
        return out
