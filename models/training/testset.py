"""Melody-only MIDI files exported from the music21 corpus: the tokenizer's test set.

``riffd bench tokenize`` and the tests compare riffd's encoder with miditok on these.
They are written once to a cache folder (RIFFD_CACHE, default ~/.cache/riffd) and reused;
processes that ask at once (the test suite's workers) take turns on a lock file beside them.
"""
from __future__ import annotations

import fcntl
import multiprocessing
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

PPQNS = (480, 384, 96, 960)  # vary the file resolution so resampling is exercised


def cache_dir() -> Path:
    return Path(os.environ.get("RIFFD_CACHE", "~/.cache/riffd")).expanduser()


def _export(job) -> list[str]:
    from .corpus import BadPiece, chorale, melodies
    kind, path, folder = job
    try:
        pieces = [chorale(path)] if kind == "chorale" else melodies(path, kind)
    except BadPiece:
        return []
    written = []
    for i, piece in enumerate(p for p in pieces if p is not None and not isinstance(p, BadPiece) and p.melody):
        out = Path(folder) / f"{kind}-{piece.name}.mid"
        midi = piece.to_midi(ppqn=PPQNS[zlib.crc32(piece.name.encode()) % len(PPQNS)], with_melody=True)
        del midi.tracks[1]  # keep the conductor and the melody: the melody stream is compared
        midi.save(out)
        written.append(str(out))
        if kind != "chorale" and i >= 40:
            break
    return written


@contextmanager
def corpus_melodies_lock():
    """Holds an exclusive lock (flock) on ``corpus-melodies.lock`` in the cache folder
    while its body runs: one process exports the corpus melodies, the others wait and
    then read the finished files instead of half-written ones."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "corpus-melodies.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def corpus_melody_files(count: int = 220) -> list[Path]:
    """At least ``count`` melody files (chorale sopranos and folk tunes), made on first use
    under ``corpus_melodies_lock``."""
    from .corpus import chorale_paths, folk_paths
    folder = cache_dir() / "corpus-melodies"
    with corpus_melodies_lock():
        files = sorted(folder.glob("*.mid")) if folder.is_dir() else []
        if len(files) >= count:
            return files
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [("chorale", p, str(folder)) for p in chorale_paths()[:count // 2]]
        jobs += [(kind, p, str(folder)) for kind in ("oneill", "essen") for p in folk_paths(kind)[:2]]
        with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in pool.map(_export, jobs):
                pass
        return sorted(folder.glob("*.mid"))
