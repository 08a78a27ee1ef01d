"""Fit a checkpoint's sampling calibration (models/calibration.py) on real melodies.

The model plays the chords of ``pieces`` (a training split's, never the test split's)
with the preset; the shares of intervals, of pitch classes above the chord's root
(chord tones and others apart), of distances from the line's centre, of pitch-class
counts in the line's last notes and of Duration bins in what it played are compared with
the real melodies';
each table moves by ``rate`` times the log ratio real/played, and the model plays again
with it (``iterations`` rounds, each with fresh seeds: the corrections interact, as the
next pitch depends on the last). A fixed-point iteration on the marginals, as
iterative proportional fitting does for a table's margins (Deming and Stephan, Ann.
Math. Statist. 1940).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from riffd.models.calibration import (MAX_INTERVAL, MAX_NATS, MEMORY_BINS, RECENT_NOTES, Calibration, centre_bin,
                                     centre_of, chord_pc_bin, duration_bin, interval_bin, memory_bin)
from riffd.models.tokens import model_meter

from .arrangements import Arrangement
from .features import chord_at
from .suite import WIDE_REGISTER, play

SMOOTH = 2e-3  # added to each share before the log ratio: a bin never played is not pushed to +-infinity
TABLES = ("interval", "chord_pc", "centre", "memory", "duration")


def shares(melodies: list, pieces: list[Arrangement], tables=None) -> tuple[np.ndarray, ...]:
    """(interval shares, shape (25,); shares by chord tone or not and pitch class above
    the chord's root, shape (2, 12); shares of distances from the line's centre, shape
    (25,); shares of the pitch class's count in the line's last notes, shape (MEMORY_BINS,);
    shares of Duration bins, shape (bins of ``tables``, the REMI kernel's Tables; (0,)
    without them)) of ``melodies`` over ``pieces``' chords, pooled over notes; the layout
    of models/calibration.py's tables, binned as the neural model bins them (in the meter
    ``tokens.model_meter`` tells it)."""
    interval, chord_pc = np.zeros(2 * MAX_INTERVAL + 1), np.zeros((2, 12))
    centre, memory = np.zeros(2 * MAX_INTERVAL + 1), np.zeros(MEMORY_BINS)
    duration = np.zeros(0 if tables is None else len(tables.dur_ids))
    for notes, piece in zip(melodies, pieces):
        pitches = [n.pitch for n in sorted(notes, key=lambda n: n.start)]
        for i in range(1, len(pitches)):
            interval[interval_bin(pitches[i], pitches[i - 1])] += 1
            recent = pitches[max(0, i - RECENT_NOTES):i]
            centre[centre_bin(pitches[i], centre_of(recent))] += 1
            memory[memory_bin(pitches[i], recent)] += 1
        den = None if tables is None else model_meter(*piece.meter, tables.ts_ids)[1]
        for n in notes:
            chord = chord_at(piece.chords, n.start)
            if chord is not None:
                chord_pc[chord_pc_bin(n.pitch, chord)] += 1
            if tables is not None:
                duration[duration_bin(tables, n.duration, den)] += 1
    return tuple(h / max(h.sum(), 1e-12) for h in (interval, chord_pc, centre, memory, duration))


def fit(model, pieces: list[Arrangement], preset, iterations: int = 3, rate: float = 0.7, seed: int = 100,
        tables: tuple[str, ...] = TABLES, echo=print) -> Calibration:
    """The calibration of ``model`` (a NeuralModel; its ``calibration`` is set to each
    round's and left at the result) for ``pieces`` played with ``preset``: the tables of
    the round whose shares came closest to the real ones (round 0 is none at all).
    ``tables``: the ones fitted (the others stay zero). ``meta`` holds each round's L1
    distances (0 = equal shares, 2 = disjoint). Raises ValueError for fewer than 2 pieces."""
    if len(pieces) < 2:
        raise ValueError(f"calibration needs at least 2 pieces with a melody and chords ({len(pieces)})")
    real = shares([p.melody for p in pieces], pieces, model.tables)
    fitted = np.array([name in tables for name in TABLES], dtype=float)
    tried, rounds = [replace(Calibration.zero(), duration=np.zeros(len(real[-1])))], []
    for k in range(iterations + 1):
        model.calibration = tried[k]
        played = shares(play(model, pieces, preset, seed + k), pieces, model.tables)
        distance = [round(float(np.abs(r - p).sum()), 4) for r, p in zip(real, played)]
        rounds.append({f"{name}_l1": d for name, d in zip(TABLES, distance)})
        echo(f"round {k}: L1 from the real shares, intervals {distance[0]:.4f}, chord pitch classes {distance[1]:.4f}, "
             f"distances from the centre {distance[2]:.4f}, pitch-class memory {distance[3]:.4f}, "
             f"durations {distance[4]:.4f}")
        if k < iterations:
            step = [on * rate * np.log((r + SMOOTH) / (p + SMOOTH)) for on, r, p in zip(fitted, real, played)]
            last = tried[k]
            interval, chord_pc, centre, memory, duration = (
                np.clip(t + d, -MAX_NATS, MAX_NATS)
                for t, d in zip((last.interval, last.chord_pc, last.centre, last.memory, last.duration), step))
            tried.append(Calibration(interval, chord_pc, {}, centre, memory, duration))
    best = min(range(len(rounds)), key=lambda i: sum(d for d, on in zip(rounds[i].values(), fitted) if on))
    model.calibration = tried[best]
    return replace(tried[best], meta={"pieces": len(pieces), "iterations": iterations, "rate": rate,
                                      "tables": list(tables), "round_kept": best, "rounds": rounds})


def calibrate_checkpoint(folder: str | Path, data: str | Path, preset, pieces: int = 300, iterations: int = 3,
                         seed: int = 100, tables: tuple[str, ...] = TABLES, echo=print) -> Calibration:
    """Fit the checkpoint ``folder``'s weights (any calibration there is ignored) on
    ``pieces`` of dataset ``data``'s training split, played with ``preset`` over
    ``WIDE_REGISTER``, without swing and without its chord-tone bias (the preset's knob acts on top of
    the model's own shares; a fit with it would undo it), and write
    ``folder/calibration.json``; returns it. Raises
    ValueError (CheckpointError) for a folder that is not a checkpoint or too few pieces."""
    from riffd.models import checkpoint_model
    from riffd.models.training.evaluate import test_pieces
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a checkpoint folder (no config.json)")
    model = checkpoint_model(folder, calibrated=False)
    found = Arrangement.of_split(test_pieces(data, model.vocab, 1 << 20, pieces, split="train"), "train")
    # no swing: a swung note's Duration is not its length, and the tables are the model's own
    result = fit(model, found, preset.with_values(register=WIDE_REGISTER, chord_tone_bias=0.0, swing=0.0), iterations,
                 seed=seed, tables=tables, echo=echo)
    result.meta.update(data=str(data), preset=preset.name, seed=seed)
    result.save(folder)
    return result
