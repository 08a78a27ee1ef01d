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
        melody = melody_track_index(song)
        args = (Notes.of(song.tracks[melody]), song.ppqn, song.time_signatures, song.tempos)
        try:
            ids = ours.encode(*args)
        except ValueError:
            rejected += 1
            continue
        # miditok encodes the melody track alone (with the tempo and meter events)
        score = symusic.Score.from_midi(melody_only(song, melody))
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


def melody_track_index(song) -> int:
    """The melody track: the one-voice track with the most notes, else the track with
    the most notes."""
    from riffd.bridges.midifile import max_polyphony
    candidates = [i for i, t in enumerate(song.tracks) if t and max_polyphony(t) == 1] or \
        [i for i, t in enumerate(song.tracks) if t]
    return max(candidates, key=lambda i: len(song.tracks[i]))


def melody_only(song, melody: int) -> bytes:
    """The file's bytes with its note events kept only on track ``melody`` (every
    track's tempo and meter events stay)."""
    import io

    import mido
    out = mido.MidiFile(type=1, ticks_per_beat=song.ppqn)
    for i, track in enumerate(song.midi.tracks):
        kept, carry = mido.MidiTrack(), 0
        for msg in track:
            if i != melody and not msg.is_meta and msg.type in ("note_on", "note_off"):
                carry += msg.time
                continue
            kept.append(msg.copy(time=msg.time + carry))
            carry = 0
        out.tracks.append(kept)
    buffer = io.BytesIO()
    out.save(file=buffer)
    return buffer.getvalue()


def _compiled() -> bool:
    from riffd.cython_ext import is_compiled
    from riffd.cython_ext import remi
    return is_compiled(remi)
