"""Real arrangements in, melody and chords out: what `riffd eval DIR` compares against.

Folders of real music come in every shape. Per file, its parts are its tracks (a type-0
file's channels, read_song), a track that holds several channels split into one part per
channel (``parts``); then:

- the melody track is the first of: the first track named like a melody
  (``MELODY_NAMES``; a name that says melody, lead or vocal, ``LEAD_NAMES``, before a
  choir's "voice 1" or "soprano"), else the highest-sounding track that is one voice
  once overlaps of up to 1/8 beat are trimmed (a sung or played line overlaps itself by
  a few ticks; at most ``MAX_CHORDAL`` of its notes may still overlap, which the skyline
  then drops), averages C3 or higher (``BASS_UNDER``: under it, a bass line) and is not
  named like an accompaniment (``CHORD_NAMES``; else one that is), as ``tune_among``
  says, with what other parts named like a melody sing where it rests a bar or more
  (``taken_up``: a solo verse, then the choir's refrain), else
  the top line of the highest part that plays a tune over its own chords (a piano's
  right hand, or both hands in one track: ``tune_on_top``), the rest of it accompaniment;
- the chords are named per beat of the meter (``beat_starts``: a half note in 4/2, a
  dotted quarter in 6/8, never shorter than a quarter) from every other track but drums
  (channel 10) with riffd's recognizer (riffd.music.chords): the pitches sounding for at least a quarter
  of the beat's busiest pitch's time, the bass the lowest of them (with the next beat
  too where a beat alone sounds fewer than three pitch classes: broken chords; but a
  weak beat whose pitch classes the chord before holds goes on with it: ``beat_chords``);
  a beat the recognizer cannot name keeps the chord before; equal neighbours merge into
  one change.

A melody played rather than written on the grid is snapped to the rhythm it plays
(timing.snapped). Each file gets a one-line account of what was found
(``Arrangement.found``), or a reason it was skipped (``ArrangementError``).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from riffd.bridges.events import DRUM_CHANNEL
from riffd.bridges.midifile import (MidiInputError, TrackNote, by_channel, drums_only, late_release, pedalled,
                                   read_song)
from riffd.models.meters import song_meters
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.music.chords import recognize

from .timing import snapped

MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|voz|sing|soprano|\bsolo|tune|theme|\bmel\b", re.IGNORECASE)
# of those, the names that say so, before a choir's part
LEAD_NAMES = re.compile(r"melod|lead|vocal|sing|\bsolo|tune|theme|\bmel\b", re.IGNORECASE)
# an accompaniment's names: a track of these that plays one voice is broken chords
CHORD_NAMES = re.compile(r"chord|\barp|\bpad|keys|piano|guitar|gtr|\bcomp|accomp|strum|pluck", re.IGNORECASE)
MAX_CHORDAL = 0.1
MIN_NOTES = 8
TUNE_ALONE = 0.4  # of a top line's notes, the share that start alone: a tune over chords, not a voicing's top
TUNE_ABOVE = 3  # semitones: its lone notes over the track's other notes, on average (a tune, not an oom-pah bass)
TOP_LINE = "the top line of a part that plays a tune over its chords"
BASS_UNDER = 48  # MIDI pitch, C3: a one-voice part whose notes average under it is a bass line, not a tune
# a tune's rest of a bar (beats) or more, where another part named like a melody may sing it (``taken_up``),
# if that part sings that much of its notes there: a solo verse, then the choir's refrain
HANDOFF_BEATS, HANDOFF_SHARE = 4, 0.9


class ArrangementError(ValueError):
    """A file riffd cannot take a melody and chords from; the message says why."""


@dataclass
class Arrangement:
    """A real melody over its chords; beats are quarter notes from the file's start."""
    name: str
    melody: list[MelodyNote]
    chords: list[ChordAt]
    meter: tuple[int, int]
    tempo: float
    length: float
    origin: float = 0.0  # where bar 1 starts, beats
    style: str = "user"
    time_signatures: list[tuple[float, int, int]] = field(default_factory=list)  # (beat, num, den)
    found: dict = field(default_factory=dict)
    given: list[MelodyNote] = field(default_factory=list)  # the melody before ``origin`` the models go on from
    ends: bool = True  # the tune ends at ``length`` (a continuation's window may stop inside it)
    call: bool = False  # ``given`` is a live call the models answer (call-response), not a file's melody

    @property
    def bar_beats(self) -> float:
        return self.meter[0] * 4 / self.meter[1]

    @classmethod
    def of_split(cls, pieces, name: str) -> list[Arrangement]:
        """A dataset split's decoded pieces (riffd.models.training.evaluate.TestPiece) as
        arrangements named ``name-0``, ``name-1``, ...; each as long as its whole bars."""
        return [cls(f"{name}-{i}", p.notes, p.chords, p.meter, p.tempo, p.bars * p.meter[0] * 4 / p.meter[1],
                    style=p.style) for i, p in enumerate(pieces)]


