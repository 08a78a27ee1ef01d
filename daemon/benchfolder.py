"""`riffd bench folder`: files per second through the watched folder.

``count`` 16-bar chord files (the chords of real tunes, as the latency benchmark plays
them, cut into 16-bar pieces) go into a fresh folder's inbox; `riffd watch --once`'s
loop (daemon/watch.py) turns them into MIDI, WAV, PNG and a report with ``jobs``
worker processes. Files per second: ``count`` over the wall time from start to the
last file done, worker start-up and model loading included.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

BARS = 16


def chord_files(inbox: Path, count: int, bpm: float = 120.0) -> None:
    """``count`` 16-bar chord files (4/4) in ``inbox``."""
    import mido

    from riffd.bridges.midifile import melody_track, write_atomic
    from riffd.models.protocol import MelodyNote

    from .benchlive import session_chords
    span = BARS * 4.0
    chords = session_chords(span * count + span)
    for k in range(count):
        lo, hi = k * span, (k + 1) * span
        block = [MelodyNote(s - lo, min(e, hi) - s, p, 70) for s, e, ps, _ in chords if lo <= s < hi for p in ps]
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)]))
        midi.tracks.append(melody_track(block, 480, 0, name="chords"))
        write_atomic(midi, inbox / f"piece{k:03d}.mid")


def folder(models=("rules", "onnx"), jobs=(1, 2), count: int = 40, as_json: bool = False, echo=print) -> dict:
    """Run the benchmark; echo a line per run and, with ``as_json``, one JSON object."""
    from .watch import Options, watch
    result: dict = {"files": count, "bars": BARS, "models": {}}
    for model in models:
        row = {}
        for n in jobs:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                (root / "inbox").mkdir()
                chord_files(root / "inbox", count)
                t0 = time.perf_counter()
                code = watch(root, Options(preset="pop", model=model, seed=1), jobs=n, once=True,
                             echo=lambda line: None, settle_s=0.0)
                wall = time.perf_counter() - t0
                done = len(list((root / "done").iterdir()))
            if code or done != count:
                raise RuntimeError(f"bench folder: {count - done} of {count} files failed with {model}")
            row[f"files_per_s_{n}"] = round(count / wall, 2)
            echo(f"{model:6} --jobs {n}: {count} files in {wall:.1f} s, {count / wall:.2f} files/s")
        result["models"][model] = row
    if as_json:
        echo(json.dumps(result))
    return result
