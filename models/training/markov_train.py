"""Training the markov model (``riffd train --arch markov``): the Continuator table learned
from every chorale and chord-symbol tune of the music21 corpus."""
from __future__ import annotations

import bisect
import json
import time
from pathlib import Path

from riffd.models.markov import MarkovTable
from riffd.music.chords import recognize


def train_table(pieces, max_order: int = 4) -> MarkovTable:
    """A table learned from corpus Pieces (their melodies over their chord tracks)."""
    table = MarkovTable(max_order=max_order)
    for piece in pieces:
        starts = [c[0] for c in piece.chords]
        named = [recognize(c[2]) for c in piece.chords]

        def chord_at(beat, starts=starts, named=named):
            i = bisect.bisect_right(starts, beat + 1e-9) - 1
            return named[i] if i >= 0 else None

        table.add_melody(piece.melody, chord_at)
    return table


def corpus_pieces(progress: bool = True):
    """Every chorale and chord-symbol tune of the music21 corpus, as Pieces."""
    from tqdm import tqdm

    from .corpus import chord_symbol_paths, chord_symbol_tunes, chorale, chorale_paths

    for path in tqdm(chorale_paths(), desc="chorales", unit="file", disable=not progress):
        try:
            piece = chorale(path)
        except Exception as exc:  # a corpus file music21 cannot read: count and skip
            print(f"skipped {path.name}: {exc}")
            continue
        if piece:
            yield piece
    for path in chord_symbol_paths():
        yield from chord_symbol_tunes(path)


def train_markov(output: str | Path, max_order: int = 4) -> dict:
    """Learn the table from the corpus and write ``output/model.json`` and
    ``output/config.json`` (its provenance); returns that provenance."""
    output = Path(output)
    started = time.monotonic()
    pieces = list(corpus_pieces())
    table = train_table(pieces, max_order=max_order)
    meta = {"arch": "markov", "pieces": len(pieces), "notes": table.notes_seen, "max_order": max_order,
            "sources": sorted({p.source for p in pieces}), "seconds": round(time.monotonic() - started, 1)}
    table.save(output / "model.json", meta)
    (output / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
