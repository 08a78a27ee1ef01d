"""`riffd finetune --midi DIR`: a genre in one command.

The user's arrangements become a dataset (melody track and per-beat chords found as
``riffd eval`` finds them; split 80/10/10 by file, the training split in 12 keys), the
checkpoint ``init`` is fine-tuned on it (as ``cfg`` says: every weight, the command's
default, or mlx-lm LoRA folded into plain weights), exported to ONNX, calibrated on the
training split (models/calibration.py), ``OUT/preset.toml`` is written (the preset to
play it with, its chord-tone bias set on the validation songs: ``chosen_bias``), and the
held-out songs (the test split's files, read whole; with fewer
than 10 of them the validation split's too) are played with that preset by the model
before and after: ``OUT/eval/report.md``. Stages and their minutes go to
``OUT/finetune.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .dataset import Filters, build, summary_line

MIN_HELD_OUT = 10  # the evaluation's two-sample test needs 10 pieces (suite.JUDGE_PIECES)
# 200 training songs in 4 rounds: 60 in 2 left the fit still moving (Palestrina told from real 0.739
# against 0.660); about 2 of the command's minutes (docs/measured.md, "A longer calibration")
CALIBRATION_SONGS, CALIBRATION_ROUNDS = 200, 4
# The written preset's chord-tone bias: of these, the one whose chord tones on the validation
# songs come closest to theirs (as the shipped presets are set, per genre); 0 where those songs
# are the ones evaluated. Fitted and calibrated on the songs, a model mostly keeps their share
# (Palestrina: the chorale preset's 0.1 overshot by 0.05), but not always (Aird's airs: 0.04
# under at 0): docs/measured.md, "The fine-tune's own preset", "The bias from the validation songs".
# Below 0 for songs with fewer chord tones than the model plays unbiased (pop: "Pop's chord tones").
CHORD_TONE_BIASES = (-0.4, -0.2, 0.0, 0.1, 0.2, 0.3, 0.4, 0.6)
# a user's melodies may be narrow (a chorus on five notes): only degenerate ones are dropped
USER_FILTERS = Filters(max_polyphony=1, min_range=5, max_range=48)


def user_splits(data: str | Path) -> dict[str, str]:
    """The split (train, valid, test) of each user file of ``data``'s build, by file name."""
    found = {}
    for line in (Path(data) / "pieces.jsonl").read_text().splitlines():
        meta = json.loads(line) if line.strip() else {}
        if meta.get("source") == "user":
            found[meta["id"].split("/")[1]] = meta["split"]  # identity: source/file/name
    return found


def held_out(midi_dir: str | Path, data: str | Path, splits: tuple[str, ...] = ("test",)) -> list:
    """The arrangements (riffd.models.evaluation.arrangements.Arrangement) of the user's
    files that ``data``'s build put in one of ``splits``, read whole, sorted by path (the
    build knows files by name: two files of one name in different folders go together)."""
    from riffd.models.evaluation.arrangements import ArrangementError, read_arrangement
    names = {name for name, split in user_splits(data).items() if split in splits}
    out = []
    for path in sorted(p for p in Path(midi_dir).rglob("*") if p.name in names and p.is_file()):
        try:
            out.append(read_arrangement(path))
        except ArrangementError:  # read once already by the build: cannot happen twice
            continue
    return out


