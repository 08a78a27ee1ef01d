"""`riffd bench latency`: riffd serve measured over real JACK MIDI, as a DAW drives it.

The benchmark is the DAW: it runs a `jackd -d dummy` server, starts `riffd serve --clock
midi`, and plays one continuous session per model and tempo: MIDI clock (24 PPQN) and
the chords of real tunes from the music21 corpus, folk tunes with chord symbols struck
as block chords every two beats and Bach chorales rolled (keys ``ROLL_S`` apart). It
records what riffd sends back and reports, per minute and overall:

- reaction: from a chord change's first key (block) or last key (rolled) to riffd's
  first note-on after it, within a beat and before the next strike;
- timing: every other note-on against the nearest sixteenth of the benchmark's clock, or
  the nearest swung step of the preset's grid (a swung eighth is meant late);
- flams: note-ons within 10 ms of the note-on before (liverig.count_flams), and how
  many note-ons waited for keys still unread (``waited_for_keys``, daemon/scheduler.py);
- stuck notes: note-ons without an explicit note-off once riffd has exited;
- clock ticks riffd received against those sent, and jackd's xruns;
- the machine's own stalls per minute (daemon/benchstall.py, cyclictest), and the
  longest within each of the slowest reactions: a late answer that a stall overlapped
  lost that long to the machine; one that no stall touched was riffd's own.
"""
from __future__ import annotations

import json
import math

import numpy as np

from riffd.bridges.jackrig import jack_server
from riffd.music.chords import recognize
from riffd.music.theory import swing_offset
from riffd.presets import load_preset

from .benchmachine import Meter, describe
from .benchstall import MISSING, StallWatch
from .liverig import (TICK, by_minute, count_flams, count_stuck, first_on_after, note_ons, percentile, run_session,
                      sort_timeline)

ROLL_S = 0.006      # a rolled chord: one key every 6 ms, as a hand or a strum plays it
RESTRIKE_BEATS = 2  # block chords are struck again every two beats while they last
MAX_BEATS = 64      # of each piece, so that the session cycles through several


def session_chords(beats: float) -> list[tuple[float, float, tuple[int, ...], bool]]:
    """(start_beat, end_beat, pitches, rolled) for at least ``beats`` beats: chord-symbol
    tunes (block) and chorales (rolled) strictly in turn, so that every minute holds both
    kinds; each round takes the next chorales and is transposed by a fourth. Raises
    ValueError if the corpus lacks either kind."""
    from riffd.models.training.corpus import chord_symbol_paths, chord_symbol_tunes, chorale, chorale_paths

    tunes = [t for p in chord_symbol_paths() for t in chord_symbol_tunes(p)]
    chorales = [c for c in (chorale(p) for p in chorale_paths()[:12]) if c is not None and c.chords]
    if not tunes or not chorales:
        raise ValueError("the music21 corpus lacks its chord-symbol tunes or Bach chorales")
    out, offset, round_ = [], 0.0, 0
    while offset < beats:
        # tunes run out before chorales: the next round goes on with the chorales not yet played
        pieces = [piece for i, t in enumerate(tunes)
                  for piece in ((t, False), (chorales[(round_ * len(tunes) + i) % len(chorales)], True))]
        for piece, rolled in pieces:
            shift = (5 * round_) % 12 - (6 if (5 * round_) % 12 > 6 else 0)
            first = piece.chords[0][0]
            for s, e, pitches in piece.chords:
                if s - first >= MAX_BEATS:
                    break
                s, e = s - first + offset, min(e, first + MAX_BEATS) - first + offset
                step = e - s if rolled else RESTRIKE_BEATS
                while s < e - 1e-9:
                    out.append((s, min(s + step, e), tuple(p + shift for p in pitches), rolled))
                    s += step
            offset = math.ceil(out[-1][1]) + 2.0  # two beats' rest; each piece starts on a beat
            if offset >= beats:
                break
        round_ += 1
    return [c for c in out if c[1] <= beats]


