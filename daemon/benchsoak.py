"""`riffd bench soak`: riffd serve under load over real JACK MIDI with MIDI clock.

A random, seeded session: chord changes at ``rate`` strikes per second (random roots
and qualities, block chords), a new tempo every 20 s (70-180 BPM), a stop and start
every 45 s, and a song-position jump (stop, 0xF2, continue) every 30 s; its last minute
plays its first minute again, event for event, so the two compare the same music. It reports
stuck notes, crashes (riffd exiting on its own or not with 0), the growth of riffd's
resident memory after its first minute, and reaction per minute.
"""
from __future__ import annotations

import json
import random

import numpy as np

from riffd.bridges.jackrig import jack_server
from riffd.music.chords import QUALITIES, Chord

from .benchmachine import Meter
from .liverig import TICK, by_minute, count_stuck, first_on_after, note_ons, run_session, sort_timeline

TEMPO_EVERY_S, STOP_EVERY_S, JUMP_EVERY_S = 20.0, 45.0, 30.0
SEAM_S = 0.01  # between one stretch's stop and the next one's start


def soak_timeline(minutes: float, rate: float, seed: int) -> tuple[list, list, int]:
    """(time s, message) events; the strikes as (time s, pitches, event index of the
    first key); clocks sent. A session of two minutes or more ends with its first minute
    played again, event for event (strikes, tempos, stops, jumps): "the last minute no
    worse than the first" then compares the same music, cold against after the load."""
    rng = random.Random(seed)
    total = minutes * 60.0
    if minutes >= 2:
        first = _stretch(60.0, rate, rng)
        parts = [first] + ([_stretch(total - 120.0, rate, rng)] if total > 120.0 else []) + [first]
    else:
        parts = [_stretch(total, rate, rng)]
    events, strikes, ticks, offset = [], [], 0, 0.0
    for part_events, part_strikes, part_ticks in parts:
        base = len(strikes)  # a first key's tag is its strike's number: renumbered in the session
        events += [(e[0] + offset, e[1], e[2], *((e[3] + base,) if len(e) > 3 else ())) for e in part_events]
        strikes += [(at + offset, pitches) for at, pitches in part_strikes]
        ticks += part_ticks
        offset += max(e[0] for e in part_events) + SEAM_S  # after this stretch's stop
    timeline, where = sort_timeline(events)
    return timeline, [(at, pitches, where[k]) for k, (at, pitches) in enumerate(strikes)], ticks


def _stretch(end: float, rate: float, rng: random.Random) -> tuple[list, list, int]:
    """One stretch of the session from MIDI start to stop ``end`` seconds later: unsorted
    (time s, priority, message[, strike number]) events, the strikes as (time s,
    pitches), clocks sent."""
    events: list[tuple[float, int, list[int]]] = [(0.0, 0, [0xFA])]
    t, bpm, ticks, next_tempo, next_stop, next_jump = 0.0, 120.0, 0, TEMPO_EVERY_S, STOP_EVERY_S, JUMP_EVERY_S / 2
    while t < end:
        events.append((t, 1, [0xF8]))
        ticks += 1
        t += 60.0 / bpm / TICK
        if t >= next_tempo:
            bpm, next_tempo = rng.uniform(70.0, 180.0), next_tempo + TEMPO_EVERY_S
        if t >= next_stop:  # stop half a second (clocks stop too), then start from zero
            events += [(t, 0, [0xFC]), (t + 0.5, 0, [0xFA])]
            t, next_stop = t + 0.5, next_stop + STOP_EVERY_S
        elif t >= next_jump:
            sixteenths = rng.randrange(0, 512)
            events += [(t, 0, [0xFC]), (t + 0.01, 0, [0xF2, sixteenths & 0x7F, sixteenths >> 7]),
                       (t + 0.02, 0, [0xFB])]
            t, next_jump = t + 0.03, next_jump + JUMP_EVERY_S
    strikes, held, at = [], (), 0.5  # (time s, pitches); the first key's event index is found below
    qualities = list(QUALITIES)
    while at < end - 0.1:
        root = rng.randrange(12)
        chord = Chord(root, rng.choice(qualities), root)
        pitches = tuple(chord.voicing(48))
        events += [(at - 0.001, 2, [0x80, p, 0]) for p in held]
        events += [(at, 3, [0x90, p, rng.randrange(40, 120)], len(strikes)) if i == 0 else
                   (at, 3, [0x90, p, rng.randrange(40, 120)]) for i, p in enumerate(pitches)]
        strikes.append((at, pitches))
        held, at = pitches, at + rng.expovariate(rate)
    events += [(end, 2, [0x80, p, 0]) for p in held] + [(end + 0.001, 4, [0xFC])]
    return events, strikes, ticks


