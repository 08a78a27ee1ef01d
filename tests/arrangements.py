"""Real arrangements for `riffd eval` tests: Bach chorales from the music21 corpus written
as a user's files would come: a named MELODY track played legato (each note overlapping
the next by a few ticks) over a PIANO part that breaks the chords into arpeggios, or
unnamed tracks with block chords; 480 PPQN."""
from __future__ import annotations

from pathlib import Path

import mido

from riffd.bridges.midifile import melody_track
from riffd.models.protocol import MelodyNote


def broken(chords) -> list[MelodyNote]:
    """Each (start, end, pitches) chord broken: its pitches rising one after another
    over the chord's span, in at most eighth notes, as a pianist's left hand would."""
    out = []
    for start, end, pitches in chords:
        step = min(0.5, (end - start) / len(pitches))
        beat, k = start, 0
        while beat < end - 1e-9:
            out.append(MelodyNote(beat, min(step, end - beat), pitches[k % len(pitches)], 64))
            beat, k = beat + step, k + 1
    return out


def write_arrangements(folder: Path, count: int) -> list[Path]:
    """``count`` chorales into ``folder``: even ones named and broken, odd ones unnamed and block."""
    from riffd.models.training.corpus import BadPiece, chorale, chorale_paths
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chorale_paths():
        if len(written) == count:
            break
        try:
            piece = chorale(path)
        except BadPiece:
            continue
        if piece is None or not piece.melody or not piece.chords:
            continue
        k = len(written)
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(mido.MidiTrack([
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.tempo), time=0),
            mido.MetaMessage("time_signature", numerator=piece.meter[0], denominator=piece.meter[1], time=0)]))
        legato = [MelodyNote(n.start, n.duration + 8 / 480, n.pitch, n.velocity) for n in piece.melody]
        if k % 2 == 0:
            midi.tracks.append(melody_track(broken(piece.chords), 480, 0, name="PIANO"))
            midi.tracks.append(melody_track(legato, 480, 1, name="MELODY"))
        else:
            block = [MelodyNote(s, e - s, p, 64) for s, e, ps in piece.chords for p in ps]
            midi.tracks.append(melody_track(legato, 480, 1, name=""))
            midi.tracks.append(melody_track(block, 480, 0, name=""))
        out = folder / f"{k:02d} {piece.name}.mid"
        midi.save(out)
        written.append(out)
    return written
