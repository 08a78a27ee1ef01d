"""What a melody is made of, measured the same way for real and generated melodies.

A melody is a list of ``MelodyNote`` (start and duration in quarter-note beats, MIDI
pitch) over a chord timeline (``ChordAt``). Every measure here is per melody:

- ``chord_tone_ratio``: notes whose pitch class is a tone of the chord at their onset;
- ``pc_entropy``: Shannon entropy of the pitch-class histogram, bits (0 to log2 12);
- ``notes_per_bar``; ``range``: highest minus lowest pitch, semitones;
- ``repetition_2bar``: the share of 2-bar segments (after the first) that repeat an
  earlier one, transposed or not: their (onset, pitch above the segment's first note)
  sets overlap by at least ``REPEAT_JACCARD`` (so a varied repeat counts, a new phrase
  does not);
- ``self_similarity_8bar``: per bar, the best such overlap with any of the 8 bars
  before it, averaged (form within an 8-bar phrase);
- ``valid``: 1.0 when every pitch is 0-127, every duration positive and the line one
  voice (overlaps of up to 1/16 beat allowed), else 0.0;
- four histograms, each normalized to sum 1: ``chord_pc`` (pitch class above the chord
  root, 12 bins), ``interval`` (semitones between successive notes, clipped to +-12, 25
  bins), ``onset`` (position within the beat at 1/12-beat resolution, 12 bins) and
  ``duration`` (``DURATION_EDGES`` in beats, 9 bins).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from riffd.models.protocol import ChordAt, MelodyNote

REPEAT_JACCARD = 0.75  # a repeat with a note or two changed still counts
DURATION_EDGES = (0.26, 0.51, 0.76, 1.01, 1.51, 2.01, 3.01, 4.01)  # upper edges, beats
HISTOGRAMS = {"chord_pc": 12, "interval": 25, "onset": 12, "duration": len(DURATION_EDGES) + 1}
SCALARS = ("chord_tone_ratio", "pc_entropy", "notes_per_bar", "range", "repetition_2bar",
           "self_similarity_8bar", "valid")


def _bin_names() -> list[str]:
    edges = ("0",) + tuple(f"{e:g}" for e in DURATION_EDGES)
    return ([f"chord pc +{i}" for i in range(12)]
            + [f"interval {i - 12:+d}" if i != 12 else "interval 0 (repeated note)" for i in range(25)]
            + [f"onset {i}/12 beat" for i in range(12)]
            + [f"duration {a}-{b} beats" for a, b in zip(edges, edges[1:])] + [f"duration over {edges[-1]} beats"])


# what each entry of MelodyFeatures.vector() measures, in its order
FEATURE_NAMES = [k for k in SCALARS if k != "valid"] + _bin_names()


@dataclass
class MelodyFeatures:
    """The scalars (``SCALARS``) and histograms (``HISTOGRAMS``) of one melody."""
    scalars: dict[str, float]
    histograms: dict[str, np.ndarray]

    def vector(self) -> np.ndarray:
        """Every scalar but ``valid``, then every histogram: shape (6 + 58,)."""
        return np.concatenate([[self.scalars[k] for k in SCALARS if k != "valid"]]
                              + [self.histograms[k] for k in HISTOGRAMS])


def chord_at(chords: list[ChordAt], beat: float):
    """The chord sounding at ``beat`` (None before the first)."""
    i = bisect.bisect_right([c.beat for c in chords], beat + 1e-9) - 1
    return chords[i].chord if i >= 0 else None


def _normalized(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))


def _signature(notes: list[MelodyNote], start: float) -> frozenset:
    """(onset in twelfths of a beat from ``start``, pitch above the first note): a
    transposition-invariant picture of a segment."""
    if not notes:
        return frozenset()
    first = notes[0].pitch
    return frozenset((round((n.start - start) * 12), n.pitch - first) for n in notes)


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _segments(notes: list[MelodyNote], span: float, length: float, origin: float) -> list[frozenset]:
    count = max(int(math.ceil((length - origin) / span - 1e-9)), 0)
    out = []
    for k in range(count):
        lo = origin + k * span
        out.append(_signature([n for n in notes if lo - 1e-9 <= n.start < lo + span - 1e-9], lo))
    return out


def repetition(notes: list[MelodyNote], bar_beats: float, length: float, origin: float = 0.0) -> float:
    """The share of non-empty 2-bar segments after the first that repeat an earlier one."""
    segs = _segments(notes, 2 * bar_beats, length, origin)
    later = [k for k in range(1, len(segs)) if segs[k]]
    if not later:
        return 0.0
    return sum(any(_jaccard(segs[k], segs[j]) >= REPEAT_JACCARD for j in range(k)) for k in later) / len(later)


def self_similarity(notes: list[MelodyNote], bar_beats: float, length: float, origin: float = 0.0) -> float:
    """Per non-empty bar after the first, the best overlap with one of the 8 bars before."""
    bars = _segments(notes, bar_beats, length, origin)
    best = [max(_jaccard(bars[k], bars[j]) for j in range(max(0, k - 8), k)) for k in range(1, len(bars)) if bars[k]]
    return float(np.mean(best)) if best else 0.0


def valid(notes: list[MelodyNote]) -> bool:
    """Pitches 0-127, positive durations, one voice (overlaps up to 1/16 beat)."""
    ordered = sorted(notes, key=lambda n: n.start)
    return (all(0 <= n.pitch <= 127 and n.duration > 0 for n in ordered)
            and all(b.start >= a.end - 1 / 16 - 1e-9 for a, b in zip(ordered, ordered[1:])))


def features(notes: list[MelodyNote], chords: list[ChordAt], bar_beats: float, length: float,
             origin: float = 0.0) -> MelodyFeatures:
    """The features of ``notes`` over ``chords``, a piece of ``length`` beats whose bars
    start at ``origin`` (beats) and last ``bar_beats``."""
    notes = sorted(notes, key=lambda n: n.start)
    hist = {k: np.zeros(n) for k, n in HISTOGRAMS.items()}
    tones = []
    for n in notes:
        chord = chord_at(chords, n.start)
        if chord is not None:
            tones.append(n.pitch % 12 in chord.tones)
            hist["chord_pc"][(n.pitch - chord.root) % 12] += 1
        hist["onset"][round((n.start % 1.0) * 12) % 12] += 1
        hist["duration"][bisect.bisect_left(DURATION_EDGES, n.duration)] += 1
    for a, b in zip(notes, notes[1:]):
        hist["interval"][min(max(b.pitch - a.pitch, -12), 12) + 12] += 1
    pcs = _normalized(np.bincount([n.pitch % 12 for n in notes], minlength=12).astype(float))
    nz = pcs[pcs > 0]
    bars = max((length - origin) / bar_beats, 1e-9)
    scalars = {
        "chord_tone_ratio": float(np.mean(tones)) if tones else 0.0,
        "pc_entropy": float(-(nz * np.log2(nz)).sum()) if notes else 0.0,
        "notes_per_bar": len(notes) / bars,
        "range": float(max(n.pitch for n in notes) - min(n.pitch for n in notes)) if notes else 0.0,
        "repetition_2bar": repetition(notes, bar_beats, length, origin),
        "self_similarity_8bar": self_similarity(notes, bar_beats, length, origin),
        "valid": float(valid(notes)),
    }
    return MelodyFeatures(scalars, {k: _normalized(v) for k, v in hist.items()})


def kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-3) -> float:
    """KL(p || q) in nats of two histograms, each smoothed by ``eps`` per bin (so a bin a
    model never plays costs a finite amount) and renormalized."""
    p, q = (p + eps) / (p + eps).sum(), (q + eps) / (q + eps).sum()
    return float((p * np.log(p / q)).sum())


def pooled(rows: list[MelodyFeatures], name: str) -> np.ndarray:
    """A histogram pooled over melodies (each melody weighs the same)."""
    return _normalized(np.sum([r.histograms[name] for r in rows], axis=0))
