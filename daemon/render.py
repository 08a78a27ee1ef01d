"""Batch rendering: a MIDI file's chord track in, the same file plus a melody track out.

A file whose parts each play one voice (a choir's or a string quartet's score, a band
exported one instrument a track) has no chord track: its chords are then named per beat
from all of them together (but a tune named so: ``_without_the_tune``), as `riffd eval`
names an accompaniment's (riffd.models.evaluation.arrangements.beat_chords)."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from riffd.bridges.midifile import (MidiInputError, Song, drums_only, find_chord_track, legato_ticks, max_polyphony,
                                    pitched, read_song, sounding)
from riffd.bridges.midiwrite import free_channel, in_meter, with_melody, write_atomic
from riffd.models.ending import cut_at, end_as
from riffd.models.evaluation.arrangements import (CHORD_NAMES, MELODY_NAMES, sketched_tune, song_chords, taken_up,
                                                  tune_among)
from riffd.models.meters import bar_lines, play, song_meters
from riffd.models.protocol import ChordAt, MelodyModel, MelodyNote, MeterError
from riffd.music.theory import follow_level

from .capture import HEARD_DECAY, OOM_BEATS, ChordCapture, ChordChange, snap_to_beat
from .engine import IDLE_BARS
from riffd.presets import Preset, PresetError

CHOIR_TOP = re.compile(r"soprano|treble|cantus|superius", re.IGNORECASE)  # a choir's top voice: a chord member


@dataclass
class RenderReport:
    """What a render made: ``chords`` as (beat, name), ``notes`` the melody."""
    output: Path
    chord_track: int | None  # None: named per beat from ``voices``
    channel: int
    chords: list[tuple[float, str]]
    notes: list[MelodyNote]
    chord_tone_share: float  # of melody notes on beats, the share that are chord tones
    voices: tuple[int, ...] = ()  # the tracks the chords came from, with no chord track
    part: str = "track"  # the file's parts in messages (Song.part): tracks, or one track's channels
    numbers: tuple[int, ...] = ()  # each part's number there: a track's index, a channel's 1-16
    rests: list[tuple[float, float]] = field(default_factory=list)  # (start, end) beats only drums or nothing played
    ppqn: tuple[int, int] | None = None  # (the file's, the output's) where with_melody raised it
    continued_from: float | None = None  # with --continue: the beat where the file's melody ends
    staves: tuple[int, ...] = ()  # the chord track with the other staves of its instrument (_staves)

    def source(self) -> str:
        """Where the chords came from, as the file's parts are numbered: "track 1", or
        "channels 1, 2" (a file read per channel)."""
        number = (lambda k: self.numbers[k]) if self.numbers else (lambda k: k)
        if self.chord_track is not None:
            return named(self.part, number, self.staves or [self.chord_track])
        return named(self.part, number, self.voices)

    def summary(self) -> str:
        names = " ".join(name for _, name in self.chords[:8])
        more = " ..." if len(self.chords) > 8 else ""
        voice = "one voice each" if len(self.voices) > 1 else "in one voice"
        where = (f"chord {self.source()}" if self.chord_track is not None
                 else f"{self.source()} ({voice}, chords named per beat)")
        rests = ("; it rests where only drums or nothing play over two bars, beats "
                 + ", ".join(f"{round(a, 1):g}-{round(b, 1):g}" for a, b in self.rests) if self.rests else "")
        raised = f" (PPQN {self.ppqn[0]} raised to {self.ppqn[1]})" if self.ppqn else ""
        ended = (f"; the file's melody plays to beat {round(self.continued_from, 1):g}, its end: nothing to continue"
                 if self.continued_from is not None and not self.notes else "")  # --continue found nothing to add
        changes = f"{len(self.chords)} chord change{'' if len(self.chords) == 1 else 's'}"
        return (f"{self.output}: {where} unchanged{raised}, {changes} ({names}{more}); track 'riffd melody' on "
                f"channel {self.channel + 1}: {len(self.notes)} notes, {self.chord_tone_share:.0%} of on-beat notes "
                f"are chord tones{rests}{ended}")


def named(part: str, number, parts) -> str:
    """``parts`` (indices into a Song's tracks) as messages name them: "track 2", "tracks 1,
    2", a file read per channel's "channels 2, 3" (``part`` and ``number(k)``: Song.part)."""
    return f"{part}{'s' if len(parts) > 1 else ''} {', '.join(str(number(k)) for k in parts)}"


def chord_timeline(notes, ppqn: int, tolerance: float) -> list[ChordAt]:
    """Chords of a track's notes (ticks) as ChordAt in beats, named as live capture names
    them, an oom-pah's with the bass struck alone up to OOM_BEATS before it where that
    bass is its root (ChordCapture.over_bass: G, then B D F is G7, not Bdim); as a file
    can be read ahead, an oom-pah's chord starts on its bass's beat, not the chord's, and
    a power chord takes its third from the whole track's pitch classes to begin with."""
    # times here are beats: a strike gathers keys within a 64th note
    capture = ChordCapture(window_s=1 / 16, settle_s=1e-6)
    counts = [sum(n.pitch % 12 == pc for n in notes) for pc in range(12)]
    if any(counts):  # a file is read ahead: its first bare fifth takes its third from the whole track
        capture.heard = [c / max(counts) / (1 - HEARD_DECAY) for c in counts]
    events = sorted([(n.start / ppqn, 1, n.pitch) for n in notes] + [(n.end / ppqn, 0, n.pitch) for n in notes])
    timeline: list[ChordAt] = []

    def take(outcome) -> None:
        if not isinstance(outcome, ChordChange):
            return
        outcome = capture.over_bass(outcome, OOM_BEATS)
        at, chord = snap_to_beat(outcome.t if outcome.since is None else outcome.since, tolerance), outcome.chord
        if timeline and timeline[-1].beat >= at - 1e-9:  # two strikes on one beat: the later
            at = timeline.pop().beat
        if not timeline or timeline[-1].chord != chord:  # else: a strum's start, or a renamed oom-pah, said it
            timeline.append(ChordAt(at, chord))

    for beat, is_on, pitch in events:
        take(capture.poll(beat))
        if is_on:
            take(capture.note_on(pitch, beat))
        else:
            capture.note_off(pitch)
    take(capture.poll(float("inf")))
    return timeline


def sound_spans(song: Song) -> list[tuple[float, float]]:
    """(start, end) beats in which a pitched note of any part sounds, the sustain pedal
    holding keys on (midifile.sounding), in order."""
    spans = sounding([n for t in song.tracks for n in pitched(t)], [p for ps in song.pedals for p in ps])
    return [(a / song.ppqn, b / song.ppqn) for a, b in spans]


def silences(spans: list[tuple[float, float]], end: float, bar: float) -> list[tuple[float, float]]:
    """Where the song falls silent but for its drums (beats): the gaps longer than
    ``IDLE_BARS`` bars of ``bar`` beats between its ``spans`` (sound_spans: a pitched note
    of any part sounds, a key held by the sustain pedal too), from the first sound to
    ``end``: a break or an outro of drums alone. Live, the accompaniment rests after that
    long a silence of the player's (engine.IDLE_BARS); a file can be read ahead, so the
    melody rests from the silence's start. A part that plays on (a bass line, the other
    voices of a choir) keeps it playing."""
    edges = spans + [(end, end)]
    return [(edges[i][1], edges[i + 1][0]) for i in range(len(edges) - 1)
            if edges[i + 1][0] - edges[i][1] > IDLE_BARS * bar + 1e-9]


def rest_through(notes: list[MelodyNote], gaps: list[tuple[float, float]]) -> list[MelodyNote]:
    """``notes`` less those that start in a gap (beats), a note that runs into one ending
    where it starts (and left out if that leaves it under ending.MIN_TAIL: a click)."""
    kept = []
    for n in notes:
        if any(a <= n.start < b for a, b in gaps):
            continue
        cut = min((a for a, _ in gaps if n.start < a < n.start + n.duration), default=None)
        kept += [n] if cut is None else cut_at([n], cut)
    return kept


def as_loud(notes: list[MelodyNote], song: Song, parts, follow: float) -> list[MelodyNote]:
    """``notes`` as loud as the chords around them play (``follow``: the preset's
    velocity_follow; music.theory.follow_level): a note's level is the mean velocity of
    the notes of ``parts`` but drums begun in the beat up to it (a 64th note after it
    counts: struck with it), else of the last strike before it."""
    keys = sorted((n.start / song.ppqn, n.velocity) for k in parts for n in pitched(song.tracks[k]))
    starts = [b for b, _ in keys]
    out = []
    for n in notes:
        hi, level = bisect.bisect_right(starts, n.start + 1 / 16), None
        if hi:
            lo = bisect.bisect_right(starts, n.start - 1)
            if lo == hi:  # none begun in the beat before: the last strike, its keys within a 64th of its last
                lo = bisect.bisect_left(starts, starts[hi - 1] - 1 / 16)
            level = sum(v for _, v in keys[lo:hi]) / (hi - lo)
        out.append(MelodyNote(n.start, n.duration, n.pitch, follow_level(n.velocity, level, follow)))
    return out


def chord_tone_share(notes: list[MelodyNote], chord_at) -> float:
    on_beat = [n for n in notes if abs(n.start - round(n.start)) < 1e-6 and chord_at(n.start)]
    if not on_beat:
        return 0.0
    return sum(n.pitch % 12 in chord_at(n.start).tones for n in on_beat) / len(on_beat)


def render_song(song: Song, out_path: str | Path, preset: Preset, model: MelodyModel,
                seed: int | None = None, chord_track: int | None = None, source: str = "",
                wav: str | Path | None = None, png: str | Path | None = None,
                continue_melody: bool = False, chords: list[ChordAt] | None = None) -> RenderReport:
    """Render ``song`` to ``out_path`` (type-1 MIDI, written atomically), and with
    ``wav`` / ``png`` a WAV preview (44.1 kHz, the preset's [synth] patches) and a
    piano roll of chords and melody.

    ``continue_melody``: the song's melody track (``given_track``) is the model's
    context, and riffd's melody starts where it ends. ``chords``: the chords as named (a
    request's), instead of those recognized from the chord track. With no chord track but
    parts in one voice each that sound together, the chords are named per beat from those
    parts (``song_chords``). Raises MidiInputError when the song has no usable chords (or,
    with ``continue_melody``, no melody track).
    """
    index, voices = _chord_source(song, chord_track, source, continue_melody)
    staves = () if index is None else _staves(song, index) if chord_track is None else (index,)
    end = song.length_ticks / song.ppqn
    meters, (num, den) = song_meters(song)  # the longest-lasting: a first time signature may be a pickup's
    try:
        preset = preset.with_values(meter=[num, den], tempo=min(400.0, max(20.0, song.tempo)))
    except PresetError:  # a beat shorter than a sixteenth (4/32): no preset plays it
        raise MidiInputError(f"{source or 'the file'}: riffd plays no meter of {num}/{den}") from None
    recognized = chords is None
    if chords is None:
        keys = sorted(n for k in staves for n in pitched(song.tracks[k]))  # a track's drums name no chord
        broken = index is not None and max_polyphony(keys, legato_ticks(song.ppqn)) < 2
        parts = [song.held(k) for k in voices or staves]  # broken chords held by the pedal sound together
        chords = (song_chords(song, parts) if index is None or broken
                  else chord_timeline(keys, song.ppqn, preset.strike_tolerance_beats))
        if not chords and index is not None and chord_track is None:  # its strikes name none (unisons): the parts
            together = _parts_together(song, source, continue_melody)
            if together:
                index, staves, voices = None, (), together
                chords = song_chords(song, [song.held(k) for k in voices])
        if not chords:
            kind, number = song.part(0)[0], (lambda k: song.part(k)[1])
            where = (named(kind, number, staves) if index is not None
                     else f"{named(kind, number, voices)} together")
            raise MidiInputError(f"{source or 'the file'}: no chord recognized in {where} "
                                 "(choose a chord track with --chord-track N)")
    given = given_melody(song, -1 if index is None else index, source) if continue_melody else []
    start = max((n.end for n in given), default=chords[0].beat if chords else 0.0)
    try:  # each meter of the file in its own bars (models/meters.py)
        played, last_meter = play(model, preset, chords, start, end, seed, given, meters)
    except MeterError as exc:  # the file's meter, which the transformer never learned
        raise MidiInputError(f"{source or 'the file'}: {exc}; --model rules or markov play any meter") from None
    spans = sound_spans(song)  # the melody ends with the last pitched sound, not with drums after it
    notes = end_as(played, chords, min(end, spans[-1][1]) if spans else end, preset, last_meter)
    gaps = []
    if recognized:  # a request's chords are riffd's own: over N.C. the melody plays on, at its preset's velocity
        gaps = silences(spans, end, preset.beats_per_bar)
        notes = as_loud(rest_through(notes, gaps), song, voices or staves, preset.velocity_follow)
    channel = free_channel(song, preset.channel - 1)
    midi = with_melody(song, notes, channel)
    write_atomic(midi, out_path)
    # a request restates its chord each bar; a report and the roll name the changes
    names = [(c.beat, c.chord.name) for before, c in zip([None, *chords], chords)
             if c.chord and (before is None or before.chord is None or before.chord.name != c.chord.name)]
    if wav is not None:
        from .audio import render_parts, song_parts, write_wav
        write_wav(render_parts(song_parts(song, notes, preset, voices or staves)), wav)
    if png is not None:
        from .pianoroll import piano_roll
        parts = [n for k in voices or staves for n in song.tracks[k]]
        tracked = [(n.start / song.ppqn, n.end / song.ppqn, n.pitch) for n in parts]
        piano_roll(png, tracked, [(n.start, n.end, n.pitch) for n in notes], names,
                   bar_lines(meters, max([end] + [n.end for n in notes]), (num, den)),
                   title=f"{Path(source or out_path).name}: {model.name}, preset {preset.name}")
    return RenderReport(Path(out_path), index, channel, names, notes, chord_tone_share(notes, model.chord_at),
                        voices, song.part(0)[0], tuple(song.part(k)[1] for k in range(len(song.tracks))), gaps,
                        (song.ppqn, midi.ticks_per_beat) if midi.ticks_per_beat != song.ppqn else None,
                        start if continue_melody else None, staves if len(staves) > 1 else ())


def _chord_source(song: Song, chord_track: int | None, source: str,
                  continue_melody: bool) -> tuple[int | None, tuple[int, ...]]:
    """(the chord track, a track named like a melody only where no other plays two
    notes at once, and ()) or, where no track plays two notes at once but two or more
    sound together, (None, the tracks to name chords from: all with notes but drums and
    the melody: with ``continue_melody`` the one continued, else a lone part named like a
    melody, ``_without_the_tune``). A lone part in one voice named like an
    accompaniment (CHORD_NAMES: an arpeggio, a picked guitar) is the chord track. Raises
    MidiInputError (find_chord_track's)."""
    try:
        leads = [k for k, name in enumerate(song.names) if MELODY_NAMES.search(name or "")]
        return find_chord_track(song, chord_track, source, leads), ()
    except MidiInputError:
        if chord_track is not None:
            raise
        parts = [k for k, t in enumerate(song.tracks) if t and not drums_only(t)]
        if len(parts) == 1 and CHORD_NAMES.search(song.names[parts[0]] or "") and not continue_melody:
            return parts[0], ()  # named per beat, as broken chords (render_song)
        together = _parts_together(song, source, continue_melody)
        if not together:
            raise
        return None, together


def _parts_together(song: Song, source: str, continue_melody: bool) -> tuple[int, ...]:
    """The parts whose notes together name the chords per beat: every part but drums and
    the melody (with ``continue_melody``, the one continued, and then even one part
    alone, a piano's arpeggios; else a lone part named like one, ``_without_the_tune``),
    or () where fewer than two parts sound together. Raises MidiInputError where
    ``continue_melody`` finds no melody (given_track)."""
    parts = [k for k, t in enumerate(song.tracks) if t and not drums_only(t)]
    if continue_melody:
        lead = given_track(song, -1, source)
        return tuple(k for k in parts if k != lead)
    return tuple(_without_the_tune(song, parts)) if len(parts) > 1 and _sound_together(song, parts) else ()


def _sound_together(song: Song, parts) -> bool:
    """Whether two notes of ``parts`` (track indices) ever sound at once."""
    return max_polyphony([n for k in parts for n in song.tracks[k]]) >= 2


def _staves(song: Song, index: int) -> tuple[int, ...]:
    """The chord track ``index`` with every other track of the same name on the same
    channels, in order: one instrument's staves (a piano's two hands, as notation
    programs and music21 write them), whose chords sound from both together."""
    def who(k):
        return (song.names[k] or "").strip().lower(), {n.channel for n in pitched(song.tracks[k])}
    name, channels = who(index)
    return tuple(k for k, t in enumerate(song.tracks)
                 if k == index or (name and t and not drums_only(t) and who(k) == (name, channels)))


def _without_the_tune(song: Song, parts: list[int]) -> list[int]:
    """``parts`` but the one part named like a melody (MELODY_NAMES) where it is the only
    such part and the rest name chords without it (two or more that sound together, or
    one named like an accompaniment): a tune's passing notes name no chords. Where
    several parts are so named (a choir's "voice 1", "voice 2" ...), or the one is a
    choir's soprano (its chords' third may be hers alone), all stay."""
    named = [k for k in parts if MELODY_NAMES.search(song.names[k] or "")]
    if any(CHOIR_TOP.search(song.names[k] or "") for k in named):
        return parts
    rest = [k for k in parts if k not in named]
    if len(named) != 1 or not rest:
        return parts
    if len(rest) == 1:
        return rest if CHORD_NAMES.search(song.names[rest[0]] or "") else parts
    return rest if _sound_together(song, rest) else parts


def given_track(song: Song, chord_track: int, source: str = "") -> int:
    """The index of the song's melody: of the tracks besides ``chord_track`` and drums that
    play one note at a time (overlaps of a few ticks allowed), the one ``riffd eval``
    would take (``tune_among``: the first named like a melody, else the highest that is
    no bass line, one named like an accompaniment last).
    Raises MidiInputError if there is none."""
    found = tune_among(_one_voice(song, chord_track), song.names)
    if found is None:
        raise MidiInputError(f"{source or 'the file'}: no melody track to continue (one voice over C3, besides "
                             "the chords; a track named like a melody, lead or vocal, is one whatever its range; or a "
                             "tune on top of the chords' own part)")
    return found


def _one_voice(song: Song, chord_track: int) -> dict[int, list]:
    """The tracks besides ``chord_track`` and drums that play one note at a time, by index."""
    return {k: t for k, t in enumerate(song.tracks)
            if t and k != chord_track and not drums_only(t) and max_polyphony(t, legato_ticks(song.ppqn)) <= 1}


def given_melody(song: Song, chord_track: int, source: str = "") -> list[MelodyNote]:
    """The song's melody (``given_track``) as MelodyNotes in beats, with what other tracks
    named like a melody sing where it rests a bar or more (``taken_up``: a solo verse,
    then the choir's refrain), as ``riffd eval`` reads it; with no such track, the tune on
    top of the chord track up to where it plays chords alone (``sketched_tune``). Raises
    MidiInputError if there is none."""
    try:
        line, _ = taken_up(given_track(song, chord_track, source), _one_voice(song, chord_track), song.names,
                           song.ppqn)
    except MidiInputError:  # a keyboard sketch: its tune on top, then chords alone
        line = sketched_tune(song.tracks[chord_track], song.ppqn) if chord_track >= 0 else []
        if not line:
            raise
    return [MelodyNote(n.start / song.ppqn, (n.end - n.start) / song.ppqn, n.pitch, n.velocity) for n in line]


def render_file(in_path: str | Path, out_path: str | Path, preset: Preset, model: MelodyModel,
                seed: int | None = None, chord_track: int | None = None, wav: str | Path | None = None,
                png: str | Path | None = None, continue_melody: bool = False,
                meter: tuple[int, int] | None = None) -> RenderReport:
    """Read ``in_path`` (``read_in``) and render it (see render_song); raises
    MidiInputError for bad input (no output written)."""
    return render_song(read_in(in_path, meter), out_path, preset, model, seed, chord_track, str(in_path), wav, png,
                       continue_melody)


def read_in(in_path: str | Path, meter: tuple[int, int] | None = None) -> Song:
    """The Song of the MIDI file ``in_path``, in ``meter`` (numerator, denominator:
    ``in_meter``) rather than its own where given. Raises MidiInputError."""
    song = read_song(in_path)
    return song if meter is None else in_meter(song, meter)
