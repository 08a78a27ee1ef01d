"""`riffd bench generate`: how fast the melody models write and re-plan.

- ``<backend>_16bar_ms``: wall time of start + generate over 16 bars of a real chord
  progression (the demo chorale's chords, 4/4), median over ``runs`` seeds;
- ``onnx_tokens_per_s``: stream tokens (sampled and forced, all through the model) per
  second in those runs, batch 1;
- ``replan_ms``: a chord change mid-phrase: rollback to the beat, the new chord, and
  generate one beat, timed for ``replans`` changes in one stream on the onnx backend,
  with the model's idle work (``prepare``: the window's refill) done between changes as
  the engine does it
  (p50, p99, and p50 of the first and last fifth of the changes: a long live session
  must not grow slower);
- ``first_change_ms_cold`` and ``first_change_ms_rehearsed``: the first chord change
  (as the live engine makes it: rollback, the chord, one beat) of a freshly loaded onnx
  model, without and after ``MelodyModel.rehearse`` (what ``riffd serve`` does before
  it says ready), each in a fresh process as serve's is, median of ``FRESH_LOADS``;
- ``switch_ms_heard`` and ``switch_ms_alone``: a live switch of style or model (as
  ``Engine.reconfigure`` makes it) at bar 9 of a phrase on onnx: a fresh start and one
  beat, given the melody played before it (``MelodyModel.played_before``: the
  transformer hears its last 4 bars) or the chord sounding alone, median over ``runs``
  seeds.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from riffd.models import load_model
from riffd.models.protocol import ChordAt, Context

from riffd.music.chords import recognize
from riffd.presets import load_preset

from .benchmachine import Meter

BARS = 16
FRESH_LOADS = 3


def progression(bars: int = BARS) -> list[ChordAt]:
    """The demo chorale's chords (riffd.daemon.demo) over ``bars`` bars of 4/4, repeated
    if the chorale is shorter."""
    from riffd.models.training.corpus import chorale, corpus_root

    from .demo import DEMO_CHORALE
    piece = chorale(next((corpus_root() / "bach").glob(f"{DEMO_CHORALE}.*")))
    named = [(s, recognize(p)) for s, _, p in piece.chords]
    named = [(s, c) for s, c in named if c is not None]
    span = piece.length_beats
    out, offset = [], 0.0
    while offset < bars * 4:
        out += [ChordAt(offset + s, c) for s, c in named if offset + s < bars * 4]
        offset += span
    return out


def time_phrase(model, preset, chords, seed) -> tuple[float, int, int]:
    """(seconds, notes, stream tokens) of start + generate over ``BARS`` bars of ``chords``."""
    t0 = time.perf_counter()
    model.start(Context(preset, seed=seed, chords=chords))
    notes = list(model.generate(BARS * 4.0))
    return time.perf_counter() - t0, len(notes), len(getattr(model, "ids", ()))


def generate(backends=("rules", "markov", "mlx", "onnx", "onnx-int8"), runs: int = 10, replans: int = 200,
             preset: str = "folk", as_json: bool = False, echo=print) -> dict:
    """Run the benchmark and echo a table (and a JSON line with ``as_json``)."""
    meter, the_preset = Meter(), load_preset(preset)
    chords = progression()
    result = {"bars": BARS, "runs": runs, "chords": len(chords)}
    for name in backends:
        model = load_model(name)
        time_phrase(model, the_preset, chords, 0)  # warm: imports, session start, first-call costs
        times, notes, tokens = zip(*(time_phrase(model, the_preset, chords, seed) for seed in range(1, runs + 1)))
        key = name.replace("-", "_")
        result[f"{key}_16bar_ms"] = round(1000 * float(np.median(times)), 2)
        result[f"{key}_notes"] = round(float(np.mean(notes)), 1)
        if tokens[0]:
            result[f"{key}_tokens_per_s"] = round(float(np.sum(tokens) / np.sum(times)))
        echo(f"{name:10s} 16 bars: {result[f'{key}_16bar_ms']:8.2f} ms median of {runs}, "
             f"{result[f'{key}_notes']:.0f} notes" + (f", {result[f'{key}_tokens_per_s']:,} tokens/s" if tokens[0] else ""))
    if "onnx" in backends and replans:
        samples = replan_times(load_model("onnx"), the_preset, chords, replans)
        result["replan_ms_p50"] = round(float(np.percentile(samples, 50)), 3)
        result["replan_ms_p99"] = round(float(np.percentile(samples, 99)), 3)
        # a live session's plan must cost the same in its last changes as in its first
        fifth = max(1, len(samples) // 5)
        result["replan_ms_p50_first_fifth"] = round(float(np.percentile(samples[:fifth], 50)), 3)
        result["replan_ms_p50_last_fifth"] = round(float(np.percentile(samples[-fifth:], 50)), 3)
        echo(f"re-plan one beat after a chord change (onnx): p50 {result['replan_ms_p50']} ms, "
             f"p99 {result['replan_ms_p99']} ms over {replans}; p50 of the first fifth "
             f"{result['replan_ms_p50_first_fifth']} ms, of the last {result['replan_ms_p50_last_fifth']} ms")
    if "onnx" in backends:
        for kind in ("cold", "rehearsed"):
            ms = [float(subprocess.run([sys.executable, "-m", __name__, kind, preset], capture_output=True,
                                       text=True, check=True).stdout.split()[-1]) for _ in range(FRESH_LOADS)]
            result[f"first_change_ms_{kind}"] = round(float(np.median(ms)), 3)
        echo(f"first chord change of a fresh onnx model: {result['first_change_ms_cold']} ms, "
             f"{result['first_change_ms_rehearsed']} ms after a rehearsal (median of {FRESH_LOADS} processes)")
    if "onnx" in backends:
        heard, alone = switch_times(load_model("onnx"), the_preset, chords, runs)
        result["switch_ms_heard"], result["switch_ms_alone"] = (round(float(np.median(ms)), 3) for ms in (heard, alone))
        echo(f"a live switch's first beat (onnx): {result['switch_ms_heard']} ms after the melody played, "
             f"{result['switch_ms_alone']} ms over the chord alone (median of {runs})")
    meter.finish(result, echo)
    if as_json:
        echo(json.dumps(result))
    return result


def replan_times(model, preset, chords, count: int) -> list[float]:
    """Milliseconds for rollback + new chord + one beat, at ``count`` beats of a long phrase."""
    rng = np.random.default_rng(0)
    pool = [c.chord for c in chords]
    model.start(Context(preset, seed=0, chords=chords[:1]))
    out, beat = [], 0.0
    list(model.generate(4.0))
    while len(out) < count:
        beat += 1.0
        list(model.generate(beat + 1.0))  # the plan runs one beat ahead, as in the engine
        while model.prepare():  # and the engine's idle work: a full window refills here, not in a change
            pass
        change = ChordAt(beat, pool[int(rng.integers(len(pool)))])
        t0 = time.perf_counter()
        model.rollback(beat)
        model.extend([change])
        list(model.generate(beat + 1.0))
        out.append(1000 * (time.perf_counter() - t0))
    return out


def switch_times(model, preset, chords, runs: int, at: float = 32.0) -> tuple[list[float], list[float]]:
    """Milliseconds for a fresh start at beat ``at`` of a phrase over ``chords`` and one
    beat, given the bars played before it, and over the chord sounding alone; ``runs``
    seeds each."""
    heard, alone = [], []
    for seed in range(runs):
        model.start(Context(preset, seed=seed, chords=chords))
        list(model.generate(at))
        (before, notes), now = model.played_before(at), [ChordAt(at, model.chord_at(at))]
        for out, context in ((heard, Context(preset, seed=seed, start_beat=at, chords=before + now, notes=notes)),
                             (alone, Context(preset, seed=seed, start_beat=at, chords=now))):
            t0 = time.perf_counter()
            model.start(context)
            list(model.generate(at + 1.0))
            out.append(1000 * (time.perf_counter() - t0))
    return heard, alone


def first_change_ms(preset, chord, rehearse: bool) -> float:
    """Milliseconds for the first chord change of a freshly loaded onnx model, as the
    engine makes it after its ``start`` with no chords."""
    model = load_model("onnx")
    if rehearse:
        model.rehearse(preset)
    model.start(Context(preset, seed=0))
    t0 = time.perf_counter()
    model.rollback(0.0)
    model.extend([ChordAt(0.0, chord)])
    list(model.generate(1.0))
    return 1000 * (time.perf_counter() - t0)


if __name__ == "__main__":  # one fresh process's first change: python -m riffd.daemon.benchgen cold|rehearsed PRESET
    print(first_change_ms(load_preset(sys.argv[2]), progression()[0].chord, sys.argv[1] == "rehearsed"))
