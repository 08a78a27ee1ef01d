"""What the live benchmarks share: a `riffd serve --clock midi` subprocess on the JACK
server that is running, a player that sends a timeline into it and records its output,
and the counts read from riffd's last log line."""
from __future__ import annotations

import ast
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riffd.bridges.jackrig import Player, play_timeline, sleep_until

from .clock import PPQN as TICK

RIFFD = [sys.executable, "-c", "from riffd.daemon.cli import main; main()"]
STATS_MARK = "stopped after panic; "
FLAM_S = 0.010  # two attacks closer than this sound as one (a flam)


@dataclass
class Run:
    """One session: what riffd sent (monotonic s, message), when each timeline event
    really left (monotonic s, in timeline order), when the timeline began, the counts of
    riffd's last log line, its exit code, and its resident memory (MB) sampled every
    ``rss_every_s``."""
    messages: list
    sent: list[float]
    t0: float
    stats: dict
    returncode: int | None
    log: str
    rss_mb: list[tuple[float, float]] = field(default_factory=list)


def note_ons(messages) -> list[tuple[float, int]]:
    """(time, pitch) of every note-on with a velocity above 0."""
    return [(t, m[1]) for t, m in messages if m[0] & 0xF0 == 0x90 and len(m) > 2 and m[2] > 0]


def count_stuck(messages) -> int:
    """Note-ons left without an explicit note-off (0x80, or 0x90 at velocity 0); CC123 is
    no note-off for a DAW recording the track."""
    sounding: dict[tuple[int, int], int] = {}
    for _, m in messages:
        if len(m) < 3 or m[0] & 0xF0 not in (0x80, 0x90):
            continue
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif sounding.get(key):
            sounding[key] -= 1
    return sum(sounding.values())


def count_flams(messages, within_s: float = FLAM_S) -> int:
    """Note-ons within ``within_s`` (s) of the note-on before. A melody is one voice: two
    attacks that close are heard as one smeared attack (an old plan's note cut by its
    answer, or one note struck twice)."""
    times = np.array([t for t, _ in note_ons(messages)])
    return int(np.sum(np.diff(times) < within_s)) if len(times) > 1 else 0


def percentile(values, q: float):
    """The ``q``-th percentile rounded to 0.01, or None for no values."""
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def by_minute(pairs, q: float, minutes: float) -> list:
    """The ``q``-th percentile of the values of each whole minute, from (minute, value)
    pairs (None for a minute without values)."""
    return [percentile([v for m, v in pairs if int(m) == k], q) for k in range(max(1, int(minutes)))]


def first_on_after(on_times: np.ndarray, start: float, limit: float) -> int | None:
    """Index of the first note-on at or after ``start`` (s) and before ``limit`` (s)."""
    i = int(np.searchsorted(on_times, start))
    return i if i < len(on_times) and on_times[i] < limit else None


def sort_timeline(events) -> tuple[list[tuple[float, list[int]]], dict]:
    """Sort (time s, priority, message[, tag]) events by time, then priority; returns the
    (time, message) timeline and where each tag landed (tag -> index)."""
    events = sorted(events, key=lambda e: (e[0], e[1]))
    where = {e[3]: n for n, e in enumerate(events) if len(e) > 3}
    return [(e[0], e[2]) for e in events], where


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_session(serve_args: list[str], events: list[tuple[float, list[int]]], rss_every_s: float = 10.0,
                ready_timeout: float = 60.0) -> Run:
    """Start riffd serve (JACK, MIDI clock) with ``serve_args``, play ``events`` into it,
    stop it with SIGTERM and return the Run. Raises RuntimeError if it does not start."""
    log = tempfile.NamedTemporaryFile("w+", prefix="riffd-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([*RIFFD, "serve", "--midi-api", "jack", "--clock", "midi", *serve_args],
                            stderr=log, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + ready_timeout
        while "ready" not in Path(log.name).read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"riffd serve did not start: {Path(log.name).read_text()[-800:]}")
            time.sleep(0.05)
        player = Player()
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample():
            while not done.wait(rss_every_s):
                if (mb := rss_mb(proc.pid)) is not None:
                    samples.append((time.monotonic(), mb))

        sampler = threading.Thread(target=sample, name="riffd-bench-rss", daemon=True)
        try:
            time.sleep(0.5)
            t0 = time.monotonic() + 0.2
            sampler.start()
            sent = play_timeline(player, events, t0)
            sleep_until(t0 + events[-1][0] + 0.5)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # say where it hangs: serve dumps its stacks on SIGQUIT
                proc.send_signal(signal.SIGQUIT)
                time.sleep(1.0)
                raise RuntimeError(f"riffd serve did not exit on SIGTERM: {Path(log.name).read_text()[-6000:]}")
            time.sleep(0.2)  # the last note-offs cross JACK
            messages = player.messages()
        finally:
            done.set()
            if sampler.is_alive():
                sampler.join()
            player.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = Path(log.name).read_text(errors="replace")
    Path(log.name).unlink(missing_ok=True)
    stats = {}
    for line in text.splitlines():
        if STATS_MARK in line:
            stats = ast.literal_eval(line.split(STATS_MARK, 1)[1].strip())
    return Run(messages, sent, t0, stats, proc.returncode, text, samples)
