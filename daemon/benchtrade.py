"""`riffd bench trade`: trading phrases with riffd serve over real JACK MIDI, in time.

The benchmark is a player trading with riffd: `riffd serve --mode call-response --clock
midi --call-bars N` (``silence``: 0, the answer waits for silence), MIDI clock from the
benchmark, and calls of N bars of 4/4 taken in turn from the corpus's chord-symbol
tunes: the chord at each bar line struck there, the tune's own notes over it (those on
a bar line left out, as the strike would take them into the chord, and those on a key
the chord holds), every key let go on the call's last bar line, the hard case; then 2N
bars of silence for the answer. Per call it finds riffd's first note-on after the call
began and reports, over the calls:

- the answer's offset from the downbeat where the call ended (ms; the tick's real send
  time): on the downbeat with ``call_bars``, a bar later waiting for silence;
- calls answered (a note-on within 2N bars of that downbeat), and note-ons while the
  player was calling (riffd should listen);
- stuck notes, faults, and what the machine was doing (daemon/benchmachine.py).
"""
from __future__ import annotations

import json

from riffd.bridges.jackrig import jack_server

from .benchmachine import Meter, describe
from .capture import MELODY_OVER  # a key this far over the chord's bass is the right hand's melody
from .liverig import TICK, count_stuck, note_ons, percentile, run_session, sort_timeline

BAR = 4.0  # beats: the calls are in 4/4


