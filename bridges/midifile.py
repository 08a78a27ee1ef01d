"""MIDI files in, through mido: a file read into note lists per track, and its chord
track found. Writing them is bridges/midiwrite.py's.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import mido

from .events import DRUM_CHANNEL, PEDAL_CCS, pedal_down

CHORDAL_SHARE = 0.1  # of a chord track's onsets, more than this strike chords (as riffd eval's MAX_CHORDAL)
# A part of a file of three or more that sounds at most three notes at once, at under this
# share of its onsets, is a line with double stops (a quartet's cello), not a chord track.
STOPS_SHARE = 0.5


class MidiInputError(ValueError):
    """A MIDI file riffd cannot use; the message says which file and why."""


@dataclass(frozen=True, slots=True, order=True)
class TrackNote:
    """A note of a file: ``start``/``end`` in ticks, ``channel`` 0-15."""
    start: int
    end: int
    pitch: int
    velocity: int
    channel: int


@dataclass
class Song:
    """What riffd reads from a file. ``tempo`` in BPM (the first tempo event),
    ``meter`` the first time signature, ``ppqn`` ticks per quarter note. ``tracks``: the
    notes of each track, or, where one track holds every note (a type-0 file, or a type-1
    file of a tempo track and one track of all parts), each channel's, as the tracks of
    its type-1 equivalent (``per_channel``); ``names``: theirs (a track's name, or
    "channel N", N 1-16); ``pedals``: each part's sustain pedal (CC64) as (down, up,
    channel), ticks, a pedal never let up (nor reset, CC121) held to its track's end."""
    midi: mido.MidiFile
    ppqn: int
    tempo: float
    meter: tuple[int, int]
    tracks: list[list[TrackNote]]
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, num, den)
    tempos: list[tuple[int, int]] = field(default_factory=list)  # (tick, microseconds per quarter)
    names: list[str] = field(default_factory=list)
    per_channel: bool = False  # ``tracks`` are one track's channels
    pedals: list[list[tuple[int, int, int]]] = field(default_factory=list)  # per part: sustain (down, up, channel), ticks

    def part(self, k: int) -> tuple[str, int]:
        """How messages name part ``k`` of ``tracks``: ("track", k), or, read per channel,
        ("channel", N), N 1-16."""
        if self.per_channel:
            return "channel", self.tracks[k][0].channel + 1
        return "track", k

    def held(self, k: int) -> list[TrackNote]:
        """Part ``k``'s notes as they sound, held by its sustain pedal (``pedalled``)."""
        return pedalled(self.tracks[k], self.pedals[k])

    @property
    def length_ticks(self) -> int:
        return max((n.end for track in self.tracks for n in track), default=0)


def _drop_realtime(midi: mido.MidiFile) -> None:
    """Takes the system real-time messages (clock, start, stop: status 0xF8-0xFE) out of
    ``midi``'s tracks, each one's delta time given to the message after it. The Standard
    MIDI File specification has no place for them; a damaged file holds them, mido reads
    them, and a render, which copies every track, could not write them back."""
    for track in midi.tracks:
        if any(m.is_realtime for m in track):
            kept, carried = [], 0
            for m in track:
                if m.is_realtime:
                    carried += m.time
                else:
                    kept.append(m.copy(time=m.time + carried) if carried else m)
                    carried = 0
            track[:] = kept