def timeline(chords, bpm: float, minutes: float) -> tuple[list, list, int]:
    """(time s, message) events from 0xFA to 0xFC; the strikes as (first key s, last key
    s, pitches, rolled, index of the first key's event, of the last key's); and the
    number of clocks sent."""
    spc = 60.0 / bpm / TICK
    ticks = int(minutes * 60.0 / spc)
    events = [(0.0, 0, [0xFA])] + [(i * spc, 1, [0xF8]) for i in range(ticks)]
    strikes, held = [], ()
    for start, _, pitches, rolled in chords:
        at = start * 60.0 / bpm
        events += [(at - 0.001, 2, [0x80, p, 0]) for p in held]
        # the key's order number rides along, so that its place after sorting is known
        keys = [(at + (i * ROLL_S if rolled else 0.0), 3, [0x90, p, 80], (len(strikes), i))
                for i, p in enumerate(pitches)]
        events += keys
        strikes.append((keys[0][0], keys[-1][0], pitches, rolled))
        held = pitches
    end = ticks * spc
    events += [(end, 2, [0x80, p, 0]) for p in held] + [(end + 0.001, 4, [0xFC])]
    timeline_, where = sort_timeline(events)
    strikes = [(f, l, p, r, where[(k, 0)], where[(k, len(p) - 1)]) for k, (f, l, p, r) in enumerate(strikes)]
    return timeline_, strikes, ticks


def timing_error_ms(beats: float, spb: float, grid: int = 2, swing: float = 0.0) -> float:
    """How far (ms) a note-on ``beats`` after the clock's start lies from where a note may
    be meant: the nearest sixteenth, or with ``swing`` the nearest swung step of a grid of
    ``grid`` steps a beat (every second step ``swing`` of a step late: ``swing_offset``).
    ``spb``: seconds per beat."""
    error = abs(beats * 4 - round(beats * 4)) / 4
    if swing > 0 and grid >= 2:
        step = 1.0 / grid
        k = math.floor(beats / step)  # a swung step lies within a step after its own
        error = min([error] + [abs(beats - j * step - swing_offset(j * step, grid, swing))
                               for j in (k - 1, k, k + 1) if j % 2])
    return error * spb * 1000


def measure(messages, strikes, bpm: float, t0: float, minutes: float, sent: list[float], stalls=None,
            grid: int = 2, swing: float = 0.0) -> dict:
    """Reaction and timing per minute, and over the whole session. Reaction counts from
    when the key really left (``sent``, monotonic s per timeline event): a benchmark
    that sends late must not be charged to riffd. ``stalls``: a finished StallWatch,
    whose longest stall within each of the slowest reactions is reported beside it.
    ``grid``, ``swing``: the preset's, for timing (``timing_error_ms``)."""
    spb = 60.0 / bpm
    ons = note_ons(messages)
    on_times = np.array([t for t, _ in ons])
    reactions, rolled_reactions, tones_ok, used = [], [], [], set()
    previous = None
    for k, (first, last, pitches, rolled, first_i, last_i) in enumerate(strikes):
        chord = recognize(pitches)
        if chord is None or chord == previous:
            continue
        previous = chord
        start = sent[last_i if rolled else first_i]
        limit = min(start + spb, sent[strikes[k + 1][4]]) if k + 1 < len(strikes) else start + spb
        i = first_on_after(on_times, start, limit)
        if i is not None:
            ms = (ons[i][0] - start) * 1000
            (rolled_reactions if rolled else reactions).append((first / 60.0, ms, start))
            tones_ok.append(ons[i][1] % 12 in (chord.tones | {p % 12 for p in pitches}))
            used.add(i)
    timing = [((t - t0) / 60.0, timing_error_ms((t - t0) / spb, spb, grid, swing))
              for i, (t, _) in enumerate(ons) if i not in used]
    react_p99 = by_minute([r[:2] for r in reactions], 99, minutes)
    return {"chord_changes": len(reactions) + len(rolled_reactions), "notes": len(ons),
            "reaction_ms_p50": percentile([r[1] for r in reactions], 50),
            "reaction_ms_p99": percentile([r[1] for r in reactions], 99),
            "reaction_ms_p99_first_minute": react_p99[0], "reaction_ms_p99_last_minute": react_p99[-1],
            "reaction_ms_p99_by_minute": react_p99,
            # the first answer of a session: what a cold model or path costs shows here
            "reaction_ms_first_strike": round(reactions[0][1], 2) if reactions else None,
            # (minute, ms, the machine's longest stall within it) of the three slowest
            # block-chord answers, to find an outlier's cause
            "slowest_reactions": [[round(m, 2), round(ms, 2),
                                   stalls.overlapping(at, at + ms / 1000) if stalls is not None else None]
                                  for m, ms, at in sorted(reactions, key=lambda r: r[1])[-3:]],
            "rolled_reaction_ms_p50": percentile([r[1] for r in rolled_reactions], 50),
            "rolled_reaction_ms_p99": percentile([r[1] for r in rolled_reactions], 99),
            "timing_ms_p50": percentile([v for _, v in timing], 50),
            "timing_ms_p50_by_minute": by_minute(timing, 50, minutes),
            "chord_tone_share": round(float(np.mean(tones_ok)), 3) if tones_ok else None,
            "flams": count_flams(messages)}