def finetune_midi(midi_dir: str | Path, out: str | Path, init: str | Path, cfg, preset, style: str | None = None,
                  jobs: int | None = None, seed: int = 0, log=print, resume: bool = False,
                  stop_after: int | None = None, calibration_songs: int | None = None) -> dict:
    """Build, fine-tune, export and evaluate (module docstring); returns finetune.json's
    dict: ``minutes`` per stage (build, train, export, calibrate: the fit and ``chosen_bias``,
    eval, total), ``chord_tone_bias`` (``chosen_bias``'s dict), the dataset's
    counts, the held-out songs' splits, and the evaluation's before/after rows (absent
    with no held-out song; without the two-sample test under 10). ``cfg``:
    train.TrainConfig; ``preset``: the preset ``OUT/preset.toml`` is made from
    (``written_preset``), with ``style`` the token the songs are learned under (None:
    the preset's own); the calibration is fitted and the held-out songs are played with it.
    ``calibration_songs``: training songs the calibration is fitted on (None:
    CALIBRATION_SONGS). ``resume``/``stop_after``: as train.train's (the dataset is built again the same
    way: the split hashes names, the keys come from ``seed``). Raises ValueError when
    the folder yields too little data to train on (train.train's message),
    FileNotFoundError when there is nothing to resume, CheckpointError for a bad
    ``init``."""
    from .onnx_export import export
    from .train import train
    out, t0 = Path(out), time.monotonic()
    style = style or preset.style
    minutes: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        minutes[name] = round((time.monotonic() - since) / 60, 2)
        return time.monotonic()

    data = out / "dataset"
    summary = build(data, (), str(midi_dir), 0, None, USER_FILTERS, None, jobs, seed, user_style=style)
    log(summary_line(data, summary))
    t = lap("build", t0)
    train(data, out, cfg, init=init, resume=resume, stop_after=stop_after, log=log)
    t = lap("train", t)
    for path in export(out, int8=False):
        log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    t = lap("export", t)
    played = written_preset(out, preset, style, 0.0)
    from riffd.models.evaluation.calibrate import calibrate_checkpoint
    calibrate_checkpoint(out, data, played, calibration_songs or CALIBRATION_SONGS, CALIBRATION_ROUNDS, echo=log)
    log(f"wrote {out / 'calibration.json'}")
    # a small folder: the validation songs are held out from training too
    splits = ["test"] if list(user_splits(data).values()).count("test") >= MIN_HELD_OUT else ["test", "valid"]
    tuning = [] if "valid" in splits else held_out(midi_dir, data, ("valid",))
    bias = chosen_bias(out, played, tuning, seed, log)
    played = written_preset(out, preset, style, bias["chosen"])
    log(f"wrote {out / 'preset.toml'}")
    t = lap("calibrate", t)
    result = {"data": str(data), "style": style, "pieces": summary["pieces"], "rejected": summary["rejected"],
              "preset": str(out / "preset.toml"), "chord_tone_bias": bias}
    with open(out / "README.md", "a", encoding="utf-8") as card:  # train's model card: how to play it
        card.write(f"\nYour songs were learned under the `{style}` style token. Play them with "
                   f"`--preset {out / 'preset.toml'}`: `{preset.name}` with this model, that style token and "
                   f"chord-tone bias {bias['chosen']:g} ({bias['why']}), as `eval/report.md` played the held-out "
                   "songs.\n")
    held = held_out(midi_dir, data, tuple(splits))
    if "valid" in splits:
        log(f"riffd finetune: fewer than {MIN_HELD_OUT} test songs: evaluating the {len(held)} songs of the "
            "test and validation splits (the validation loss chose when to stop; nothing trained on them)")
    result["held_out"] = {"songs": len(held), "splits": splits}
    if held:
        from riffd.models.evaluation.report import write_report
        from riffd.models.evaluation.suite import evaluate_pieces
        evaluated = evaluate_pieces(held, [str(init), str(out)], played, seed,
                                    echo=log, labels=["before", "after"])
        named = " and ".join("validation" if s == "valid" else s for s in splits)
        write_report(evaluated, out / "eval", f"{len(held)} held-out songs ({named} splits) of {midi_dir}")
        result["eval"] = {k: evaluated["configs"][k] for k in ("real", "before", "after")}
        result["eval_tests"] = evaluated["tests"]
        result["eval_report"] = str(out / "eval" / "report.md")
    else:
        log("riffd finetune: no held-out song: no before/after evaluation")
    lap("eval", t)
    minutes["total"] = round((time.monotonic() - t0) / 60, 2)
    result["minutes"] = minutes
    (out / "finetune.json").write_text(json.dumps(result, indent=1))
    return result


def chosen_bias(out: Path, played, songs: list, seed: int, log=print) -> dict:
    """The chord-tone bias (of CHORD_TONE_BIASES) whose melodies, by the checkpoint ``out``
    with ``played`` over ``songs`` (Arrangements: the validation split's), have the mean
    chord-tone ratio closest to the songs' own (the bias nearer 0 on a tie); 0 without
    songs. Returns {"chosen", "why", "real", "played": {bias: ratio}} (ratios 0-1)."""
    if not songs:
        return {"chosen": 0.0, "why": "no validation song to set it on", "real": None, "played": {}}
    import numpy as np
    from riffd.models import load_model
    from riffd.models.evaluation.suite import piece_features, play
    model = load_model(str(out))
    real = float(np.mean([piece_features(p.melody, p).scalars["chord_tone_ratio"] for p in songs]))
    ratios = {}
    for b in CHORD_TONE_BIASES:
        melodies = play(model, songs, played.with_values(chord_tone_bias=b), seed)
        ratios[b] = round(float(np.mean([piece_features(m, p).scalars["chord_tone_ratio"]
                                         for m, p in zip(melodies, songs)])), 4)
    chosen = min(CHORD_TONE_BIASES, key=lambda b: (abs(ratios[b] - real), abs(b)))
    why = f"chord tones {ratios[chosen]:.3f} on the {len(songs)} validation songs, theirs {real:.3f}"
    log(f"riffd finetune: chord-tone bias {chosen:g}: {why}")
    return {"chosen": chosen, "why": why, "real": round(real, 4), "played": {f"{b:g}": r for b, r in ratios.items()}}


def written_preset(out: Path, preset, style: str, chord_tone_bias: float):
    """Write ``OUT/preset.toml``: ``preset`` with ``model`` the checkpoint ``out`` (written
    as ``"."``, the file's own folder, so that the folder can move), ``style`` and
    ``chord_tone_bias``; returns that preset as loaded (its ``model`` the absolute path)."""
    from riffd.presets import load_preset, to_toml
    played = preset.with_values(name=f"{preset.name}-{out.name}", model=".", style=style,
                                chord_tone_bias=chord_tone_bias)
    path = out / "preset.toml"
    path.write_text(to_toml(played, f"Written by `riffd finetune --midi`: the preset {preset.name!r} for "
                                    f"the model in this folder (model \".\": this folder, wherever it is)."),
                    encoding="utf-8")
    return load_preset(path)