def trade_calls(count: int, bars: int) -> list[tuple[list, list]]:
    """``count`` calls of ``bars`` bars from the chord-symbol tunes in 4/4, in turn: each
    as ([(beat, pitches)] a chord a bar, [(beat, beats, pitch)] the tune's notes off the
    bar lines and off the chord's keys), beats from the call's first bar line. Raises
    ValueError if the corpus has none."""
    from riffd.models.training.corpus import chord_symbol_paths, chord_symbol_tunes

    calls, length = [], bars * BAR
    for path in chord_symbol_paths():
        for tune in chord_symbol_tunes(path):
            if tune.meter[0] * 4 / tune.meter[1] != BAR or not tune.chords:
                continue
            start = tune.chords[0][0]
            while start + length <= tune.chords[-1][1] + 1e-9:
                chords = [(b * BAR, next(p for s, e, p in reversed(tune.chords) if s <= start + b * BAR + 1e-9))
                          for b in range(bars)]
                bass = min(min(p) for _, p in chords)
                keys = [(n.start - start, min(n.duration, start + length - n.start) - 0.05,
                         n.pitch + 12 * max(0, -((n.pitch - bass - MELODY_OVER) // 12)))
                        for n in tune.melody if start <= n.start < start + length
                        and abs((n.start - start) / BAR - round((n.start - start) / BAR)) > 0.01]
                keys = [(b, n, p) for b, n, p in keys if n > 0 and p not in chords[int(b // BAR)][1]]
                if len(keys) >= 2:
                    calls.append(([(b, tuple(p)) for b, p in chords], keys))
                    if len(calls) == count:
                        return calls
                start += length
    if not calls:
        raise ValueError("the music21 corpus lacks chord-symbol tunes in 4/4")
    return (calls * (count // len(calls) + 1))[:count]


def trade_timeline(calls, bars: int, bpm: float) -> tuple[list, list[tuple[float, float, int]], int]:
    """(time s, message) events from 0xFA to 0xFC; per call (its first beat, the downbeat
    where it ends, the timeline index of that downbeat's clock tick); clocks sent. Each
    call starts 3 x ``bars`` bars after the one before (after a bar of lead-in)."""
    spb = 60.0 / bpm
    period = 3 * bars * BAR
    events, downbeats = [], []
    for i, (chords, keys) in enumerate(calls):
        first = BAR + i * period
        held: tuple[int, ...] = ()
        for beat, pitches in chords:
            at = (first + beat) * spb
            events += [(at - 0.001, 2, [0x80, p, 0]) for p in held] + [(at, 3, [0x90, p, 80]) for p in pitches]
            held = pitches
        for beat, length, pitch in keys:
            events += [((first + beat) * spb, 3, [0x90, pitch, 90]),
                       ((first + beat + length) * spb, 2, [0x80, pitch, 0])]
        end = first + bars * BAR
        events += [(end * spb - 0.001, 2, [0x80, p, 0]) for p in held]
        downbeats.append((first, end))
    ticks = int((BAR + len(calls) * period) * TICK)
    spc = spb / TICK
    events += [(0.0, 0, [0xFA])] + [(k * spc, 1, [0xF8], ("tick", k)) for k in range(ticks)]
    events.append((ticks * spc + 0.001, 4, [0xFC]))
    timeline, where = sort_timeline(events)
    return timeline, [(first, end, where[("tick", round(end * TICK))]) for first, end in downbeats], ticks


def measure(messages, calls, sent: list[float], bars: int, bpm: float) -> dict:
    """The answers' offsets from their downbeats (ms), calls answered, note-ons during calls."""
    spb = 60.0 / bpm
    ons = [t for t, _ in note_ons(messages)]
    offsets, during = [], 0
    for first, end, tick in calls:
        downbeat = sent[tick]
        began = downbeat - (end - first) * spb
        during += sum(began <= t < downbeat - 0.25 * spb for t in ons)
        after = [t for t in ons if downbeat - 0.25 * spb <= t < downbeat + 2 * bars * BAR * spb]
        if after:
            offsets.append((after[0] - downbeat) * 1000)
    return {"calls": len(calls), "answered": len(offsets), "notes_during_calls": during,
            "answer_offset_ms_p50": percentile(offsets, 50), "answer_offset_ms_p99": percentile(offsets, 99),
            "answer_offset_ms_min": percentile(offsets, 0), "answer_offset_ms_max": percentile(offsets, 100)}


def trade(calls: int = 12, bpm: float = 120.0, bars: int = 2, silence: bool = False, models=("rules", "onnx"),
          preset: str = "jazz", period: int = 128, as_json: bool = False, echo=print) -> dict:
    """One session per model, calls of ``bars`` bars; ``silence``: serve waits for the
    silence (``call_bars`` 0) instead of ``--call-bars bars``. Prints a line each, and
    with ``as_json`` one JSON object last. Raises RuntimeError if jackd or riffd serve
    cannot start, ValueError if the corpus has no tune to call with."""
    events, downbeats, ticks = trade_timeline(trade_calls(calls, bars), bars, bpm)
    call_bars = 0 if silence else bars
    results = {"calls": calls, "tempo_bpm": bpm, "bars": bars, "call_bars": call_bars, "preset": preset,
               "period_frames": period, "sessions": []}
    with jack_server(f"riffd-trade-{id(results)}", period=period, realtime=True) as server:
        results["jack_realtime"] = server.realtime
        for model in models:
            meter = Meter()
            run = run_session(["--preset", preset, "--model", model, "--seed", "1", "--mode", "call-response",
                               "--call-bars", str(call_bars)], events)
            row = {"model": model, **measure(run.messages, downbeats, run.sent, bars, bpm),
                   "stuck_notes": count_stuck(run.messages), "faults": run.stats.get("faults", 0),
                   "exit_code": run.returncode, "ticks_sent": ticks, "ticks_received": run.stats.get("clock_ticks"),
                   "machine": meter.report()}
            results["sessions"].append(row)
            echo(f"{model:9} {bpm:g} BPM, calls of {bars} bars, call_bars {call_bars}: answered {row['answered']} "
                 f"of {row['calls']}, answer offset p50 {row['answer_offset_ms_p50']} ms, p99 "
                 f"{row['answer_offset_ms_p99']} ms (min {row['answer_offset_ms_min']}, max "
                 f"{row['answer_offset_ms_max']}); notes during calls {row['notes_during_calls']}; "
                 f"stuck {row['stuck_notes']}; faults {row['faults']}")
            echo("    " + describe(row["machine"]))
    if as_json:
        echo(json.dumps(results))
    return results
