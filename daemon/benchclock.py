"""``riffd bench clock``: the MIDI clock follower against a stalling driver, in process.

A sender's clocks at a steady tempo reach riffd late and bunched when the machine
stalls the MIDI driver (a stall of ``stall_ms`` starts at a share ``stall_rate`` of the
clocks: every clock due before it ends arrives when it ends), plus up to one 128-frame
JACK period (2.67 ms at 48 kHz) of lateness; optionally one clock in 50 is dropped. With
``catch_up`` clocks, a stall's late clocks come back on time over that many clocks instead
of at once (no short gap among them: seen so in full latency runs over JACK). Per
session (one seed): how many whole clocks riffd's position ended off, the clocks it
inferred as lost against those really dropped, and its beat error (ms) at the end.
"""
from __future__ import annotations

import json
import random

from .clock import PPQN, MidiClock

JACK_PERIOD_S = 128 / 48000


def session(seed: int, bpm: float, minutes: float, stall_rate: float, stall_ms: tuple[float, float],
            drop: bool, catch_up: int = 0) -> dict:
    """One session; the last two beats run clean so that the end is not mid-stall."""
    rng = random.Random(seed)
    spc = 60.0 / bpm / PPQN
    clock = MidiClock()
    clock.start(0.0)
    n = int(minutes * bpm * PPQN)
    stalled_until, stall, stall_at, dropped = 0.0, 0.0, 0, 0
    for i in range(n):
        t = 1.0 + i * spc
        if rng.random() < stall_rate and i < n - 2 * PPQN:
            stall, stall_at = rng.uniform(*stall_ms) / 1000.0, i
            stalled_until = t + stall
        if drop and i % 50 == 25 and t > stalled_until:
            dropped += 1
            continue
        late = max(0.0, stalled_until - t)
        if catch_up:
            late = max(late, stall * (1.0 - (i - stall_at) / catch_up))
        clock.tick(t + late + rng.uniform(0.0, JACK_PERIOD_S))
    end = 1.0 + (n - 1) * spc
    return {"clocks_off": round((clock.position_beats - (n - 1) / PPQN) * PPQN),
            "inferred_lost": clock.inferred, "dropped": dropped,
            "beat_error_ms": round((clock.beat_at(end) - (n - 1) / PPQN) * 60000.0 / bpm, 2)}


def clock(seeds: int = 20, bpm: float = 160.0, minutes: float = 3.0, stall_rate: float = 0.01,
          stalls=((5, 20), (5, 40), (10, 60)), drop: bool = False, catch_up: int = 0, as_json: bool = False,
          echo=print) -> dict:
    """Run ``seeds`` sessions per stall range; echo a line per range and, with ``as_json``,
    one JSON object."""
    result = {"bpm": bpm, "minutes": minutes, "stall_rate": stall_rate, "drop": drop, "catch_up": catch_up,
              "ranges": {}}
    for low, high in stalls:
        rows = [session(s, bpm, minutes, stall_rate, (low, high), drop, catch_up) for s in range(seeds)]
        slipped = sum(1 for r in rows if r["clocks_off"])
        key = f"{low:g}-{high:g}ms"
        row = result["ranges"][key] = {"sessions": seeds, "sessions_off": slipped,
                                       "worst_clocks_off": max(abs(r["clocks_off"]) for r in rows),
                                       "false_losses": sum(r["inferred_lost"] - r["dropped"] for r in rows)}
        echo(f"stalls {key}: {slipped} of {seeds} sessions ended off by whole clocks "
             f"(worst {row['worst_clocks_off']}), {row['false_losses']} clocks counted lost that were not")
    if as_json:
        echo(json.dumps(result))
    return result
