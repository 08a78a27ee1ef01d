"""A played melody's notes snapped to the rhythm it plays, so that a person's performance
is measured as its notes, not as its micro-timing.

A melody played on a keyboard, or sung and transcribed, over a tempo map (the pop
arrangements of issue 12: human-played, 480 PPQN) starts its notes some milliseconds off
the beat's grid. Measured as they are, those milliseconds put a note struck just before
a chord change on the chord before, into a neighbouring onset bin (features.py bins
onsets per 1/12 beat) and out of a repeat. ``played`` tells such a melody from one
written on the grid (a score's, a step sequencer's: left as it is); ``snapped`` moves
its onsets and ends to the grid that fits it, straight sixteenths, eighth-note
triplets, or both (positions 0, 3, 4, 6, 8, 9 of 12 per beat): the simpler grid unless
it fits clearly worse (``SIMPLER``), as a DAW's quantize would be set by ear.
"""
from __future__ import annotations

import math

from riffd.models.protocol import MelodyNote

GRIDS = {"sixteenths": (0, 3, 6, 9), "triplets": (0, 4, 8), "sixteenths and triplets": (0, 3, 4, 6, 8, 9)}
OFF_GRID = 1 / 96  # beats: an onset farther than this from the 1/12-beat grid was played, not written
PLAYED_SHARE = 1 / 3  # of a melody's onsets off the grid: it was played
SIMPLER = 1.25  # a grid of one kind wins while its mean distance to the onsets is within this factor of both's


def _nearest(beat: float, positions: tuple[int, ...]) -> float:
    """The grid point (beats) nearest ``beat``; ``positions`` in twelfths of a beat."""
    base = math.floor(beat)
    return min(((base * 12 + p) / 12 for p in (*positions, 12)), key=lambda point: abs(point - beat))


def played(notes: list[MelodyNote]) -> bool:
    """True when more than ``PLAYED_SHARE`` of the onsets lie over ``OFF_GRID`` beats from
    every point of the 1/12-beat grid."""
    off = sum(abs(n.start * 12 - round(n.start * 12)) > OFF_GRID * 12 for n in notes)
    return bool(notes) and off > PLAYED_SHARE * len(notes)


def grid_of(notes: list[MelodyNote]) -> str:
    """The name (a key of ``GRIDS``) of the grid the onsets fit: sixteenths or triplets
    where its mean distance is within ``SIMPLER`` times that of both together."""
    def error(name):
        return sum(abs(_nearest(n.start, GRIDS[name]) - n.start) for n in notes) / max(len(notes), 1)
    both = error("sixteenths and triplets")
    fits = [name for name in ("sixteenths", "triplets") if error(name) <= SIMPLER * both + 1e-9]
    return min(fits, key=error) if fits else "sixteenths and triplets"


def snapped(notes: list[MelodyNote]) -> tuple[list[MelodyNote], str | None]:
    """``notes`` (one voice, sorted by start; beats) as written on their grid, and the
    grid's name; unchanged with None when they were not ``played``. Of notes whose onsets
    land on one point the last is kept (a grace note gives way to the note it graces);
    each end is snapped too, and kept after its start (by one grid step at least) and
    at or before the next onset."""
    if not played(notes):
        return notes, None
    name = grid_of(notes)
    positions = GRIDS[name]
    step = min(b - a for a, b in zip(positions, (*positions[1:], 12))) / 12
    starts = [_nearest(n.start, positions) for n in notes]
    kept = [k for k in range(len(notes)) if k + 1 == len(notes) or starts[k + 1] > starts[k] + 1e-9]
    out = []
    for i, k in enumerate(kept):
        start, n = starts[k], notes[k]
        end = max(_nearest(n.start + n.duration, positions), start + step)
        if i + 1 < len(kept):
            end = min(end, starts[kept[i + 1]])
        out.append(MelodyNote(start, end - start, n.pitch, n.velocity))
    return out, name