def trimmed(notes: list[TrackNote], tolerance: int) -> tuple[list[TrackNote], int]:
    """The skyline of ``notes``: notes starting together keep the highest that sounds (a
    zero-length grace note struck with its main note, as music21 writes one, gives way),
    a note cut at the next onset when it overlaps by up to ``tolerance`` ticks or by under
    half the next note (``late_release``: legato, not a second voice); returns it and how
    many notes overlapped by more (chordal notes; a lower one is dropped)."""
    def sounding_high(n):
        return n.end > n.start, n.pitch
    by_start: dict[int, TrackNote] = {}
    for n in notes:
        if n.start not in by_start or sounding_high(n) > sounding_high(by_start[n.start]):
            by_start[n.start] = n
    line = []
    chordal = sum(n.end > n.start for n in notes) - sum(n.end > n.start for n in by_start.values())
    for n in sorted(by_start.values()):
        if line and line[-1].end > n.start:
            last = line[-1]
            if not late_release(last.end - n.start, n.end - n.start, tolerance):
                chordal += 1
                if n.pitch < last.pitch:
                    continue  # an inner voice under a held melody note
            line[-1] = TrackNote(last.start, n.start, last.pitch, last.velocity, last.channel)
        line.append(n)
    return line, chordal


def mean_pitch(notes) -> float:
    """The average MIDI pitch of ``notes`` (objects with ``pitch``; at least one)."""
    return sum(n.pitch for n in notes) / len(notes)


def bass_line(notes) -> bool:
    """Whether a line of ``notes`` in one voice averages under BASS_UNDER (C3): a bass, not a tune."""
    return mean_pitch(notes) < BASS_UNDER


def struck_alone(line: list[TrackNote], track: list[TrackNote], ppqn: int) -> list[bool]:
    """For each note of ``line`` (of ``track``): whether no other note of ``track`` starts
    within 1/16 beat of it (a strum's strings start together)."""
    starts, near = sorted(n.start for n in track), ppqn // 16
    return [bisect.bisect_right(starts, n.start + near) - bisect.bisect_left(starts, n.start - near) == 1
            for n in line]


