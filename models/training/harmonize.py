"""Chords for a melody that has none: key finding, then one chord per half-bar or bar.

Used for the Essen, O'Neill and Ryan's tunes, which are melodies only; the dataset marks
such chords as estimated.

1. Key: Krumhansl-Schmuckler key finding, the duration-weighted pitch-class histogram
   correlated with the Krumhansl-Kessler probe-tone profiles (Krumhansl, "Cognitive
   Foundations of Musical Pitch", 1990, ch. 4).
2. Chords: the key's common chords (major: I ii iii IV V V7 vi; minor: i iv V V7 VI III
   VII) scored per half-bar by how much melody time falls on chord tones (notes on the
   window's downbeat count double, non-chord tones count against), plus a small prior
   for tonic, subdominant and dominant. A Viterbi path then picks the sequence, with a
   cost for changing chord that is higher mid-bar than at a bar line, so a chord lasts a
   whole bar unless the melody clearly asks for a change at the half-bar. This is the
   preference-rule approach of Temperley's harmonic analyzer (Temperley, "The Cognition
   of Basic Musical Structures", 2001, ch. 6), reduced to a key's common chords.
"""
from __future__ import annotations

import numpy as np

from riffd.music.chords import Chord

MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# (semitones above the tonic, quality, prior); priors favour tonic, dominant, subdominant.
MAJOR_CHORDS = ((0, "maj", 0.3), (2, "min", 0.0), (4, "min", -0.1), (5, "maj", 0.2),
                (7, "maj", 0.25), (7, "7", 0.1), (9, "min", 0.05))
MINOR_CHORDS = ((0, "min", 0.3), (5, "min", 0.2), (7, "maj", 0.25), (7, "7", 0.1),
                (8, "maj", 0.05), (3, "maj", 0.05), (10, "maj", 0.0))
CHANGE_AT_BAR, CHANGE_MID_BAR = 0.15, 0.6  # costs, in units of "quarter notes of fit"


def estimate_key(notes) -> tuple[int, str]:
    """(tonic pitch class 0-11, "major" or "minor") of ``notes`` (with .pitch and
    .duration in beats)."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.duration
    if not hist.any():
        return 0, "major"
    best = max(((np.corrcoef(hist, np.roll(profile, tonic))[0, 1], tonic, mode)
                for tonic in range(12) for profile, mode in ((MAJOR_PROFILE, "major"), (MINOR_PROFILE, "minor"))),
               key=lambda x: x[0])
    return best[1], best[2]


def _window_fit(notes, start: float, end: float, chord: Chord) -> float:
    fit = 0.0
    for n in notes:
        overlap = min(n.end, end) - max(n.start, start)
        if overlap <= 0:
            continue
        weight = overlap * (2.0 if abs(n.start - start) < 1e-6 else 1.0)
        fit += weight if n.pitch % 12 in chord.tones else -0.5 * weight
    return fit


def harmonize(notes, bar_beats: float, half_bar: bool, key: tuple[int, str] | None = None,
              end: float | None = None) -> list[tuple[float, float, Chord]]:
    """Estimated chords as (start_beat, end_beat, Chord), merged where a chord repeats.

    ``notes``: the melody (start/duration in quarter-note beats, bar lines at multiples
    of ``bar_beats``); ``half_bar``: whether a chord may change mid-bar (even meters).
    """
    if not notes:
        return []
    tonic, mode = key or estimate_key(notes)
    candidates = [(Chord((tonic + step) % 12, quality, (tonic + step) % 12), prior)
                  for step, quality, prior in (MAJOR_CHORDS if mode == "major" else MINOR_CHORDS)]
    end = end if end is not None else max(n.end for n in notes)
    width = bar_beats / 2 if half_bar else bar_beats
    starts = np.arange(0.0, end, width)
    fits = np.array([[_window_fit(notes, s, s + width, c) + prior * width for c, prior in candidates]
                     for s in starts])
    fits[-1] += [0.5 * width if c.root == tonic else 0.0 for c, _ in candidates]  # end on the tonic
    # Viterbi: score[j] = best total ending in chord j; change costs depend on bar position.
    score, back = fits[0].copy(), []
    for w in range(1, len(starts)):
        cost = CHANGE_AT_BAR if abs(starts[w] / bar_beats - round(starts[w] / bar_beats)) < 1e-6 else CHANGE_MID_BAR
        stay = score
        move = score.max() - cost * width
        pick = np.where(stay >= move, np.arange(len(candidates)), score.argmax())
        score = np.maximum(stay, move) + fits[w]
        back.append(pick)
    path = [int(score.argmax())]
    for pick in reversed(back):
        path.append(int(pick[path[-1]]))
    path.reverse()
    out: list[tuple[float, float, Chord]] = []
    for s, j in zip(starts, path):
        chord = candidates[j][0]
        if out and out[-1][2] == chord:
            out[-1] = (out[-1][0], min(s + width, end), chord)
        else:
            out.append((float(s), float(min(s + width, end)), chord))
    return out