def latency(minutes: float = 5.0, tempos=(90.0, 120.0, 160.0), models=("rules", "markov", "onnx"),
            period: int = 128, preset: str = "pop", warm_ms: float = 10.0, as_json: bool = False,
            echo=print) -> dict:
    """Run one session per model and tempo; prints a table, and with ``as_json`` one JSON
    object last. ``warm_ms``: serve's --warm-ms. Raises RuntimeError if jackd or riffd
    serve cannot start."""
    played = load_preset(preset)
    results = {"period_frames": period, "period_ms": round(period / 48.0, 2), "minutes": minutes,
               "preset": preset, "warm_ms": warm_ms, "sessions": []}
    with jack_server(f"riffd-bench-{id(results)}", period=period, realtime=True) as server:
        results["jack_realtime"] = server.realtime
        for bpm in tempos:
            chords = session_chords(minutes * bpm)
            events, strikes, ticks = timeline(chords, bpm, minutes)
            for model in models:
                before, meter = server.xruns(), Meter()
                with StallWatch() as stalls:
                    run = run_session(["--preset", preset, "--model", model, "--seed", "1", "--warm-ms",
                                       str(warm_ms)], events)
                row = {"model": model, "tempo_bpm": bpm, "strikes": len(strikes),
                       **measure(run.messages, strikes, bpm, run.t0, minutes, run.sent, stalls, played.grid,
                                 played.swing),
                       "stuck_notes": count_stuck(run.messages), "ticks_sent": ticks,
                       "ticks_received": run.stats.get("clock_ticks"),
                       "ticks_inferred_lost": run.stats.get("clock_ticks_inferred"),
                       # serve's word on each loss it counted: where, the gap, how late the clocks since
                       "clock_losses": [line.split("MIDI clock: ", 1)[1] for line in run.log.splitlines()
                                        if "counted as lost" in line],
                       **{f"xruns_{k}": v - before[k] for k, v in server.xruns().items()},
                       "faults": run.stats.get("faults", 0), "exit_code": run.returncode,
                       "reader_late_ms_p99": run.stats.get("reader_late_ms_p99"),
                       "reader_late_ms_max": run.stats.get("reader_late_ms_max"),
                       "refill_waits": run.stats.get("refill_waits"),
                       "waited_for_keys": run.stats.get("waited_for_keys"),
                       "realtime_threads": run.stats.get("realtime"),
                       # the machine's own stalls (cyclictest, above every thread): 0.0 is none over 1 ms
                       "machine_stall_ms_max": stalls.max_ms(),
                       "machine_stall_ms_by_minute": stalls.by_minute(run.t0, minutes),
                       "machine": meter.report()}
                results["sessions"].append(row)
                echo(format_row(row))
                echo("    " + describe(row["machine"]))
    if as_json:
        echo(json.dumps(results))
    return results


def format_row(r: dict) -> str:
    """One line of the latency table."""
    return (f"{r['model']:9} {r['tempo_bpm']:>4g} BPM: reaction p50 {r['reaction_ms_p50']} ms, p99 "
            f"{r['reaction_ms_p99']} ms (minute 1 {r['reaction_ms_p99_first_minute']}, last "
            f"{r['reaction_ms_p99_last_minute']}, first strike {r.get('reaction_ms_first_strike')}); "
            f"rolled p50 {r['rolled_reaction_ms_p50']} ms; timing p50 "
            f"{r['timing_ms_p50']} ms; flams {r['flams']} (waited for keys {r.get('waited_for_keys')}); stuck {r['stuck_notes']}; ticks {r['ticks_received']}/{r['ticks_sent']} "
            f"({r.get('ticks_inferred_lost')} inferred lost); "
            f"xruns {r['xruns_clients']} (driver {r['xruns_driver']}); reader late p99 {r['reader_late_ms_p99']} ms"
            + (f"; refill waits {r['refill_waits']}" if r.get("refill_waits") is not None else "")
            + f"; realtime threads: {', '.join(r.get('realtime_threads') or ['none'])}; machine stalls by minute "
            + (" / ".join(map(str, r["machine_stall_ms_by_minute"])) + " ms"
               if r.get("machine_stall_ms_by_minute") is not None else MISSING))
