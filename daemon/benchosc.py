"""`riffd bench osc`: riffd serve over OSC on loopback, measured from the sender's side.

For each model, one `riffd serve --midi-api none --osc-port ...` plays a session: the
chords of real tunes (the latency benchmark's folk tunes with chord symbols) sent as
``/riffd/chord`` datagrams, one on every beat at ``tempo``. Reaction is the time from
sending a chord's datagram to the first ``/riffd/note`` that arrives after it (before the
next chord); notes planned on a beat wait for the beat's strike, so the first note after
a strike is its answer. Then, with onnx, ``/riffd/generate 16`` over the first 16 chord
names of the demo chorale (one a bar) is timed from sending to ``/riffd/done``, next to
`riffd bench generate`'s in-process time of the same phrase (same chords, preset and
seed), one run after each round trip.
"""
from __future__ import annotations

import json
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from riffd.bridges.jackrig import sleep_until
from riffd.bridges.osc import build
from riffd.models.protocol import ChordAt
from riffd.music.chords import recognize
from riffd.presets import load_preset

from .benchmachine import Meter
from .benchstall import MISSING, StallWatch
from .phrases import progression as phrase_chords
from .liverig import percentile
from .oscrig import cpu_seconds, serve_osc

WARMUP = 8  # chords sent before measuring: imports, first model calls
SEED = 1    # serve's seed: every /riffd/generate of the run renders the same phrase


def chord_stream(count: int) -> list[tuple[int, ...]]:
    """``count`` chords (MIDI pitches) of real tunes, each a change as riffd's capture
    names it: a dyad or cluster that keeps the previous chord (a second, say) is no
    change, and riffd rightly answers it on the grid, not at once."""
    from .benchlive import session_chords
    from .capture import ChordCapture, ChordChange
    out: list[tuple[int, ...]] = []
    beats = 256.0
    while len(out) < count:
        out, capture, held, t = [], ChordCapture(), (), 0.0
        for _, _, pitches, _ in session_chords(beats):
            if recognize(pitches) is None:
                continue
            t += 1.0
            for p in held:
                capture.note_off(p)
            for p in pitches:
                capture.note_on(p, t)
            if isinstance(capture.close(), ChordChange):
                out.append(tuple(pitches))
                held = pitches
            else:  # not sent: take the keys back, the previous chord sounds on
                for p in pitches:
                    capture.note_off(p)
                for p in held:
                    capture.note_on(p, t)
                capture.close()
        beats *= 2
    return out[:count]


def reactions(model: str, chords, tempo: float, preset: str, warm_ms: float = 10.0) -> tuple:
    """Milliseconds from each chord's datagram leaving to riffd's first note after it
    arriving (Inbox: the kernel's time, where it has one); the same, to when the
    benchmark's thread read it; how many chords got no note before the next one; and
    serve's CPU use over the session (% of one core; None without /proc); and the
    finished StallWatch (the machine's stalls). ``warm_ms``: serve's --warm-ms.
    Datagrams are built before they are timed."""
    spb = 60.0 / tempo
    with tempfile.TemporaryDirectory() as tmp, \
            serve_osc(Path(tmp) / "serve.log", "--model", model, "--preset", preset, "--tempo", str(tempo),
                      "--seed", "1", "--warm-ms", str(warm_ms)) as (_, inbox, port, proc), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, StallWatch() as stalls:
        datagrams, sent = [build("/riffd/chord", list(pitches)) for pitches in chords], []
        t0 = time.monotonic() + 0.3
        sleep_until(t0)
        cpu0 = cpu_seconds(proc.pid)
        for k, datagram in enumerate(datagrams):
            sleep_until(t0 + k * spb)
            sent.append(time.monotonic())
            sock.sendto(datagram, ("127.0.0.1", port))
        sleep_until(t0 + len(chords) * spb + 0.2)
        cpu1 = cpu_seconds(proc.pid)
        cpu = None if cpu0 is None or cpu1 is None else round(100 * (cpu1 - cpu0) / (time.monotonic() - t0), 1)
        with inbox.lock:
            notes = [(t, r) for (t, a, _), r in zip(inbox.arrivals, inbox.read_at) if a == "/riffd/note"]
    ons, reads = np.array([t for t, _ in notes]), [r for _, r in notes]
    out, read, missed, stalled = [], [], 0, []
    for k in range(WARMUP, len(sent)):
        end = sent[k + 1] if k + 1 < len(sent) else sent[k] + spb
        i = int(np.searchsorted(ons, sent[k]))
        if i < len(ons) and ons[i] < end:
            out.append(1000.0 * (ons[i] - sent[k]))
            read.append(1000.0 * (reads[i] - sent[k]))
            stalled.append(stalls.overlapping(sent[k], ons[i]))
        else:
            missed += 1
    return out, read, missed, cpu, (stalls, stalled)


