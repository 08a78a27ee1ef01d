"""MIDI files out, through mido: a melody written as a track, a file with a melody track
added, a file played in another meter. Writes go to a temporary name and are renamed,
so a failed render leaves no partial file.
"""
from __future__ import annotations

from dataclasses import replace
from math import gcd
from pathlib import Path

import mido

from .atomic import atomic_path
from .events import DRUM_CHANNEL
from .midifile import Song

# Positions per beat a melody is written on: sixteenths and triplet eighths (the REMI
# tokenizer's beat resolution, models/tokens.py). A file's PPQN is raised to a multiple.
MELODY_GRID = 12


def melody_track(notes, ppqn: int, channel: int, name: str = "riffd melody") -> mido.MidiTrack:
    """A track of ``notes`` (objects with start/duration in beats, pitch, velocity)."""
    events = []
    for n in notes:
        on = round(n.start * ppqn)
        off = max(on + 1, round((n.start + n.duration) * ppqn))
        events.append((on, 1, n.pitch, n.velocity))  # at one tick, note-offs first
        events.append((off, 0, n.pitch, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, is_on, pitch, velocity in events:  # each message made once, with its delta time
        track.append(mido.Message("note_on" if is_on else "note_off", channel=channel, note=pitch,
                                  velocity=velocity, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_atomic(midi: mido.MidiFile, path: str | Path) -> None:
    """Save ``midi`` to ``path`` through a temporary file and a rename (atomic_path:
    raises OutputError where ``path`` cannot be written)."""
    with atomic_path(path) as tmp:
        midi.save(tmp)


def with_melody(song: Song, notes, channel: int) -> mido.MidiFile:
    """A type-1 copy of ``song``'s file, every track unchanged, plus a melody track.

    Where the file's PPQN is not a multiple of ``MELODY_GRID`` (12: a step sequencer's 4,
    say, which cannot hold an eighth's triplet), the copy's is the least multiple of both,
    and every delta time of the tracks is scaled by the same whole factor: they sound as
    they did, and no melody note is rounded onto its neighbour's tick.
    """
    scale = MELODY_GRID // gcd(song.ppqn, MELODY_GRID)
    out = mido.MidiFile(type=1, ticks_per_beat=song.ppqn * scale)
    out.tracks.extend(mido.MidiTrack(m.copy(time=m.time * scale) for m in t) for t in song.midi.tracks)
    out.tracks.append(melody_track(notes, out.ticks_per_beat, channel))
    return out


def free_channel(song: Song, preferred: int) -> int:
    """``preferred`` (0-15) if no track uses it, else the first unused channel but the drums'."""
    used = {n.channel for t in song.tracks for n in t}
    if preferred not in used:
        return preferred
    return next((c for c in range(16) if c not in used and c != DRUM_CHANNEL), preferred)


def in_meter(song: Song, meter: tuple[int, int] | list[int]) -> Song:
    """``song`` in ``meter`` (numerator, denominator) from its start: its file's time
    signatures (none: 4/4, as the MIDI file specification says; or a sequencer's default
    4/4 under a waltz) give way to one at tick 0 of its first track, every other event
    kept at its tick, so that the melody is played, and the file written, in that meter."""
    num, den = meter
    midi = mido.MidiFile(type=song.midi.type, ticks_per_beat=song.midi.ticks_per_beat)
    for k, track in enumerate(song.midi.tracks):
        out, carried = mido.MidiTrack(), 0  # a dropped event's delta time goes to the next one
        if k == 0:
            out.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
        for msg in track:
            if msg.type == "time_signature":
                carried += msg.time
                continue
            out.append(msg.copy(time=msg.time + carried))
            carried = 0
        midi.tracks.append(out)
    return replace(song, midi=midi, meter=(num, den), time_signatures=[(0, num, den)])