def read_song(path: str | Path) -> Song:
    """Read ``path``. Raises MidiInputError for unreadable, malformed or note-less files,
    a file timed in SMPTE frames, a tempo of 0, or a time signature of 0 beats.

    Notes are paired as symusic (so miditok) pairs them: a note-off ends the earliest
    open note of its channel and pitch (a repeated pitch played legato overlaps), and a
    note never turned off is dropped; but a grace note as music21 writes it, its note-off
    sorted first, is zero-length (``_paired``), where symusic makes it long and drops the
    next note of its pitch.
    """
    try:
        midi = mido.MidiFile(path)
    except FileNotFoundError:
        raise MidiInputError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        # mido's EOFError carries no message: say what it means
        why = str(exc) or ("it ends before its header or a track does" if isinstance(exc, EOFError)
                           else type(exc).__name__)
        raise MidiInputError(f"{path}: not a readable MIDI file ({why})") from None
    _drop_realtime(midi)
    if midi.type == 2:
        raise MidiInputError(f"{path}: type-2 MIDI files (independent sequences) are not supported")
    if midi.ticks_per_beat <= 0:  # the header's division: negative is SMPTE frames (mido reads it signed)
        raise MidiInputError(f"{path}: its time is in SMPTE frames, not ticks per beat (PPQN); "
                             "export it from the DAW with musical time" if midi.ticks_per_beat < 0
                             else f"{path}: its header gives 0 ticks per beat")
    tempo, meter = 120.0, (4, 4)
    tracks: list[list[TrackNote]] = []
    seen_tempo = seen_meter = False
    time_signatures, tempos = [], []
    pedals: list[list[tuple[int, int, int]]] = []
    for track in midi.tracks:
        tick, down, held = 0, {}, []
        events = []  # (tick, struck, channel, pitch, velocity): the track's note-ons and note-offs
        for msg in track:
            tick += msg.time
            if msg.type == "control_change" and msg.control in PEDAL_CCS:
                if pedal_down(msg.control, msg.value):
                    down.setdefault(msg.channel, tick)
                elif msg.channel in down:
                    held.append((down.pop(msg.channel), tick, msg.channel))
            elif msg.type == "set_tempo":
                if msg.tempo <= 0:  # microseconds per beat: 0 is no tempo (a broken writer's)
                    raise MidiInputError(f"{path}: a set_tempo of {msg.tempo} microseconds per beat is no tempo")
                tempos.append((tick, msg.tempo))
                if not seen_tempo:
                    tempo, seen_tempo = mido.tempo2bpm(msg.tempo), True
            elif msg.type == "time_signature":
                if msg.numerator < 1:  # a bar of no beats (a 23/32 bar is read: the corpus has one)
                    raise MidiInputError(f"{path}: {msg.numerator}/{msg.denominator} is no time signature")
                time_signatures.append((tick, msg.numerator, msg.denominator))
                if not seen_meter:
                    meter, seen_meter = (msg.numerator, msg.denominator), True
            elif msg.type in ("note_off", "note_on"):
                events.append((tick, msg.type == "note_on" and msg.velocity > 0, msg.channel, msg.note, msg.velocity))
        tracks.append(sorted(_paired(events)))  # zero-length notes stay: miditok gives them the shortest Duration
        pedals.append(sorted(held + [(t, tick, c) for c, t in down.items()]))  # never let up: to the track's end
    if not any(tracks):
        raise MidiInputError(f"{path}: the file has no notes")
    names = [t.name for t in midi.tracks]
    holding = [k for k, t in enumerate(tracks) if t]
    per_channel = len(holding) == 1 and len(parts := by_channel(tracks[holding[0]])) > 1
    if per_channel:
        # every part in one track, a channel each (drums, keys, bass): read as a type-1 file's tracks
        name = names[holding[0]] if midi.type == 1 else ""
        tracks, names = list(parts.values()), [f"{name} channel {c + 1}".strip() for c in parts]
        pedals = [[p for p in pedals[holding[0]] if p[2] == c] for c in parts]
    return Song(midi, midi.ticks_per_beat, tempo, meter, tracks,
                sorted(time_signatures, key=lambda e: e[0]), sorted(tempos, key=lambda e: e[0]), names,
                per_channel, pedals)


def by_channel(notes: list[TrackNote]) -> dict[int, list[TrackNote]]:
    """``notes`` per channel (0-15), in channel order."""
    return {c: [n for n in notes if n.channel == c] for c in sorted({n.channel for n in notes})}


def pedalled(notes: list[TrackNote], pedals=()) -> list[TrackNote]:
    """``notes`` as they sound, in order: a note whose key goes up while its channel's
    sustain pedal is down (``pedals``: Song.pedals' (down, up, channel), ticks) sounds on
    until the pedal goes up, or until its key is struck again (the MIDI 1.0 specification's
    Hold 1, as a piano's damper holds a string)."""
    held: dict[int, tuple[list[int], list[int]]] = {}  # channel -> its pedal's (downs, ups), disjoint, in order
    for down, up, c in sorted(pedals):
        held.setdefault(c, ([], []))[0].append(down)
        held[c][1].append(up)
    strikes: dict[tuple[int, int], list[int]] = {}
    for n in sorted(notes):
        strikes.setdefault((n.channel, n.pitch), []).append(n.start)
    out = []
    for n in sorted(notes):
        downs, ups = held.get(n.channel, ((), ()))
        i = bisect.bisect_right(downs, n.end) - 1
        if i >= 0 and n.end < ups[i]:
            again = strikes[(n.channel, n.pitch)]
            k = bisect.bisect_right(again, n.start)
            n = TrackNote(n.start, max(n.end, min(ups[i], again[k] if k < len(again) else ups[i])),
                          n.pitch, n.velocity, n.channel)
        out.append(n)
    return out


