"""Where live phrases begin and end: call-response answers, and the accompaniment once
the player lets go.

An answer keeps the call's place in the bar. It starts on the first beat, once the
player has been silent ``response_wait_beats``, that lies a whole number of bars after
the call's first chord, and it replays the call's progression every whole number of
bars the call lasted, so that its changes fall on the beats of the bar where the
player's fell. (Starting on the next beat instead put a call's changes on the bar's
third or fourth beat; Magenta's MIDI interface likewise starts its response on its next
tick, a bar.) Accompanying, the melody rests on the bar line nearest two bars after the
player's last key (it stopped mid-beat, mid-note, before). Both end as the preset's
``ending`` says, as a ``/riffd/generate`` phrase does (models/ending.py).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from riffd.models.ending import end_as
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.presets import Preset


def answer_plan(chords: list[tuple[float, object]], chord, beat: float, call_end: float,
                preset: Preset) -> tuple[float, float, list[ChordAt]]:
    """(start, end, plan) of the answer to a call: ``chords`` its (beat, Chord) changes,
    ``chord`` the one sounding (the whole answer's, when the call struck none), ``beat``
    now and ``call_end`` the beat of the call's last key event. ``start`` is the first
    beat at or after ``beat`` a whole number of bars (the preset's meter) after the
    call's first chord, or the next bar line when it struck none; ``end`` is
    ``phrase_bars`` bars later; ``plan`` the call's changes from ``start``, repeated
    every whole number of bars the call lasted (a lone chord: the whole answer)."""
    bar = preset.beats_per_bar
    length = preset.phrase_bars * bar
    first = chords[0][0] if chords else 0.0
    start = first + bar * math.ceil((beat - first) / bar - 1e-9)
    if len(chords) < 2:
        return start, start + length, [ChordAt(start, chords[0][1] if chords else chord)]
    last = chords[-1][0] - first
    period = bar * max(1, round((call_end - first) / bar), math.floor(last / bar + 1e-9) + 1)
    plan, offset = [], 0.0
    while offset < length:
        plan += [ChordAt(start + offset + b - first, c) for b, c in chords if offset + b - first < length]
        offset += period
    return start, start + length, plan


def rest_beat(last: float, bars: float, preset: Preset) -> float:
    """The beat the accompaniment rests on: the bar line (of the preset's meter, from beat
    0) nearest ``bars`` bars after ``last``, the beat of the player's last key event (half
    a bar after a bar line: the next one)."""
    bar = preset.beats_per_bar
    return bar * math.floor((last + bars * bar) / bar + 0.5)


def ended(notes: Iterable[MelodyNote], plan: list[ChordAt], end: float, preset: Preset,
          begun: float | None = None) -> list[MelodyNote]:
    """``notes`` (one voice, beats) ended at ``end`` as the preset's ``ending`` and
    ``ending_beats`` say (models/ending.py, ``end_as``). ``begun``: the beat they were
    planned from; when that lies inside the last bar, whose first notes are planned
    already, they are only cut at ``end``."""
    inside = begun is not None and begun > end - preset.beats_per_bar + 1e-9
    return end_as(notes, plan, end, preset, how="model" if inside else None)
