"""`riffd bench folder`: files per second through the watched folder.

``count`` 16-bar chord files (the chords of real tunes, as the latency benchmark plays
them, cut into 16-bar pieces) go into a fresh folder's inbox; `riffd watch`'s loop
(daemon/watch.py) turns them into MIDI, WAV, PNG and a report with ``jobs``
worker processes. Files per second: ``count`` over the wall time from the files' drop
into a running watcher (its workers started and ready) to the last file done; and, for
`riffd watch --once`, from its start to its exit, worker start-up and model loading
included.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from .benchmachine import Meter

BARS = 16


def chord_files(inbox: Path, count: int, bpm: float = 120.0) -> None:
    """``count`` 16-bar chord files (4/4) in ``inbox``."""
    import mido

    from riffd.bridges.midiwrite import melody_track, write_atomic
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
    """Run the benchmark; echo a line per run and, with ``as_json``, one JSON object.
    Keys per model: ``files_per_s_N`` (a running watcher), ``once_files_per_s_N``
    (`riffd watch --once`, start-up included). Raises RuntimeError if a file fails."""
    meter, result = Meter(), {"files": count, "bars": BARS, "models": {}}
    for model in models:
        row = {}
        for n in jobs:
            for once in (False, True):
                wall = _run(model, n, count, once)
                row[f"{'once_' if once else ''}files_per_s_{n}"] = round(count / wall, 2)
                echo(f"{model:6} --jobs {n}{' --once' if once else '       '}: {count} files in {wall:.1f} s, "
                     f"{count / wall:.2f} files/s")
        result["models"][model] = row
    meter.finish(result, echo)
    if as_json:
        echo(json.dumps(result))
    return result


def _run(model: str, jobs: int, count: int, once: bool) -> float:
    """Seconds for ``count`` files: with ``once``, from `watch --once`'s start to its
    exit; else from the drop into a running watcher's inbox (its workers ready) to the
    last file done."""
    from .watch import Options, watch
    options = Options(preset="pop", model=model, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        staged = root / "staged"
        for folder in (staged, root / "inbox"):
            folder.mkdir()
        chord_files(staged, count)
        if once:
            for path in sorted(staged.iterdir()):
                path.rename(root / "inbox" / path.name)
            t0 = time.perf_counter()
            code = watch(root, options, jobs=jobs, once=True, echo=lambda line: None, settle_s=0.0)
            wall = time.perf_counter() - t0
        else:
            stop, ready, finished = threading.Event(), threading.Event(), []

            def heard(line: str) -> None:
                if "workers ready" in line:
                    ready.set()
                elif "->" in line or "failed" in line:
                    finished.append(time.perf_counter())
                    if len(finished) == count:
                        stop.set()

            codes = []
            runner = threading.Thread(target=lambda: codes.append(
                watch(root, options, jobs=jobs, stop=stop, echo=heard, settle_s=0.0)))
            runner.start()
            if not ready.wait(120.0):
                stop.set()
            t0 = time.perf_counter()
            for path in sorted(staged.iterdir()):  # the drop: renames, as a DAW's export ends
                path.rename(root / "inbox" / path.name)
            runner.join()
            wall = (finished[-1] if finished else time.perf_counter()) - t0
            code = codes[0] if codes else 1
        done = len(list((root / "done").iterdir())) if (root / "done").exists() else 0
    if code or done != count:
        raise RuntimeError(f"bench folder: {count - done} of {count} files failed with {model}")
    return wall
