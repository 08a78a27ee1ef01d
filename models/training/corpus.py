"""Real music from the corpus the music21 package ships, as chord tracks and melodies.

- Bach chorales: the soprano is the melody; the chord track holds, on every beat, the
  pitches of the alto, tenor and bass sounding at that beat, merged while unchanged.
- Tunes with chord symbols (Ryan's Mammoth Collection, the Nottingham sample, lead
  sheets): the melody, and each chord symbol voiced as a block chord until the next.
Each reader takes its score's bars as written (each section once between repeat signs)
or as played (repeats taken, first and second endings chosen: repeats.played_order).
Nothing is downloaded: music21 reads its own bundled files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import mido

from riffd.models.protocol import MelodyNote

from .repeats import Bar, played_order

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
    time_signatures: list[tuple[float, int, int]] = field(default_factory=list)  # (beat, num, den)
    meta: dict = field(default_factory=dict)

    @property
    def length_beats(self) -> float:
        ends = [c[1] for c in self.chords] + [n.end for n in self.melody]
        return max(ends, default=0.0)

    def to_midi(self, ppqn: int = 480, with_melody: bool = True) -> mido.MidiFile:
        """A type-1 file: conductor track, ``chords`` (channel 1), ``melody`` (channel 3)."""
        from riffd.bridges.midiwrite import melody_track  # bridges know files; import lazily

        midi = mido.MidiFile(type=1, ticks_per_beat=ppqn)
        conductor = mido.MidiTrack([
            mido.MetaMessage("track_name", name=self.name[:60], time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.tempo), time=0),
            *_meter_messages(self.time_signatures or [(0.0, *self.meter)], ppqn),
            mido.MetaMessage("end_of_track", time=0)])
        block = [MelodyNote(s, e - s, p, CHORD_VELOCITY) for s, e, ps in self.chords for p in ps]
        midi.tracks.append(conductor)
        midi.tracks.append(melody_track(block, ppqn, 0, name="chords"))
        if with_melody and self.melody:
            midi.tracks.append(melody_track(self.melody, ppqn, 2, name="melody"))
        return midi


def _meter_messages(sigs, ppqn: int) -> list[mido.MetaMessage]:
    out, last = [], 0
    for beat, num, den in sigs:
        tick = round(beat * ppqn)
        out.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=tick - last))
        last = tick
    return out


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



def folk_paths(collection: str) -> list[Path]:
    """ABC files of a melody collection: "essen", "oneill" or "ryans" (files with chord
    symbols are left to the chord-symbol source), or "airds" (James Aird's Selection of
    Scotch, English, Irish and Foreign Airs, 1778-1803: never in riffd's training corpus,
    a folder of real tunes outside it for `riffd eval`)."""
    folder = {"essen": "essenFolksong", "oneill": "oneills1850", "ryans": "ryansMammoth",
              "airds": "airdsAirs"}[collection]
    with_symbols = set(chord_symbol_paths())
    return [p for p in sorted((corpus_root() / folder).glob("*.abc")) if p not in with_symbols]


class BadPiece(ValueError):
    """A piece the dataset skips; ``reason`` is the filter's name for it."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason

    def __reduce__(self):  # worker processes send these back pickled
        return BadPiece, (self.name, self.reason)


def _scores(path: str | Path) -> list:
    from music21 import converter

    try:
        score = converter.parse(str(path))
    except Exception as exc:  # music21 raises many types for malformed input
        raise BadPiece(Path(path).name, "unparsable") from exc
    return list(score.scores) if hasattr(score, "scores") else [score]  # an Opus holds several


def written_bars(part, measures: list) -> list[Bar]:
    """The repeat signs, double bars and ending brackets of ``measures`` (a music21
    part's, in written order) as repeats.Bar values."""
    from music21 import bar as m21bar

    endings: dict[int, frozenset[int]] = {}
    for bracket in part.spannerBundle.getByClass("RepeatBracket"):
        numbers = set()
        for item in re.findall(r"\d+(?:-\d+)?", str(bracket.number or "")):
            low, _, high = item.partition("-")
            numbers.update(range(int(low), int(high or low) + 1))
        for measure in bracket.getSpannedElements():
            endings[id(measure)] = frozenset(numbers)
    out = []
    for m in measures:
        left, right = m.leftBarline, m.rightBarline
        end = isinstance(right, m21bar.Repeat) and right.direction == "end"
        out.append(Bar(start=isinstance(left, m21bar.Repeat) and left.direction == "start",
                       end_times=(right.times or 2) if end else None, endings=endings.get(id(m), frozenset()),
                       double=getattr(right, "type", None) in ("double", "final", "heavy-light", "heavy-heavy")))
    return out


