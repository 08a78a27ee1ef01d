"""How a melody whose end is known ends: on the final chord, held to the end.

Render, the evaluation and ``/riffd/generate`` know where the music stops; the models do
not (they play on, note by note, and their last note was cut wherever the end fell). People's
tunes land: over ``riffd dataset songs`` folders of 30 O'Neill tunes, 60 Essen songs, 60
of Aird's airs, 60 of Ryan's tunes and 60 Bach chorale sopranos, the last note is the final
chord's root in 68-87 % of them, held to the end in all, and lasts 0.7 (Ryan's) to 5.2
(Essen) beats on the mean. riff-small's (folk preset), before this module, was the root in
22-33 %; in 77-98 % a note began in the last sixteenth (those files' tunes end 8 ticks after
their chords) and sounded as a click (docs/measured.md, "Endings").
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from riffd.models.protocol import ChordAt, MelodyNote, one_voice
from riffd.music.theory import felt_beat

MIN_TAIL = 0.25  # beats: a note that the end (or a rest) would cut shorter than a sixteenth is a click


def final_span(chords: list[ChordAt], end: float) -> tuple[float, float, object] | None:
    """(start, stop, chord) in beats of the last chord that sounds before ``end``: from
    its ChordAt to the next ChordAt (a "no chord") or ``end``. None when no chord does."""
    sounding = [k for k, c in enumerate(chords) if c.chord is not None and c.beat < end - 1e-9]
    if not sounding:
        return None
    k = sounding[-1]
    stop = chords[k + 1].beat if k + 1 < len(chords) else end
    return chords[k].beat, min(stop, end), chords[k].chord


def cut_at(notes: list[MelodyNote], stop: float) -> list[MelodyNote]:
    """``notes`` (one voice, beats) that begin before ``stop``, each ending there at the
    latest; one that would sound less than ``MIN_TAIL`` beats is left out."""
    out = []
    for n in notes:
        if n.start > stop - MIN_TAIL + 1e-9:
            continue
        out.append(n if n.end <= stop else MelodyNote(n.start, stop - n.start, n.pitch, n.velocity))
    return out


def landing_pitch(near: int, tones: frozenset[int], register: tuple[int, int]) -> int:
    """The pitch of ``tones`` (pitch classes) nearest ``near`` (MIDI) within ``register``
    (lowest, highest; the lower of two as near); ``near`` itself when no such pitch lies
    in the register."""
    lo, hi = register
    options = [p for p in range(lo, hi + 1) if p % 12 in tones]
    return min(options, key=lambda p: (abs(p - near), p)) if options else near


def land(notes: list[MelodyNote], chords: list[ChordAt], end: float, meter: tuple[int, int],
         register: tuple[int, int], how: str = "root", beats: float = 1.0) -> list[MelodyNote]:
    """``notes`` (one voice, beats) ended as the preset's ``ending`` (``how``) says:

    - ``model``: as the model played them, cut at ``end`` (``cut_at``);
    - ``root``: of the notes begun in the final chord's last bar (of ``meter``; from the
      chord's start when it is shorter), the last that can still sound ``beats`` beats
      (the preset's ``ending_beats``, in music.theory.felt_beat's beats) moves to the chord's root
      nearest it and holds to the chord's end; the notes after it go. With no such note,
      one is added where the bar (or the chord) starts, at the root nearest the note
      before, which ends there;
    - ``chord``: as ``root``, to the chord tone nearest it (a chord tone stays).

    People end so: a tune's last bar has a few notes, its last a beat or so long; a
    chorale's soprano holds the final chord (module docstring). The final chord's end is
    ``end``, or a "no chord" after it. Raises ValueError for another ``how``."""
    if how not in ("root", "chord", "model"):
        raise ValueError(f"unknown ending {how!r} (root, chord or model)")
    span = final_span(chords, end) if how != "model" else None
    if span is None:
        return cut_at(notes, end)
    first, stop, chord = span
    bar = meter[0] * 4 / meter[1]
    window = max(first, math.floor(stop - bar + 0.5))  # to the beat: a late release moves no bar line
    latest = max(window, stop - beats * felt_beat(meter))
    notes = cut_at(notes, stop)
    landing = [n for n in notes if window - 1e-9 <= n.start <= latest + 1e-9]
    start = landing[-1].start if landing else window
    before = [n for n in notes if n.start < start - 1e-9]
    if not landing and (not before or stop - start < MIN_TAIL - 1e-9):
        return notes  # nothing to land, or a final chord too short to hold a note
    model = landing[-1] if landing else before[-1]
    tones = frozenset({chord.root}) if how == "root" else chord.tones
    pitch = model.pitch if how == "chord" and model.pitch % 12 in tones else landing_pitch(model.pitch, tones, register)
    return cut_at(before, start) + [MelodyNote(start, stop - start, pitch, model.velocity)]


def end_as(notes: Iterable[MelodyNote], chords: list[ChordAt], end: float, preset,
           meter: tuple[int, int] | None = None, how: str | None = None) -> list[MelodyNote]:
    """``notes`` (made one voice) ended at ``end`` as ``preset`` (a Preset) says: ``land``
    with its meter (or ``meter``: a file's last), register, ``ending`` (or ``how``) and
    ``ending_beats``. Render, eval, ``/riffd/generate`` and the live engine end so."""
    return land(one_voice(notes), chords, end, tuple(meter or preset.meter), preset.register,
                how or preset.ending, preset.ending_beats)
