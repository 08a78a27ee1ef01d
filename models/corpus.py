"""Real music from the corpus the music21 package ships, as chord tracks and melodies.

- Bach chorales: the soprano is the melody; the chord track holds, on every beat, the
  pitches of the alto, tenor and bass sounding at that beat, merged while unchanged.
- Tunes with chord symbols (Ryan's Mammoth Collection, the Nottingham sample, lead
  sheets): the melody, and each chord symbol voiced as a block chord until the next.
Nothing is downloaded: music21 reads its own bundled files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import mido

from riffd.models.protocol import MelodyNote

CHORD_VELOCITY = 72
_CHORD_SYMBOL = re.compile(r"^[A-G][#b]?(m|7|maj7|m7|dim|min|aug|sus4)?(/[A-G][#b]?)?$")
CHORALE_TEMPO = 90.0  # the corpus files carry no tempo a performer would take


@dataclass
class Piece:
    """One piece: ``chords`` as (start_beat, end_beat, MIDI pitches) block chords."""
    name: str
    source: str
    tempo: float
    meter: tuple[int, int]
    chords: list[tuple[float, float, tuple[int, ...]]]
    melody: list[MelodyNote] = field(default_factory=list)

    @property
    def length_beats(self) -> float:
        ends = [c[1] for c in self.chords] + [n.end for n in self.melody]
        return max(ends, default=0.0)

    def to_midi(self, ppqn: int = 480, with_melody: bool = True) -> mido.MidiFile:
        """A type-1 file: conductor track, ``chords`` (channel 1), ``melody`` (channel 3)."""
        from riffd.bridges.midifile import melody_track  # bridges know files; import lazily

        midi = mido.MidiFile(type=1, ticks_per_beat=ppqn)
        conductor = mido.MidiTrack([
            mido.MetaMessage("track_name", name=self.name[:60], time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.tempo), time=0),
            mido.MetaMessage("time_signature", numerator=self.meter[0],
                             denominator=self.meter[1], time=0),
            mido.MetaMessage("end_of_track", time=0)])
        block = [MelodyNote(s, e - s, p, CHORD_VELOCITY) for s, e, ps in self.chords for p in ps]
        midi.tracks.append(conductor)
        midi.tracks.append(melody_track(block, ppqn, 0, name="chords"))
        if with_melody and self.melody:
            midi.tracks.append(melody_track(self.melody, ppqn, 2, name="melody"))
        return midi


def corpus_root() -> Path:
    from music21 import corpus
    return Path(corpus.__file__).parent


def chorale_paths() -> list[Path]:
    """The Bach chorale files of the corpus (four-part ones; riffd skips the others)."""
    return sorted(p for p in (corpus_root() / "bach").glob("bwv*") if p.suffix in (".mxl", ".xml", ".krn"))


def chord_symbol_paths() -> list[Path]:
    """ABC and lead-sheet files that carry chord symbols."""
    root = corpus_root()
    abc = [p for d in ("ryansMammoth", "nottingham-dataset", "oneills1850", "miscFolk")
           for p in sorted((root / d).glob("*.abc"))
           if any(_CHORD_SYMBOL.match(q) for q in re.findall(r'"([^"\n]*)"', p.read_text(errors="replace")))]
    return abc + sorted((root / "leadSheet").glob("*.mxl"))


def _meter(score) -> tuple[int, int]:
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    return (ts.numerator, ts.denominator) if ts else (4, 4)


def _tempo(score, default: float) -> float:
    mark = score.recurse().getElementsByClass("MetronomeMark").first()
    bpm = mark.getQuarterBPM() if mark is not None else None
    return float(bpm) if bpm else default


def _notes(part) -> list[MelodyNote]:
    out = []
    for n in part.stripTies().flatten().notes:
        if n.isChord or n.duration.quarterLength <= 0:
            continue
        out.append(MelodyNote(float(n.offset), float(n.duration.quarterLength), n.pitch.midi,
                              int(n.volume.velocity or 80)))
    return out


def chorale(path: str | Path) -> Piece | None:
    """A chorale as a Piece, or None if it does not have four parts."""
    from music21 import converter

    score = converter.parse(str(path))
    if len(score.parts) != 4:
        return None
    melody = _notes(score.parts[0])
    lower = [_notes(p) for p in score.parts[1:]]
    end = max((n.end for voice in lower for n in voice), default=0.0)
    chords: list[tuple[float, float, tuple[int, ...]]] = []
    beat = 0.0
    while beat < end:
        pitches = tuple(sorted({n.pitch for voice in lower for n in voice
                                if n.start <= beat + 1e-6 < n.end}))
        if chords and chords[-1][2] == pitches:
            chords[-1] = (chords[-1][0], beat + 1.0, pitches)
        elif pitches:
            chords.append((beat, beat + 1.0, pitches))
        beat += 1.0
    return Piece(Path(path).stem, "bach-chorale", CHORALE_TEMPO,
                 _meter(score), chords, melody)


def chord_symbol_tunes(path: str | Path) -> list[Piece]:
    """The tunes with chord symbols of a file (an ABC file may hold several)."""
    from music21 import converter

    score = converter.parse(str(path))
    scores = score.scores if hasattr(score, "scores") else [score]  # an Opus holds several
    tunes = [_chord_symbol_tune(s, f"{Path(path).stem}-{i}") for i, s in enumerate(scores)]
    return [t for t in tunes if t is not None]


def _chord_symbol_tune(score, name: str) -> Piece | None:
    from music21 import harmony

    flat = score.flatten()
    symbols = [c for c in flat.getElementsByClass(harmony.ChordSymbol) if c.pitches]
    if not symbols:
        return None
    melody = [MelodyNote(float(n.offset), float(n.duration.quarterLength), n.pitch.midi, 80)
              for n in flat.notes
              if not isinstance(n, harmony.ChordSymbol) and not n.isChord and n.duration.quarterLength > 0]
    end = max((n.end for n in melody), default=0.0)
    chords = []
    for i, cs in enumerate(symbols):
        start = float(cs.offset)
        stop = float(symbols[i + 1].offset) if i + 1 < len(symbols) else end
        if stop <= start:
            continue
        bass = 48 + (cs.bass().pitchClass if cs.bass() else cs.root().pitchClass)
        tones = sorted({60 + (p.pitchClass - bass) % 12 + bass - 48 for p in cs.pitches} - {bass})
        chords.append((start, stop, tuple([bass] + [t if t > bass else t + 12 for t in tones])))
    return Piece(name, "chord-symbols", _tempo(score, 110.0), _meter(score), chords, melody)