def _aligned(part, name: str, repeats: str = "written"):
    """(notes, time signatures, chord symbols, end beat) of a part on a clean bar grid,
    its bars as written, or with ``repeats="played"`` in the order a player takes them
    (repeats.played_order).

    A short first bar (pickup) is right-aligned; short bars that add up to one bar (a
    bar split at a repeat or a line break) share it; any other short bar is padded.
    Raises BadPiece("bars of wrong length") for a bar longer than its meter allows.
    """
    from music21 import harmony

    notes, sigs, symbols = [], [], []
    bar_start, fill, bar, ts = 0.0, 0.0, 4.0, None
    plain = list(part.getElementsByClass("Measure"))
    tied = list(part.stripTies().getElementsByClass("Measure"))  # a tied note as one note
    if repeats == "played":
        order = played_order(written_bars(part, plain))
        plain, tied = [plain[j] for j in order], [tied[j] for j in order]
    for i, (measure, merged) in enumerate(zip(plain, tied)):
        new_ts = measure.timeSignature is not None and (ts is None or ts != (
            measure.timeSignature.numerator, measure.timeSignature.denominator))
        if measure.timeSignature is not None:
            ts = (measure.timeSignature.numerator, measure.timeSignature.denominator)
        ts = ts or (4, 4)
        length = float(measure.duration.quarterLength)
        if i == 0:
            bar = ts[0] * 4 / ts[1]
            at, fill = bar - min(length, bar), bar  # a pickup ends on the first bar line
        elif not new_ts and fill + length <= bar + 1e-6 and fill < bar - 1e-6:
            at, fill = bar_start + fill, fill + length
        else:
            bar_start += bar
            bar = ts[0] * 4 / ts[1]
            at, fill = bar_start, length
        if length > bar + 1e-6:
            raise BadPiece(name, "bars of wrong length")
        if not sigs or sigs[-1][1:] != ts:
            sigs.append((bar_start if i else 0.0, *ts))
        for el in merged.flatten().notes:
            when = at + float(el.offset)
            if isinstance(el, harmony.ChordSymbol):
                symbols.append((when, el))
            elif not el.isChord and el.duration.quarterLength > 0:
                notes.append(MelodyNote(when, float(el.duration.quarterLength), el.pitch.midi,
                                        int(el.volume.velocity or 80)))
    return notes, sigs or [(0.0, 4, 4)], symbols, bar_start + bar


def _tempo(score, default: float) -> float:
    mark = score.recurse().getElementsByClass("MetronomeMark").first()
    bpm = mark.getQuarterBPM() if mark is not None else None
    return float(bpm) if bpm else default


def chorale(path: str | Path, repeats: str = "written") -> Piece | None:
    """A chorale as a Piece, or None if it does not have four parts; ``repeats``: its
    bars as written or as "played" (``_aligned``).
    Raises BadPiece for an unparsable file or wrong bar lengths."""
    score = _scores(path)[0]
    name = Path(path).stem
    if len(score.parts) != 4:
        return None
    melody, sigs, _, end = _aligned(score.parts[0], name, repeats)
    lower = [_aligned(p, name, repeats)[0] for p in score.parts[1:]]
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
    return Piece(name, "bach-chorale", CHORALE_TEMPO, sigs[0][1:], chords, melody, sigs)


def chord_symbol_tunes(path: str | Path, repeats: str = "written") -> list[Piece]:
    """The tunes with chord symbols of a file (an ABC file may hold several), their
    bars as written or as "played" (``_aligned``)."""
    tunes = []
    for i, score in enumerate(_scores(path)):
        try:
            tune = _chord_symbol_tune(score, f"{Path(path).stem}-{i}", repeats)
        except BadPiece:
            continue
        if tune is not None:
            tunes.append(tune)
    return tunes


def _chord_symbol_tune(score, name: str, repeats: str) -> Piece | None:
    part = score.parts[0] if score.parts else score
    melody, sigs, symbols, end = _aligned(part, name, repeats)
    symbols = [(at, cs) for at, cs in symbols if cs.pitches]
    if not symbols:
        return None
    chords = []
    for i, (start, cs) in enumerate(symbols):
        stop = symbols[i + 1][0] if i + 1 < len(symbols) else end
        if stop <= start:
            continue
        bass = 48 + (cs.bass().pitchClass if cs.bass() else cs.root().pitchClass)
        tones = sorted({60 + (p.pitchClass - bass) % 12 + bass - 48 for p in cs.pitches} - {bass})
        chords.append((start, stop, tuple([bass] + [t if t > bass else t + 12 for t in tones])))
    return Piece(name, "chord-symbols", _tempo(score, 110.0), sigs[0][1:], chords, melody, sigs)


def melodies(path: str | Path, source: str, repeats: str = "written") -> list[Piece | BadPiece]:
    """Every tune of a melody-only file, without chords, its bars as written or as
    "played" (``_aligned``); a tune that cannot be laid on a bar grid comes back as a
    BadPiece. Raises BadPiece if the file does not parse."""
    out: list[Piece | BadPiece] = []
    for i, score in enumerate(_scores(path)):
        name = f"{Path(path).stem}-{i}"
        try:
            part = score.parts[0] if score.parts else score
            melody, sigs, _, _ = _aligned(part, name, repeats)
        except BadPiece as bad:
            out.append(bad)
            continue
        except Exception:  # music21 may fail on one tune of an otherwise good file
            out.append(BadPiece(name, "unparsable"))
            continue
        out.append(Piece(name, source, _tempo(score, 100.0), sigs[0][1:], [], melody, sigs))
    return out
