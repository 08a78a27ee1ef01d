"""`riffd bench latency`: riffd serve measured over real JACK MIDI.

The benchmark is the DAW: it runs a `jackd -d dummy` server, starts `riffd serve
--clock midi`, sends MIDI clock (24 PPQN) and plays the chord tracks of corpus chorales
with every chord struck on a clock tick that begins a beat, and records riffd's output.

- reaction: from a chord's note-on (sent) to riffd's first note-on after it within that
  beat (received), over the strikes that change the chord; and the share of those notes
  that are tones of the new chord (named from the played pitches);
- timing: every other note-on against the nearest sixteenth of the benchmark's clock.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from riffd.bridges.jackrig import Player, jack_server, play_clocked, sleep_until

from riffd.music.chords import recognize
from .clock import PPQN

MAX_BEATS = 64


def _play(player: Player, chords, bpm: float, t0: float) -> tuple[list, float]:
    """Clock and chords from ``t0``; returns (strikes as (time, pitches), end time)."""
    spc = 60.0 / bpm / PPQN
    starts = {int(round(start * PPQN)): pitches for start, _, pitches in chords}
    end = int(round(chords[-1][1] * PPQN))
    strikes, held = play_clocked(player, starts, end + 1, spc, t0)
    for p in held:
        player.send([0x80, p, 0])
    player.send([0xFC])
    return strikes, t0 + end * spc


def _measure(messages, strikes, bpm: float, t0: float) -> dict:
    spb = 60.0 / bpm
    ons = [(t, m[1]) for t, m in messages if m[0] & 0xF0 == 0x90 and m[2] > 0]
    on_times = np.array([t for t, _ in ons])
    reactions, tones_ok, reaction_idx = [], [], set()
    previous = None
    for t, pitches in strikes:
        chord = recognize(pitches)
        if chord is None or chord == previous:
            previous = chord or previous
            continue
        previous = chord
        i = int(np.searchsorted(on_times, t))
        if i < len(ons) and ons[i][0] < t + spb:
            reactions.append((ons[i][0] - t) * 1000)
            tones_ok.append(ons[i][1] % 12 in (chord.tones | {p % 12 for p in pitches}))
            reaction_idx.add(i)
    sixteenth = spb / 4
    errors = [abs(((t - t0) / sixteenth - round((t - t0) / sixteenth)) * sixteenth) * 1000
              for i, (t, _) in enumerate(ons) if i not in reaction_idx]

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values else None

    return {"chord_changes": len(reactions), "notes": len(ons),
            "reaction_ms_p50": pct(reactions, 50), "reaction_ms_p99": pct(reactions, 99),
            "chord_tone_share": round(float(np.mean(tones_ok)), 3) if tones_ok else None,
            "timing_error_ms_p50": pct(errors, 50), "timing_error_ms_p99": pct(errors, 99)}


def latency(min_chords: int = 215, tempo: float = 100.0, models=("rules", "markov"), period: int = 128,
            preset: str = "pop", as_json: bool = False, echo=print) -> dict:
    """Run the benchmark; prints a table, and with ``as_json`` one JSON object last."""
    from riffd.models.training.corpus import chorale, chorale_paths

    chords, offset = [], 0.0
    for path in chorale_paths():
        piece = chorale(path)
        if piece is None or not piece.chords:
            continue
        base = offset - piece.chords[0][0]
        # at most MAX_BEATS of each piece, so a long chorale cannot stretch the run
        chords += [(s + base, e + base, p) for s, e, p in piece.chords
                   if s - piece.chords[0][0] < MAX_BEATS]
        offset = chords[-1][1] + 2.0  # two beats' rest between pieces
        if len(chords) >= min_chords:
            break
    results = {"period_frames": period, "period_ms": round(period / 48.0, 2), "tempo_bpm": tempo,
               "preset": preset,
               "chords_struck": len(chords), "models": {}}
    with jack_server(f"riffd-bench-{os.getpid()}", period=period):
        for model in models:
            proc = subprocess.Popen([sys.executable, "-c", "from riffd.daemon.cli import main; main()",
                                     "serve", "--midi-api", "jack", "--clock", "midi", "--preset", preset,
                                     "--model", model, "--seed", "1"], stderr=subprocess.PIPE, text=True)
            line = proc.stderr.readline()
            if "ready" not in line:
                raise RuntimeError(f"riffd serve did not start: {line}{proc.stderr.read()}")
            player = Player()
            try:
                time.sleep(0.5)
                t0 = time.monotonic() + 0.2
                strikes, end = _play(player, chords, tempo, t0)
                sleep_until(end + 0.3)
                messages = player.messages()
            finally:
                player.close()
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=10)
            results["models"][model] = _measure(messages, strikes, tempo, t0)
    echo(f"riffd bench latency: JACK dummy at 48 kHz, period {period} frames "
         f"({results['period_ms']} ms), MIDI clock at {tempo:g} BPM, {len(chords)} chords struck, preset {preset}")
    echo(f"{'model':8} {'changes':>8} {'react p50':>10} {'react p99':>10} {'chord tones':>12} "
         f"{'timing p50':>11} {'timing p99':>11}")
    for model, r in results["models"].items():
        echo(f"{model:8} {r['chord_changes']:>8} {r['reaction_ms_p50']!s:>8}ms {r['reaction_ms_p99']!s:>8}ms "
             f"{r['chord_tone_share']!s:>12} {r['timing_error_ms_p50']!s:>9}ms {r['timing_error_ms_p99']!s:>9}ms")
    if as_json:
        echo(json.dumps(results))
    return results


def tokenize(files=(), repeat: int = 3, as_json: bool = False, echo=print) -> dict:
    """Notes per second of riffd's REMI encoder and of miditok's on the same files, and
    how many files gave identical melody-stream ids.

    Both are timed from notes already in memory (riffd: arrays read by mido; miditok: a
    symusic Score) to token ids, best of ``repeat`` passes. Files whose meters riffd
    rejects (UnsupportedMeter) are counted and left out of both timings.
    """
    import symusic

    from riffd.bridges.midifile import read_song
    from riffd.models.remi import Notes, RemiTokenizer
    from riffd.models.training.testset import corpus_melody_files
    from riffd.models.tokens import miditok_tokenizer

    paths = [Path(f) for f in files] or corpus_melody_files()
    reference, ours = miditok_tokenizer(), RemiTokenizer()
    chord_ids = {i for t, i in reference.vocab.items() if t.startswith("Chord_")}
    items, rejected, identical = [], 0, 0
    for path in paths:
        song = read_song(path)
        melody = max(range(len(song.tracks)), key=lambda i: len(song.tracks[i]))
        args = (Notes.of(song.tracks[melody]), song.ppqn, song.time_signatures, song.tempos)
        try:
            ids = ours.encode(*args)
        except ValueError:
            rejected += 1
            continue
        score = symusic.Score(str(path))
        ref = [i for seq in reference.encode(score) for i in seq.ids if i not in chord_ids]
        identical += list(ids) == ref
        items.append((args, score))
    notes = sum(len(args[0]) for args, _ in items)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    riffd_s = best(lambda: [ours.encode(*args) for args, _ in items])
    miditok_s = best(lambda: [reference.encode(score) for _, score in items])
    result = {"files": len(items), "rejected_meter": rejected, "identical_to_miditok": identical,
              "notes": notes, "riffd_notes_per_s": round(notes / riffd_s), "miditok_notes_per_s": round(notes / miditok_s),
              "speedup": round(miditok_s / riffd_s, 1), "kernel": "cython" if _compiled() else "python twin"}
    echo(f"{result['files']} files ({rejected} left out: mixed beat units), {notes} notes; "
         f"identical to miditok: {identical}/{len(items)}")
    echo(f"riffd {result['riffd_notes_per_s']:,} notes/s, miditok {result['miditok_notes_per_s']:,} notes/s: "
         f"{result['speedup']}x ({result['kernel']})")
    if as_json:
        echo(json.dumps(result))
    return result


def _compiled() -> bool:
    from riffd.cython_ext import is_compiled
    from riffd.cython_ext import remi
    return is_compiled(remi)