def generate_round_trip(names: list[str], runs: int, preset: str, between=None) -> list[float]:
    """Milliseconds from ``/riffd/generate 16 names...`` to ``/riffd/done`` (onnx);
    ``between()`` runs after each timed trip (the in-process reference, interleaved so
    that both see the same machine: this VM's speed drifts by 2x within minutes)."""
    with tempfile.TemporaryDirectory() as tmp, \
            serve_osc(Path(tmp) / "serve.log", "--model", "onnx", "--preset", preset, "--seed", str(SEED)) \
            as (client, inbox, _, _):
        out = []
        for k in range(runs + 1):  # the first waits for the phrase worker's model: not timed
            done = len(inbox.messages("/riffd/done"))
            t = time.monotonic()
            client.send_message("/riffd/generate", [16, *names])
            if not inbox.wait("/riffd/done", since=done, timeout=30):
                raise RuntimeError("no /riffd/done within 30 s")
            with inbox.lock:
                arrived = [a for a, addr, _ in inbox.arrivals if addr == "/riffd/done"][done]
            if k:
                out.append(1000.0 * (arrived - t))
                if between is not None:
                    between()
        return out


def osc(models=("rules", "markov", "onnx"), changes: int = 500, tempo: float = 160.0, preset: str = "pop",
        runs: int = 10, warm_ms: float = 10.0, as_json: bool = False, echo=print) -> dict:
    """Run the benchmark; echo a line per model and, with ``as_json``, one JSON object.
    ``warm_ms``: serve's --warm-ms. Raises RuntimeError if riffd serve does not start."""
    from riffd.models import load_model

    from .benchgen import progression, time_phrase
    meter, chords = Meter(), chord_stream(changes + WARMUP)
    result = {"changes": changes, "tempo_bpm": tempo, "preset": preset, "warm_ms": warm_ms, "models": {}}
    for model in models:
        ms, read, missed, cpu, (stalls, stalled) = reactions(model, chords, tempo, preset, warm_ms)
        quiet = [v for v, st in zip(ms, stalled) if st == 0.0]  # no stall over 1 ms while it waited
        row = {"osc_reaction_ms_p50": percentile(ms, 50), "osc_reaction_ms_p99": percentile(ms, 99),
               "osc_reaction_ms_max": percentile(ms, 100), "answered": len(ms), "unanswered": missed,
               "serve_cpu_percent": cpu, "read_reaction_ms_p50": percentile(read, 50),
               "read_reaction_ms_p99": percentile(read, 99),
               # the machine's own stalls (daemon/benchstall.py): the longest, how many answers
               # waited through one over 1 ms, and the p99 of the answers that did not
               "machine_stall_ms_max": stalls.max_ms(),
               "stalled_reactions": sum(1 for st in stalled if st) if stalls.available else None,
               "osc_reaction_ms_p99_unstalled": percentile(quiet, 99) if stalls.available else None}
        result["models"][model] = row
        echo(f"{model:9} reaction p50 {row['osc_reaction_ms_p50']} ms, p99 {row['osc_reaction_ms_p99']} ms, "
             f"max {row['osc_reaction_ms_max']} ms; {len(ms)} answered, {missed} unanswered; "
             f"serve's CPU {cpu} % of a core; read by the benchmark: p50 {row['read_reaction_ms_p50']} ms, "
             f"p99 {row['read_reaction_ms_p99']} ms; "
             + (f"machine stalls: longest {row['machine_stall_ms_max']} ms, {row['stalled_reactions']} answers "
                f"waited through one, p99 of the rest {row['osc_reaction_ms_p99_unstalled']} ms"
                if stalls.available else MISSING))
    if "onnx" in models and runs:
        names = [c.chord.name for c in progression()][:16]
        # bench generate's timing of the very phrase serve is asked for: the same chords (one
        # name a bar), preset and seed, so the difference is what OSC and serve add
        the_preset = load_preset("folk")
        same = [ChordAt(b, c) for b, c in phrase_chords(names, 16, the_preset.beats_per_bar)]
        model, local = load_model("onnx"), []
        time_phrase(model, the_preset, same, SEED)  # warm
        trips = generate_round_trip(
            names, runs, "folk", lambda: local.append(1000 * time_phrase(model, the_preset, same, SEED)[0]))
        result["osc_generate16_ms"] = round(float(np.median(trips)), 2)
        result["generate16_ms_in_process"] = round(float(np.median(local)), 2)
        result["osc_generate16_overhead_ms"] = round(float(np.median(np.subtract(trips, local))), 2)
        echo(f"/riffd/generate 16 round trip (onnx): {result['osc_generate16_ms']} ms median of {runs}; "
             f"bench generate's in-process time of the same phrase, interleaved: "
             f"{result['generate16_ms_in_process']} ms (median difference {result['osc_generate16_overhead_ms']:+} ms)")
    meter.finish(result, echo)
    if as_json:
        echo(json.dumps(result))
    return result