def soak(minutes: float = 10.0, rate: float = 20.0, model: str = "onnx", preset: str = "pop",
         period: int = 128, seed: int = 1, as_json: bool = False, echo=print) -> dict:
    """Run the soak session; prints a summary, and with ``as_json`` one JSON object last.
    Raises RuntimeError if jackd or riffd serve cannot start."""
    meter = Meter()
    events, strikes, ticks = soak_timeline(minutes, rate, seed)
    with jack_server(f"riffd-soak-{seed}-{id(events)}", period=period, realtime=True) as server:
        run = run_session(["--preset", preset, "--model", model, "--seed", str(seed)], events)
        xruns = server.xruns()
    ons = note_ons(run.messages)
    on_times = np.array([t for t, _ in ons])
    reactions = []
    for k, (at, _, index) in enumerate(strikes):
        start = run.sent[index]  # when the key really left
        limit = run.sent[strikes[k + 1][2]] if k + 1 < len(strikes) else start + 0.5
        i = first_on_after(on_times, start, limit)
        if i is not None:
            reactions.append((at / 60.0, (ons[i][0] - start) * 1000))
    p99 = by_minute(reactions, 99, minutes)
    after_first = [mb for t, mb in run.rss_mb if t - run.t0 >= 60.0] or [mb for _, mb in run.rss_mb]
    result = {"minutes": minutes, "model": model, "strikes": len(strikes), "strikes_per_s": rate,
              "stuck_notes": count_stuck(run.messages), "crashes": int(run.returncode != 0),
              "exit_code": run.returncode, "faults": run.stats.get("faults", 0),
              "rss_mb_after_first_minute": round(after_first[0], 1) if after_first else None,
              "rss_growth_mb": round(after_first[-1] - after_first[0], 1) if after_first else None,
              "reaction_ms_p99_first_minute": p99[0], "reaction_ms_p99_last_minute": p99[-1],
              "reaction_ms_p99_by_minute": p99, "reaction_ms_p99_trend_per_minute": trend(p99),
              "reactions": len(reactions),
              "ticks_sent": ticks, "ticks_received": run.stats.get("clock_ticks"),
              "xruns_clients": xruns["clients"], "xruns_driver": xruns["driver"], "jack_realtime": server.realtime,
              "reader_late_ms_p99": run.stats.get("reader_late_ms_p99")}
    echo(f"riffd bench soak: {minutes:g} min, {len(strikes)} strikes ({rate:g}/s), model {model}: "
         f"stuck {result['stuck_notes']}, crashes {result['crashes']}, faults {result['faults']}, "
         f"RSS growth {result['rss_growth_mb']} MB, reaction p99 first minute {p99[0]} ms, "
         f"last {p99[-1]} ms (trend {result['reaction_ms_p99_trend_per_minute']} ms a minute); "
         f"ticks {result['ticks_received']}/{ticks}; xruns {xruns['clients']} (driver {xruns['driver']})")
    meter.finish(result, echo)
    if as_json:
        echo(json.dumps(result))
    return result


def trend(per_minute: list) -> float | None:
    """Least-squares slope (ms per minute) through the minutes' p99 reactions: growth over
    the session, which one minute against another cannot tell from a minute's noise.
    None with fewer than two minutes that have a figure."""
    points = [(i, v) for i, v in enumerate(per_minute) if v is not None]
    if len(points) < 2:
        return None
    x, y = np.array(points, dtype=float).T
    return round(float(np.polyfit(x, y, 1)[0]), 2)
