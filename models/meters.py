"""A melody over a file whose meter changes: each meter's stretch in its own bars.

A model counts bars from beat 0 in its preset's one meter. A file that changes meter
(four bars of 4/4, then 3/4) would be played in 4/4 throughout, its downbeats a beat
off the file's from the first 3/4 bar on. Here each stretch of one meter is played
with the preset in that meter, the model started again where the stretch begins, its
clock shifted (by less than a bar, never below 0) so that the stretch begins on a bar
line of its own; what was played before is the model's context, as with
``riffd render --continue``. A meter the model never learned keeps the one before.
A file's short first bar written as a time signature of its own (an anacrusis: 1/4
before 4/4) is such a stretch; the file's meter is the one that lasts longest.
"""
from __future__ import annotations

from collections.abc import Sequence

from riffd.presets import PresetError

from .protocol import ChordAt, Context, MelodyModel, MelodyNote, MeterError, one_voice


def meter_spans(time_signatures: Sequence[tuple[float, int, int]], end: float,
                first: tuple[int, int]) -> list[tuple[float, float, tuple[int, int]]]:
    """(from, to, (num, den)) in beats covering 0 to ``end``, one per run of a meter; its
    bars count from ``from``. ``time_signatures`` are (beat, num, den), sorted; ``first``
    is the meter before the first of them."""
    spans: list[tuple[float, float, tuple[int, int]]] = [(0.0, end, first)]
    for beat, num, den in time_signatures:
        a, _, meter = spans[-1]
        if (num, den) == meter or beat >= end - 1e-9:
            continue
        if beat <= a + 1e-9:
            spans[-1] = (a, end, (num, den))
        else:
            spans[-1] = (a, beat, meter)
            spans.append((beat, end, (num, den)))
    return spans


def bar_lines(time_signatures: Sequence[tuple[float, int, int]], end: float,
              first: tuple[int, int]) -> list[float]:
    """The beats of the bar lines from 0 to ``end``, each meter's counted from where it
    begins (``meter_spans``)."""
    lines: list[float] = []
    for a, b, (num, den) in meter_spans(time_signatures, end, first):
        bar, k = num * 4 / den, 0
        while a + k * bar < b - 1e-9:
            lines.append(a + k * bar)
            k += 1
        if b >= end - 1e-9 and a + k * bar <= end + 1e-9:  # the last bar's closing line
            lines.append(a + k * bar)
    return lines


def main_meter(time_signatures: Sequence[tuple[float, int, int]], end: float,
               first: tuple[int, int]) -> tuple[int, int]:
    """The meter that lasts longest from 0 to ``end`` (beats; the earlier of equals): a
    file's meter, where its first time signature may be a pickup's short bar (1/4
    before 4/4, as a notation program writes an anacrusis)."""
    totals: dict[tuple[int, int], float] = {}
    for a, b, meter in meter_spans(time_signatures, end, first):
        totals[meter] = totals.get(meter, 0.0) + b - a
    return max(totals, key=lambda m: totals[m])


def song_meters(song) -> tuple[list[tuple[float, int, int]], tuple[int, int]]:
    """A Song's (bridges/midifile.py) time signatures as (beat, num, den), and its meter
    (``main_meter``)."""
    sigs = [(tick / song.ppqn, num, den) for tick, num, den in song.time_signatures]
    return sigs, main_meter(sigs, song.length_ticks / song.ppqn, song.meter)


def play(model: MelodyModel, preset, chords: list[ChordAt], start: float, end: float,
         seed: int | None = None, notes: Sequence[MelodyNote] = (),
         time_signatures: Sequence[tuple[float, int, int]] = ()) -> tuple[list[MelodyNote], tuple[int, int]]:
    """``model``'s melody (one voice, beats) from ``start`` to ``end`` over ``chords``,
    with ``notes`` (the file's melody, for ``--continue``) as context (heard by the
    transformer and recalled by the form only in the stretch's own bars:
    Context.heard_since), and the meter of its last stretch. With one meter: ``model``
    started once at ``start``, as ever. Raises MeterError when the model cannot play the
    preset's meter."""
    out: list[MelodyNote] = []
    meter = tuple(preset.meter)
    spans = [s for s in meter_spans(time_signatures, end, meter) if s[1] > start + 1e-9]
    for k, (a, b, wanted) in enumerate(spans):
        for tried in dict.fromkeys((wanted, meter)):  # a meter it cannot play: the one before
            try:
                played = preset.with_values(meter=list(tried))
                bar = played.beats_per_bar
                shift = (bar - a % bar) % bar  # the stretch's bars count from where it begins
                model.start(Context(played, seed=None if seed is None else seed + k, start_beat=max(a, start) + shift,
                                    chords=[ChordAt(c.beat + shift, c.chord) for c in chords],
                                    notes=[MelodyNote(n.start + shift, n.duration, n.pitch, n.velocity)
                                           for n in (*notes, *out)], heard_since=a + shift))
            except (MeterError, PresetError):  # one it never learned, or a beat under a sixteenth (4/32)
                if tried == meter:
                    raise
                continue
            meter = tried
            break
        out += [MelodyNote(n.start - shift, n.duration, n.pitch, n.velocity)
                for n in one_voice(model.generate(b + shift)) if n.start - shift < b - 1e-9]
    return one_voice(out), meter
