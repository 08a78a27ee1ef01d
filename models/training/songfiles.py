"""Corpus pieces written as a user's arrangement files, for the fine-tune benchmark and
the tests of ``riffd eval`` and ``riffd finetune --midi``: real melodies over real
chords, in the shapes users' files come in (480 PPQN). ``write_scores`` writes the
music21 corpus's works of a composer outside riffd's training corpus (Palestrina's
masses, Monteverdi's madrigals, Joplin's rag) as they are, one track per part, and its
lead sheets as their tunes over their chord symbols.

Even-numbered files: a named MELODY track played legato (each note overlapping the next
by 8 ticks) over a PIANO part that breaks the chords into rising arpeggios. Odd ones:
unnamed tracks, the melody first, block chords second. Bach chorales come first (their
chords are the lower voices); then Ryan's Mammoth Collection tunes, with chords
estimated from the melody (riffd.models.training.harmonize). ``write_songs`` with a
collection writes that collection's tunes instead, the same way (Aird's airs: tunes
riffd never trained on).
"""
from __future__ import annotations

from pathlib import Path

import mido

from riffd.bridges.midiwrite import melody_track
from riffd.models.protocol import MelodyNote

PPQN = 480
TUNES = ("airds", "essen", "oneill", "ryans")  # melody-only collections: corpus.folk_paths


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


def pieces(repeats: str = "written"):
    """Corpus pieces with a melody and chords, chorales first (a generator: parsing is
    slow), their bars as written or as "played" (corpus._aligned)."""
    from .corpus import BadPiece, chorale, chorale_paths
    for path in chorale_paths():
        try:
            piece = chorale(path, repeats)
        except BadPiece:
            continue
        if piece is not None and piece.melody and piece.chords:
            yield piece
    yield from tunes("ryans", repeats)


def tunes(collection: str, repeats: str = "written"):
    """The tunes of a melody-only collection of the corpus (corpus.folk_paths: "airds",
    "essen", "oneill", "ryans") of 16 notes or more, their bars as written or as
    "played" (corpus._aligned), each with its key and chords estimated from its melody
    (riffd.models.training.harmonize), in file order (a generator)."""
    from .corpus import BadPiece, folk_paths, melodies
    from .dataset import estimate_chords
    from .harmonize import estimate_key
    for path in folk_paths(collection):
        try:
            found = melodies(path, collection, repeats)
        except BadPiece:
            continue
        for piece in found:
            if isinstance(piece, BadPiece) or len(piece.melody) < 16:
                continue
            piece.meta["key_pc"] = estimate_key(piece.melody)
            estimate_chords(piece)
            yield piece


def arrangement(piece, k: int) -> mido.MidiFile:
    """``piece`` as the ``k``-th user file (shape by parity, module docstring)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQN)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.tempo), time=0),
        mido.MetaMessage("time_signature", numerator=piece.meter[0], denominator=piece.meter[1], time=0)]))
    legato = [MelodyNote(n.start, n.duration + 8 / PPQN, n.pitch, n.velocity) for n in piece.melody]
    if k % 2 == 0:
        midi.tracks.append(melody_track(broken(piece.chords), PPQN, 0, name="PIANO"))
        midi.tracks.append(melody_track(legato, PPQN, 1, name="MELODY"))
    else:
        block = [MelodyNote(s, e - s, p, 64) for s, e, ps in piece.chords for p in ps]
        midi.tracks.append(melody_track(legato, PPQN, 1, name=""))
        midi.tracks.append(melody_track(block, PPQN, 0, name=""))
    return midi


def write_songs(folder: str | Path, count: int, collection: str | None = None, skip: int = 0,
                repeats: str = "written") -> list[Path]:
    """``count`` files ``NNN name.mid`` into ``folder`` (made if missing): the corpus's
    ``pieces``, or with ``collection`` that collection's ``tunes`` (bars as written or
    as "played": ``repeats``), after the first
    ``skip`` of them; fewer when they run out. File NNN is the one a run without ``skip``
    writes as NNN (same name and shape), so runs with skips 0, N, 2N ... of count N make
    disjoint folders. Returns their paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, piece in enumerate(pieces(repeats) if collection is None else tunes(collection, repeats)):
        if len(written) == count:
            break
        if k < skip:
            continue
        out = folder / f"{k:03d} {piece.name}.mid"
        arrangement(piece, k).save(out)
        written.append(out)
    return written


def write_scores(folder: str | Path, composer: str, count: int, skip: int = 0,
                 repeats: str = "written") -> tuple[list[Path], list[tuple[str, str]]]:
    """Up to ``count`` of ``composer``'s works in the music21 corpus into ``folder`` as
    MIDI files, sorted by corpus path, after the first ``skip`` (numbered as in
    ``write_songs``): a work of two or more parts as music21 writes it (a track a part,
    named: a choir's voices, a piano's two staves, a voice and its piano), a lead sheet
    (one part with chord symbols: ``corpus.chord_symbol_tunes``) as ``arrangement``
    writes a tune, its melody over its symbols' chords. Returns the files written and,
    for each work left out, (its file name, why): one music21 cannot parse or write,
    or one part with no chord symbols (no chords to measure a melody against; a
    work left out takes no number). Raises ValueError for a composer the corpus does
    not hold, or for ``repeats`` "played" (music21 writes a work's bars as written)."""
    from music21 import converter, corpus
    from .corpus import chord_symbol_tunes
    if repeats != "written":
        raise ValueError("--repeats played takes the corpus or a tune collection; a composer's works are "
                         "written as their scores are")
    paths = sorted(str(p) for p in corpus.getComposer(composer))
    if not paths:
        raise ValueError(f"the music21 corpus holds no works of {composer!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, skipped, k = [], [], 0
    for path in paths:
        if len(written) == count:
            break
        out = folder / f"{k:03d} {Path(path).parent.name}-{Path(path).stem}.mid"
        try:
            score = converter.parse(path)
            if len(score.parts) > 1:
                score.write("midi", fp=str(out))
            else:  # a lead sheet: its tune over its chord symbols, else nothing to measure against
                tunes = chord_symbol_tunes(path)
                if not tunes or not tunes[0].melody:
                    skipped.append((Path(path).name, "one part, no chord symbols under a melody"))
                    continue
                arrangement(tunes[0], k).save(out)
        except Exception as exc:  # noqa: BLE001 - one unreadable work of a corpus is skipped
            out.unlink(missing_ok=True)
            skipped.append((Path(path).name, f"music21 cannot read or write it ({type(exc).__name__})"))
            continue
        if k < skip:
            out.unlink()
        else:
            written.append(out)
        k += 1
    return written, skipped