def sketched_tune(track: list[TrackNote], ppqn: int) -> list[TrackNote]:
    """The tune on top of a keyboard part that plays it, then chords alone (a sketch: the
    verse's tune in the right hand, the rest left to riffd): the part's skyline
    (``trimmed``) up to its last note struck alone, where that much of the part is a tune
    on top (``tune_on_top``); [] where it is not. Notes in ticks."""
    line, _ = trimmed(track, ppqn // 8)
    lone = [i for i, alone in enumerate(struck_alone(line, track, ppqn)) if alone]
    if not lone:
        return []
    tune = line[:lone[-1] + 1]
    return tune if tune_on_top([n for n in track if n.start < tune[-1].end], tune, ppqn) else []


def tune_on_top(track: list[TrackNote], line: list[TrackNote], ppqn: int) -> bool:
    """Whether ``line``, the skyline (``trimmed``) of ``track``, is a tune played over the
    track's chords: TUNE_ALONE of its notes or more start alone (no other note of the
    track within 1/16 beat: a strum's strings start together), and those lie TUNE_ABOVE
    semitones or more over the track's notes outside the line, on average."""
    alone = [n for n, lone in zip(line, struck_alone(line, track, ppqn)) if lone]
    tops = {(n.start, n.pitch) for n in line}
    under = [n.pitch for n in track if (n.start, n.pitch) not in tops]
    return (len(alone) >= TUNE_ALONE * len(line) and bool(under)
            and mean_pitch(alone) - sum(under) / len(under) >= TUNE_ABOVE)


def parts(song) -> tuple[list[list[TrackNote]], list[str], list[list]]:
    """``song``'s parts (note lists), their names and their sustain pedals (Song.pedals'
    of the track each came from): each of its tracks (a file with all its notes in one
    track is read per channel already: read_song), or, where a track holds notes on several
    channels, one part per channel, named "TRACK channel N" (N 1-16)."""
    notes, names, pedals = [], [], []
    for k, (track, name) in enumerate(zip(song.tracks, song.names)):
        split = by_channel(track)
        sustain = song.pedals[k]
        if len(split) <= 1:
            notes.append(track)
            names.append(name)
            pedals.append(sustain)
            continue
        for channel, part in split.items():
            notes.append(part)
            names.append(f"{name or 'track'} channel {channel + 1}")
            pedals.append(sustain)
    return notes, names, pedals


def melody_track(tracks: list[list[TrackNote]], names: list[str],
                 ppqn: int) -> tuple[int, str, tuple[list[TrackNote], int], list[int]]:
    """(index, how it was found, its ``trimmed`` line and chordal count, the parts
    ``taken_up`` into that line where it rests) of the melody among ``tracks`` (parts) at
    ``ppqn``: ``tune_among`` the parts named like a melody and those in one voice once
    trimmed, else a piano's tune on top; raises ArrangementError."""
    tolerance = ppqn // 8
    playable = [k for k, t in enumerate(tracks) if len(t) >= MIN_NOTES and not drums_only(t)]
    lines = {k: trimmed(tracks[k], tolerance) for k in playable}
    voiced = {k: lines[k][0] for k in playable
              if MELODY_NAMES.search(names[k] or "") or lines[k][1] <= MAX_CHORDAL * len(tracks[k])}
    best = tune_among(voiced, names)
    if best is not None:
        how = f"named {names[best]!r}" if MELODY_NAMES.search(names[best] or "") else "the highest one-voice track"
        line, taken = taken_up(best, {k: lines[k][0] for k in voiced}, names, ppqn)
        if taken:
            how += ", " + ", ".join(f"then {names[k]!r} where it rests" for k in taken)
        return best, how, (line, lines[best][1]), taken
    tops = [k for k in playable if tune_on_top(tracks[k], lines[k][0], ppqn)]  # a piano's right hand
    if not tops:
        raise ArrangementError("no melody track: no track plays one voice (a bass line, under C3, is "
                               "none), or a tune over its own chords")
    best = max(tops, key=lambda k: mean_pitch(lines[k][0]))
    return best, TOP_LINE, lines[best], []


def taken_up(best: int, lines: dict[int, list[TrackNote]], names: list[str], ppqn: int) -> tuple[list, list[int]]:
    """The tune ``lines[best]`` (one voice, ticks) with what the other parts of ``lines``
    named like a melody (MELODY_NAMES, leads first) sing where it rests HANDOFF_BEATS or
    more: a verse's solo voice, then the choir's soprano in the refrain (Aloha 'Oe); a lead
    vocal split over two tracks. A part is taken up where at least HANDOFF_SHARE of its
    notes, and MIN_NOTES, begin in those rests (a choir's other voice, singing with the
    tune, is not); a note taken up ends where the tune sings again. Returns the line
    (sorted) and the parts taken up (indices)."""
    line, taken = list(lines[best]), []
    for _, k in sorted((not LEAD_NAMES.search(names[k] or ""), k) for k in lines
                       if k != best and MELODY_NAMES.search(names[k] or "")):
        edges = [-1, *(n.start for n in line), float("inf")]
        ends = [-1, *(n.end for n in line)]
        inside = []
        for n in lines[k]:
            i = bisect.bisect_right(edges, n.start)  # the tune's next note is edges[i]
            if edges[i] - ends[i - 1] >= HANDOFF_BEATS * ppqn and ends[i - 1] <= n.start:
                inside.append(TrackNote(n.start, min(n.end, edges[i]), n.pitch, n.velocity, n.channel))
        if len(inside) >= max(MIN_NOTES, HANDOFF_SHARE * len(lines[k])):
            line, taken = sorted(line + inside), taken + [k]
    return line, taken


def tune_among(lines: dict[int, list], names: list[str]) -> int | None:
    """The melody's index among ``lines`` (part index -> its notes in one voice, one or
    more; ``names`` by part index): the first named like a melody (MELODY_NAMES; a name
    that says so, LEAD_NAMES, before a choir's part: "melody" before "voice 1"; a lead
    vocal before its harmonies, a choir's first soprano), else the highest-sounding
    (``mean_pitch``) of those that are no ``bass_line`` and not named like an
    accompaniment (CHORD_NAMES: a one-voice arpeggio, a picked guitar), else of those that
    are no bass line; None where there is none. `riffd eval`, the datasets and `riffd
    render --continue` find a file's melody alike."""
    named = sorted((not LEAD_NAMES.search(names[k] or ""), k) for k in lines if MELODY_NAMES.search(names[k] or ""))
    if named:
        return named[0][1]
    tunes = [k for k in lines if not bass_line(lines[k])]
    plain = [k for k in tunes if not CHORD_NAMES.search(names[k] or "")]
    return max(plain or tunes, key=lambda k: mean_pitch(lines[k])) if tunes else None


def _weights(tracks, lo: int, hi: int) -> dict[int, int]:
    """Ticks each pitch sounds within [lo, hi), drums left out."""
    weight: dict[int, int] = {}
    for track in tracks:
        for n in track:
            overlap = min(n.end, hi) - max(n.start, lo)
            if overlap > 0 and n.channel != DRUM_CHANNEL:
                weight[n.pitch] = weight.get(n.pitch, 0) + overlap
    return weight


def _struck(tracks, lo: int, hi: int) -> bool:
    """Whether a note of ``tracks`` but the drums' starts within [lo, hi) (ticks)."""
    return any(lo <= n.start < hi and n.channel != DRUM_CHANNEL for track in tracks for n in track)


def beat_ticks(num: int, den: int, ppqn: int) -> int:
    """Ticks of one beat of meter ``num``/``den``: the denominator's note, three of them in
    compound meters (6/8, 9/8, 12/8, 6/16 ...), and never less than a quarter note (a
    chord per eighth of 3/8 would name passing notes)."""
    unit = ppqn * 4 // den
    return max(ppqn, unit * 3 if den >= 8 and num % 3 == 0 and num > 3 else unit)


def _meter_spans(time_signatures: list[tuple[int, int, int]], length: int):
    """(start, end, num, den) ticks of each meter of ``time_signatures`` up to ``length``
    (none, or none at tick 0: 4/4 there)."""
    sigs = [(t, n, d) for t, n, d in time_signatures if t < length] or [(0, 4, 4)]
    if sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    for k, (tick, num, den) in enumerate(sigs):
        yield tick, sigs[k + 1][0] if k + 1 < len(sigs) else length, num, den


def beat_starts(time_signatures: list[tuple[int, int, int]], ppqn: int, length: int) -> list[int]:
    """Ticks where the beats of ``time_signatures`` ((tick, num, den), sorted; none: 4/4)
    start, up to ``length`` ticks, each meter's beats counted from its own start."""
    return [b for tick, end, num, den in _meter_spans(time_signatures, length)
            for b in range(tick, end, beat_ticks(num, den, ppqn))]


def strong_beats(time_signatures: list[tuple[int, int, int]], ppqn: int, length: int) -> set[int]:
    """Ticks of the beats (``beat_starts``) where chords mostly change: each bar's first,
    and the middle one of a bar of four or more beats in an even number (beat 3 of 4/4,
    of 4/2, the third dotted quarter of 12/8)."""
    out: set[int] = set()
    for tick, end, num, den in _meter_spans(time_signatures, length):
        bar, beat = num * ppqn * 4 // den, beat_ticks(num, den, ppqn)
        halves = round(bar / beat) % 2 == 0 and bar >= 4 * beat
        out.update(b for b in range(tick, end, beat) if (b - tick) % bar in ((0, bar // 2) if halves else (0,)))
    return out


def beat_chords(tracks: list[list[TrackNote]], ppqn: int, starts: list[int], length: int,
                strong: set[int] | frozenset[int] = frozenset()) -> list[ChordAt]:
    """The chord of each beat (ticks ``starts``, to ``length``) from ``tracks``
    (accompaniment), merged into changes at their beats (quarter notes), each from the
    pitches sounding a quarter of its busiest pitch's time or more. A beat whose pitches
    so counted hold fewer than three pitch classes (a broken chord, a bass line; a played
    note's few ticks over the beat line do not count) is named with the beat after it too,
    unless it is a weak beat (not in ``strong``, ticks) whose pitch classes are all the
    chord before's tones: that chord goes on (an arpeggio's last beat, E G after C, is not
    named with the next bar's bass, and a bar's first beat sounding C alone after F can
    still begin C7). One where no note is struck and none sounds a quarter of it (only
    notes let go late) keeps the chord before. docs/measured.md, "A broken chord's thin
    beat, everywhere", measures the rule against chords known."""
    out: list[ChordAt] = []
    ends = [*starts[1:], length]
    for b, lo in enumerate(starts):
        weight = _weights(tracks, lo, ends[b])
        top = max(weight.values(), default=0)
        if 0 < top < (ends[b] - lo) / 4 and not _struck(tracks, lo, ends[b]):  # only notes let go late
            continue
        pcs = {p % 12 for p, w in weight.items() if w >= top / 4}  # the pitches it is named from
        if len(pcs) < 3:
            if lo not in strong and out and pcs and pcs <= out[-1].chord.tones:
                continue
            weight = _weights(tracks, lo, ends[min(b + 1, len(ends) - 1)])
        if not weight:
            continue
        top = max(weight.values())  # the next beat's too, for a thin one
        chord = recognize([p for p, w in weight.items() if w >= top / 4])
        if chord is not None and (not out or out[-1].chord != chord):
            out.append(ChordAt(lo / ppqn, chord))
    return out


def song_chords(song, tracks: list[list[TrackNote]]) -> list[ChordAt]:
    """``beat_chords`` of ``tracks`` (some of ``song``'s) per beat of the song's meters, to
    the end of the song's last beat: render, the evaluation and the datasets name chords
    alike (docs/measured.md, "A broken chord's thin beat, everywhere")."""
    length = (int(song.length_ticks / song.ppqn) + 1) * song.ppqn
    sigs = song.time_signatures
    return beat_chords(tracks, song.ppqn, beat_starts(sigs, song.ppqn, length), length,
                       strong_beats(sigs, song.ppqn, length))


def read_arrangement(path: str | Path) -> Arrangement:
    """Melody and chords of one MIDI file; raises ArrangementError (MidiInputError's
    message included) when there is no usable melody or no chords."""
    path = Path(path)
    try:
        song = read_song(path)
    except MidiInputError as exc:
        raise ArrangementError(str(exc).replace(str(path), path.name)) from None
    tracks, names, pedals = parts(song)
    index, how, (line, chordal), taken = melody_track(tracks, names, song.ppqn)
    sung = {(n.start, n.pitch) for n in line}  # a part taken up stays accompaniment but for the notes the tune took
    # the accompaniment as it sounds: a pianist's broken chords are held by the sustain pedal
    accompaniment = [pedalled([n for n in t if k not in taken or (n.start, n.pitch) not in sung], pedals[k])
                     for k, t in enumerate(tracks) if k != index]
    if how == TOP_LINE:  # the chords under the tune play on in its own part
        tops = {(n.start, n.pitch) for n in line}
        accompaniment.append(pedalled([n for n in tracks[index] if (n.start, n.pitch) not in tops], pedals[index]))
    chords = song_chords(song, accompaniment)
    if not chords:
        raise ArrangementError("no chords: nothing besides the melody track plays two or more pitch classes")
    melody = [MelodyNote(n.start / song.ppqn, max(n.end - n.start, 1) / song.ppqn, n.pitch, n.velocity) for n in line]
    melody, grid = snapped(melody)  # a person's timing, measured as the rhythm played
    sigs, meter = song_meters(song)  # its meter: not a pickup bar's (models/meters.py)
    found = {"file": path.name, "melody_track": index, "melody_part": names[index] or "",
             "melody_taken_up": [names[k] or f"part {k}" for k in taken],
             "melody_found_as": how, "melody_notes": len(melody), "melody_snapped_to": grid,
             "chordal_notes_dropped": chordal, "chord_changes": len(chords), "meter": list(meter)}
    return Arrangement(path.stem, melody, chords, meter, song.tempo, song.length_ticks / song.ppqn,
                       found=found, time_signatures=sigs)


def read_folder(folder: str | Path, echo=print) -> tuple[list[Arrangement], list[dict]]:
    """Every ``.mid``/``.midi`` file under ``folder`` (sorted): the arrangements read, and
    one account per file (what was found, or ``{"file", "skipped"}`` with the reason)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())
    pieces, accounts = [], []
    for path in files:
        try:
            piece = read_arrangement(path)
        except ArrangementError as exc:
            accounts.append({"file": path.name, "skipped": str(exc)})
            echo(f"riffd eval: {path.name}: skipped: {exc}")
            continue
        pieces.append(piece)
        accounts.append(piece.found)
    return pieces, accounts
