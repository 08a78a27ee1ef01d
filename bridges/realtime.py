"""Realtime scheduling for the threads a reaction passes through (Linux SCHED_FIFO).

On a 2-core machine busy with JACK, a DAW and riffd's own model calls, a ready thread
can wait several milliseconds for a core: probed in `riffd bench latency` (onnx, 160
BPM), the sending thread took the reaction note up to 6.6 ms after the engine queued
it. A SCHED_FIFO thread runs as soon as it is ready, ahead of every normal one, as
JACK's own process threads do; riffd asks for the lowest priorities, below every JACK
thread (jackd runs at 10 by default and its clients' process threads at 5), so it
never delays audio. A user may lack the right (the `rtprio` limit
that the `audio` group grants in /etc/security/limits.d); riffd then runs as before.
"""
from __future__ import annotations

import os

# riffd serve's engine thread (its readers and sender get one more): above every normal
# thread, below JACK's (its clients' process threads run at jackd's priority minus 5;
# at the same FIFO priority a 15 ms model call would hold one off its core)
PRIORITY = 1


def make_realtime(priority: int) -> bool:
    """Give the calling thread SCHED_FIFO at ``priority`` (1-99; 0 or less: leave it).
    Threads and processes it starts later begin as normal ones (SCHED_RESET_ON_FORK).
    Returns True if granted; False where the system or the user's limits refuse
    (never raises)."""
    if priority <= 0 or not hasattr(os, "SCHED_FIFO"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0), os.sched_param(priority))
    except (OSError, ValueError):
        return False
    return True


def normal_scheduling() -> None:
    """Put the calling thread back to normal scheduling (SCHED_OTHER); never raises."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError, ValueError):
        pass
