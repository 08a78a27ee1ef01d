"""`riffd bench finetune`: `riffd finetune --midi DIR` on ``songs`` arrangements, timed.

The songs are corpus pieces written as a user's files (riffd.models.training.songfiles:
chorales, then Ryan's Mammoth tunes; named and unnamed tracks, broken and block chords,
480 PPQN); writing them is not timed. The command then runs as a user runs it, with its
defaults, in a child process: build, fine-tune, ONNX export, calibration, before/after
evaluation. Target (issue 12): under 20 minutes for 500 songs on 2 cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

TARGET_MINUTES = 20.0


def finetune(songs: int = 500, as_json: bool = False, echo=print) -> dict:
    """Run the benchmark; echo the command's summary and, with ``as_json``, one JSON object
    with ``songs``, ``minutes`` (wall time of the command), ``stages`` (its own minutes
    per stage), the before/after rows and ``target_met``."""
    from riffd.models.training.songfiles import write_songs

    from .liverig import RIFFD
    with tempfile.TemporaryDirectory(prefix="riffd-bench-finetune-") as tmp:
        folder, out = Path(tmp) / "songs", Path(tmp) / "ckpt"
        written = len(write_songs(folder, songs))
        echo(f"bench finetune: {written} songs written; running riffd finetune --midi")
        t0 = time.monotonic()
        run = subprocess.run([*RIFFD, "finetune", "--midi", str(folder), "-o", str(out)],
                             capture_output=True, text=True)
        minutes = (time.monotonic() - t0) / 60
        if run.returncode != 0:
            raise RuntimeError(f"riffd finetune failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
        report = json.loads((out / "finetune.json").read_text())
    result = {"songs": written, "minutes": round(minutes, 2), "stages": report["minutes"],
              "pieces": report["pieces"], "cores": os.cpu_count(), "target_minutes": TARGET_MINUTES,
              "target_met": minutes < TARGET_MINUTES}
    for name in ("real", "before", "after"):
        if name in report.get("eval", {}):
            row = report["eval"][name]
            result[name] = {k: row[k] for k in ("judge", "composite", "chord_tone_ratio", "pc_entropy",
                                                "notes_per_bar", "repetition_2bar") if k in row}
    for line in run.stdout.strip().splitlines()[-3:]:
        echo(line)
    echo(f"bench finetune: {written} songs in {minutes:.1f} min on {os.cpu_count()} cores "
         f"(target under {TARGET_MINUTES:.0f}: {'met' if result['target_met'] else 'not met'})")
    if as_json:
        echo(json.dumps(result))
    return result