def sounding(notes: list[TrackNote], pedals=()) -> list[tuple[int, int]]:
    """The spans (start, end ticks, sorted, disjoint) in which any of ``notes`` sounds,
    held by the sustain pedal as ``pedalled`` has it."""
    spans: list[tuple[int, int]] = []
    for n in pedalled(notes, pedals):
        if spans and n.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], n.end))
        else:
            spans.append((n.start, n.end))
    return spans


def _paired(events) -> list[TrackNote]:
    """One track's notes from its note ``events`` ((tick, struck, channel, pitch,
    velocity), in file order), paired as ``read_song`` says: a note-off ends the earliest
    open note of its key, but a note struck right after a note-off that found its key
    silent, at that tick (its writer sorted its note-off first), is zero-length when its
    key is next struck, at once or after another such note-off, and at the track's end."""
    after: list[tuple[int, bool] | None] = [None] * len(events)  # the next event of the same key
    last: dict[tuple[int, int], tuple[int, bool]] = {}
    for i in range(len(events) - 1, -1, -1):
        tick, struck, channel, pitch, _ = events[i]
        after[i], last[(channel, pitch)] = last.get((channel, pitch)), (tick, struck)
    open_notes: dict[tuple[int, int], list] = {}
    silent: dict[tuple[int, int], int] = {}  # key -> tick of a note-off that found it silent
    zero: dict[tuple[int, int], tuple] = {}  # key -> its open note struck right after one
    notes = []
    for i, (tick, struck, channel, pitch, velocity) in enumerate(events):
        key = (channel, pitch)
        opened = open_notes.setdefault(key, [])
        if struck or (key in zero and after[i] == (tick, True)):
            if key in zero:  # struck again: the note struck after a silent note-off had zero length
                note = zero.pop(key)
                opened.remove(note)
                notes.append(_close(note, note[0]))
            if not struck:  # the note-off its writer sorted before the next note-on
                silent[key] = tick
                continue
            opened.append((tick, pitch, velocity, channel))
            if silent.get(key) == tick:
                zero[key] = opened[-1]
        elif opened:
            closed = opened.pop(0)
            notes.append(_close(closed, tick))
            if zero.get(key) is closed:
                del zero[key]
        else:
            silent[key] = tick
    notes += [_close(note, note[0]) for note in zero.values()]  # never struck again: zero-length too
    return notes


def _close(opened, tick) -> TrackNote:
    start, pitch, velocity, channel = opened
    return TrackNote(start, tick, pitch, velocity, channel)


def late_release(overlap: int, next_length: int, legato: int) -> bool:
    """Whether a note that sounds ``overlap`` ticks into the next note of its line (one
    ``next_length`` ticks long) was a legato: an overlap of at most ``legato`` ticks, or
    of under half the next note (a player letting go late; a second voice sounds with
    the next note for half of it or more)."""
    return overlap <= legato or 2 * overlap < next_length


def _levels(notes: list[TrackNote], legato: int) -> list[tuple[bool, int]]:
    """For each tick where a note of ``notes`` starts or ends, in order: whether one
    starts there, and how many sound from there on (ends before starts at one tick;
    every note is ``legato`` ticks shorter, and with ``legato`` one that overlaps the next
    onset as a ``late_release`` does, the longest note struck there its next, ends there)."""
    onsets = sorted({n.start for n in notes})
    longest: dict[int, int] = {}
    for n in notes:
        longest[n.start] = max(longest.get(n.start, 0), n.end - n.start)
    ends = []
    for n in notes:
        end, k = max(n.start, n.end - legato), bisect.bisect_right(onsets, n.start)
        after = onsets[k] if k < len(onsets) else None  # the next onset
        if legato and after is not None and n.end > after and late_release(n.end - after, longest[after], legato):
            end = min(end, after)
        ends.append(end)
    events = sorted([(end, -1) for end in ends] + [(n.start, 1) for n in notes])
    out, level, i = [], 0, 0
    while i < len(events):
        tick, started = events[i][0], False
        while i < len(events) and events[i][0] == tick:
            level += events[i][1]
            started |= events[i][1] > 0
            i += 1
        out.append((started, level))
    return out


def max_polyphony(notes: list[TrackNote], legato: int = 0) -> int:
    """The most notes sounding at once in ``notes``; a note that overlaps the next by at
    most ``legato`` ticks (a sung or played line's legato) does not count as sounding with it."""
    return max((level for _, level in _levels(notes, legato)), default=0)


