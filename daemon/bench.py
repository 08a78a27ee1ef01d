"""`riffd bench tokenize`: riffd's REMI encoder against miditok's on the same files."""
from __future__ import annotations

import json
import time
from pathlib import Path


def tokenize(files=(), repeat: int = 3, as_json: bool = False, echo=print) -> dict:
    """Notes per second of riffd's REMI encoder and of miditok's on the same files, and
    how many files gave identical melody-stream ids.

    Both are timed from notes already in memory (riffd: arrays read by mido; miditok: a
    symusic Score) to token ids, best of ``repeat`` passes. Files whose meters riffd
    rejects (UnsupportedMeter) are counted and left out of both timings.
    """
    import symusic

    from riffd.bridges.midifile import read_song
    from riffd.models.remi import Notes, RemiTokenizer
    from riffd.models.training.testset import corpus_melody_files
    from riffd.models.tokens import miditok_tokenizer

    paths = [Path(f) for f in files] or corpus_melody_files()
    reference, ours = miditok_tokenizer(), RemiTokenizer()
    chord_ids = {i for t, i in reference.vocab.items() if t.startswith("Chord_")}
    items, rejected, identical = [], 0, 0
    for path in paths:
        song = read_song(path)
        melody = max(range(len(song.tracks)), key=lambda i: len(song.tracks[i]))
        args = (Notes.of(song.tracks[melody]), song.ppqn, song.time_signatures, song.tempos)
        try:
            ids = ours.encode(*args)
        except ValueError:
            rejected += 1
            continue
        score = symusic.Score(str(path))
        ref = [i for seq in reference.encode(score) for i in seq.ids if i not in chord_ids]
        identical += list(ids) == ref
        items.append((args, score))
    notes = sum(len(args[0]) for args, _ in items)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    riffd_s = best(lambda: [ours.encode(*args) for args, _ in items])
    miditok_s = best(lambda: [reference.encode(score) for _, score in items])
    result = {"files": len(items), "rejected_meter": rejected, "identical_to_miditok": identical,
              "notes": notes, "riffd_notes_per_s": round(notes / riffd_s), "miditok_notes_per_s": round(notes / miditok_s),
              "speedup": round(miditok_s / riffd_s, 1), "kernel": "cython" if _compiled() else "python twin"}
    echo(f"{result['files']} files ({rejected} left out: mixed beat units), {notes} notes; "
         f"identical to miditok: {identical}/{len(items)}")
    echo(f"riffd {result['riffd_notes_per_s']:,} notes/s, miditok {result['miditok_notes_per_s']:,} notes/s: "
         f"{result['speedup']}x ({result['kernel']})")
    if as_json:
        echo(json.dumps(result))
    return result


def _compiled() -> bool:
    from riffd.cython_ext import is_compiled
    from riffd.cython_ext import remi
    return is_compiled(remi)