def chordal_share(notes: list[TrackNote], legato: int = 0) -> float:
    """Of the onsets (ticks) of ``notes``, the share where two or more notes sound, a
    line's overlap of up to ``legato`` ticks not counted: 1.0 for block chords, a few
    hundredths for a tune that ends on a chord."""
    onsets = [level for started, level in _levels(notes, legato) if started]
    return sum(level > 1 for level in onsets) / len(onsets) if onsets else 0.0


def block_chords(notes) -> list[tuple[int, int, tuple[int, ...]]]:
    """The pitches sounding at each onset of a chord track, as (start, end, pitches) in
    ticks, ``end`` the next onset (or the last note-off). One sweep over note-on and
    note-off events: O(n log n) in notes."""
    notes = list(notes)
    if not notes:
        return []
    events = sorted([(n.start, 1, n.pitch) for n in notes] + [(n.end, 0, n.pitch) for n in notes])
    sounding: dict[int, int] = {}  # pitch -> how many of its notes sound
    onsets: list[tuple[int, tuple[int, ...]]] = []
    i = 0
    while i < len(events):
        tick, started = events[i][0], False
        while i < len(events) and events[i][0] == tick:  # offs sort before ons at one tick
            _, on, pitch = events[i]
            sounding[pitch] = sounding.get(pitch, 0) + (1 if on else -1)
            started |= bool(on)
            i += 1
        if started:
            onsets.append((tick, tuple(sorted(p for p, n in sounding.items() if n > 0))))
    last = max(n.end for n in notes)
    ends = [t for t, _ in onsets[1:]] + [last]
    return [(t, end, pitches) for (t, pitches), end in zip(onsets, ends) if pitches]


def legato_ticks(ppqn: int) -> int:
    """How far (ticks) a line in one voice may overlap itself: a 64th note, 1/16 beat."""
    return ppqn // 16


def find_chord_track(song: Song, index: int | None = None, path: str = "", leads=()) -> int:
    """Index of the chord track: ``index`` if given, else the most polyphonic track
    (ties: more notes), drums (channel 10: a kick under a hi-hat is no chord) and a
    line's legato overlaps (``legato_ticks``) not counted, of those that strike chords
    at more than ``CHORDAL_SHARE`` of their onsets where any does (not a tune with a
    closing chord beside two-note shells) and, in a file of three parts or more, are no
    line with double stops (``STOPS_SHARE``); a track of ``leads`` (indices: a melody's)
    only where no other plays two notes at once. Raises MidiInputError if none plays
    two notes at once, or where the file has other parts, if none strikes chords so (a
    voice's divisi, a tune's closing chord or a cello's double stops is no chord track:
    render then names the chords per beat from the parts together)."""
    if index is not None:
        if not 0 <= index < len(song.tracks) or not song.tracks[index]:
            raise MidiInputError(f"{path}: track {index} does not exist or has no notes "
                                 f"(tracks with notes: {[i for i, t in enumerate(song.tracks) if t]})")
        return index
    legato, tonal = legato_ticks(song.ppqn), [pitched(t) for t in song.tracks]
    scored, parts = [], sum(map(bool, tonal))
    for i, t in enumerate(tonal):
        if t:
            poly, share = max_polyphony(t, legato), chordal_share(t, legato)
            stops = parts >= 3 and poly <= 3 and share < STOPS_SHARE  # a string's double stops among parts
            scored.append((poly, share > CHORDAL_SHARE and not stops, len(t), i))
    _, chordal, poly, _, best = max(((poly > 1 and i not in leads, chordal, poly, n, i)
                                     for poly, chordal, n, i in scored), default=(False, False, 0, 0, 0))
    if poly < 2:
        drums = " but the drums (channel 10)" if len(scored) < sum(map(bool, song.tracks)) else ""
        raise MidiInputError(f"{path}: no chord track: no track{drums} plays two notes at once "
                             "(--chord-track N names the chords of one, an arpeggio say, per beat)")
    if not chordal and len(scored) > 1:
        raise MidiInputError(f"{path}: no chord track: no track strikes chords at more than "
                             f"{CHORDAL_SHARE:.0%} of its onsets (--chord-track N takes one)")
    return best


def pitched(track: list[TrackNote]) -> list[TrackNote]:
    """``track``'s notes but the drums' (channel 10), which a track of several channels
    may hold beside its keys."""
    return [n for n in track if n.channel != DRUM_CHANNEL]


def drums_only(track: list[TrackNote]) -> bool:
    """Whether every note of ``track`` is on the drum channel (10): none is ``pitched``."""
    return not pitched(track)
