"""`riffd finetune --midi DIR`: a folder of a user's arrangements in, a checkpoint that
plays out, with the held-out songs evaluated before and after."""
from __future__ import annotations

import json

import numpy as np

from riffd.models.checkpoint import DEFAULT
from riffd.models.training.finetune import CALIBRATION_ROUNDS, CALIBRATION_SONGS, CHORD_TONE_BIASES, held_out
from riffd.models.training.songfiles import write_songs
from riffd.presets import load_preset

from conftest import run_riffd

TRAIN = ("--epochs", "1", "--epoch-steps", "3", "--batch-size", "2", "--seq-len", "32", "--warmup", "2")


def test_finetune_midi_builds_trains_exports_and_evaluates(tmp_path):
    import mlx.core as mx
    folder = tmp_path / "my génre"
    songs = write_songs(folder, 150)
    (folder / "noise.mid").write_bytes(np.random.default_rng(2).bytes(1500))
    out = tmp_path / "ckpt"
    # run from elsewhere than the project: --init's default is the shipped riff-small wherever riffd runs
    result = run_riffd("finetune", "--midi", str(folder), "-o", str(out), "--lora-rank", "4",
                       "--calibration-songs", "20", *TRAIN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "finetune.json").read_text())
    assert report["pieces"]["user"]["train"] > 100 and report["rejected"].get("unparsable") == 1
    assert set(report["minutes"]) == {"build", "train", "export", "calibrate", "eval", "total"}
    calibration = json.loads((out / "calibration.json").read_text())  # fitted on the training split
    assert calibration["meta"]["pieces"] == 20 and len(calibration["meta"]["rounds"]) == CALIBRATION_ROUNDS + 1
    assert calibration["meta"]["tables"] == ["interval", "chord_pc", "centre", "memory", "duration"]
    assert all("duration_l1" in r for r in calibration["meta"]["rounds"])  # the rhythm's shares are fitted too
    # the held-out songs are the test split's files, none of them trained on
    held = held_out(folder, out / "dataset")
    meta = [json.loads(line) for line in (out / "dataset" / "pieces.jsonl").read_text().splitlines()]
    trained = {m["id"].split("/")[1] for m in meta if m["split"] == "train"}
    assert len(held) >= 10 and not {p.found["file"] for p in held} & trained
    assert report["held_out"] == {"songs": len(held), "splits": ["test"]}
    assert {p.found["file"] for p in held} <= {s.name for s in songs}
    rows = report["eval"]
    assert set(rows) == {"real", "before", "after"} and len(rows["after"]["distances"]) == len(held)
    assert rows["before"]["distances"] != rows["after"]["distances"]  # other weights, other melodies
    assert "| after |" in (out / "eval" / "report.md").read_text()
    card = (out / "README.md").read_text()  # the model card says how it was made
    assert "`riffd finetune` from `riff-small` (LoRA rank 4 on the last 4 layers" in card and "12 keys" in card
    # the start is named as the project names it, not by this machine's folders
    assert json.loads((out / "config.json").read_text())["training"]["init"] == "models/checkpoints/riff-small"
    assert "learned under the `pop` style token" in card and report["style"] == "pop"
    # its preset plays this model under that token, with the chord-tone bias whose chord tones
    # on the validation songs came closest to theirs
    written = load_preset(out / "preset.toml")
    assert 'model = "."' in (out / "preset.toml").read_text(encoding="utf-8")  # the folder may move
    assert report["preset"] == str(out / "preset.toml") and f"--preset {out / 'preset.toml'}" in card
    bias = report["chord_tone_bias"]
    ratios = {float(b): r for b, r in bias["played"].items()}
    assert set(ratios) == set(CHORD_TONE_BIASES) and 0 < bias["real"] < 1
    assert ratios[max(ratios)] > ratios[0.0]  # the bias pushes chord tones
    assert bias["chosen"] == min(ratios, key=lambda b: (abs(ratios[b] - bias["real"]), abs(b)))
    assert f"chord-tone bias {bias['chosen']:g}" in card and "validation songs" in bias["why"]
    assert (written.model, written.style, written.chord_tone_bias) == (str(out.resolve()), "pop", bias["chosen"])
    assert written.with_values(**{k: getattr(load_preset("pop"), k) for k in ("name", "model", "chord_tone_bias")}) \
        == load_preset("pop")  # every other key is the --preset's
    trained_with = json.loads((out / "config.json").read_text())["training"]["config"]
    assert trained_with["learning_rate"] == 5e-4 and trained_with["max_minutes"] == 12.0  # --midi's defaults
    assert "before: told from real" in result.stdout and "after: told from real" in result.stdout
    # LoRA folded in: the plain architecture, with only adapted layers changed
    base, tuned = mx.load(str(DEFAULT / "model.safetensors")), mx.load(str(out / "model.safetensors"))
    changed = {k for k in base if not np.array_equal(np.array(base[k]), np.array(tuned[k]))}
    assert set(base) == set(tuned) and changed and "model.embed_tokens.weight" not in changed
    # its preset plays it, on onnxruntime (the export written next to the weights)
    chords = tmp_path / "chords.mid"
    chords.write_bytes(songs[1].read_bytes())
    played = run_riffd("render", str(chords), "-o", str(tmp_path / "out.mid"), "--preset", str(out / "preset.toml"),
                       "--seed", "2")
    assert played.returncode == 0, played.stderr
    assert f"model {out.resolve()}, seed 2" in played.stdout  # the checkpoint played, named by its preset
    assert (tmp_path / "out.mid").stat().st_size > 100


def test_finetune_needs_a_source_and_usable_songs(tmp_path):
    assert run_riffd("finetune", "-o", str(tmp_path / "x")).returncode == 2
    empty = tmp_path / "nothing usable"
    empty.mkdir()
    (empty / "a.mid").write_bytes(b"MThd not really")
    result = run_riffd("finetune", "--midi", str(empty), "-o", str(tmp_path / "y"), *TRAIN)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "split" in result.stderr or "songs" in result.stderr, result.stderr
    # the help's default is the one the command uses
    assert f"calibration is fitted on [{CALIBRATION_SONGS}]" in " ".join(run_riffd("finetune", "--help").stdout.split())


def test_a_checkpoint_option_takes_a_shipped_name():
    from pathlib import Path

    from riffd.daemon.cli_models import SHIPPED_SMALL, checkpoint_path
    assert SHIPPED_SMALL == DEFAULT and (SHIPPED_SMALL / "config.json").is_file()
    assert checkpoint_path(None, None, Path("riff-chorale")) == DEFAULT.parent / "riff-chorale"
    assert checkpoint_path(None, None, Path("nosuch")) == Path("nosuch")  # left for the command to refuse
    assert checkpoint_path(None, None, Path("a/riff-chorale")) == Path("a/riff-chorale")


def test_dataset_songs_writes_corpus_works_as_a_users_files(tmp_path):
    from riffd.models.evaluation.arrangements import read_folder
    result = run_riffd("dataset", "songs", "-o", str(tmp_path / "pal"), "--source", "palestrina", "--count", "3")
    assert result.returncode == 0, result.stderr
    pieces, accounts = read_folder(tmp_path / "pal", echo=lambda line: None)
    assert len(pieces) == 3 and all(len(p.melody) > 20 and len(p.chords) > 5 for p in pieces), accounts
    unknown = run_riffd("dataset", "songs", "-o", str(tmp_path / "x"), "--source", "nobody", "--count", "1")
    assert unknown.returncode == 2 and "no works of 'nobody'" in unknown.stderr


def test_finetune_midi_stops_and_resumes(tmp_path):
    folder = tmp_path / "songs"
    write_songs(folder, 30)
    # --midi's default: every weight; a calibration on two songs (on all 22 it took 80 of the run's 90 s)
    out, args = tmp_path / "ckpt", ("--preset", "folk", "--calibration-songs", "2", *TRAIN[2:])
    first = run_riffd("finetune", "--midi", str(folder), "-o", str(out), "--epochs", "2", "--stop-after", "1", *args)
    assert first.returncode == 0, first.stderr
    assert "stopped after 1 epochs" in first.stdout
    # 30 songs hold out fewer than 10 test songs: the validation split's are evaluated too,
    # without the two-sample test when they are still fewer than 10
    report = json.loads((out / "finetune.json").read_text())
    meta = [json.loads(line) for line in (out / "dataset" / "pieces.jsonl").read_text().splitlines()]
    split_of = {m["id"].split("/")[1]: m["split"] for m in meta}
    held = held_out(folder, out / "dataset", ("test", "valid"))
    assert report["held_out"] == {"songs": len(held), "splits": ["test", "valid"]} and 0 < len(held)
    assert {split_of[p.found["file"]] for p in held} <= {"test", "valid"}
    assert len(held) == sum(1 for split in split_of.values() if split != "train")  # every held-out file
    rows = report["eval"]
    assert len(rows["after"]["distances"]) == len(held) and "before: told from real" in first.stdout
    assert len(held) < 10 and rows["after"]["judge"] is None  # 7 test and 1 validation song, by their names' hash
    assert "Told from real: not tested" in (out / "eval" / "report.md").read_text()
    # the validation songs are evaluated, so the bias is not set on them
    assert report["chord_tone_bias"]["chosen"] == 0.0 and report["chord_tone_bias"]["played"] == {}
    assert load_preset(out / "preset.toml").chord_tone_bias == 0.0
    assert f"closer to the held-out songs: {report['eval_tests'][0]['closer']} (Wilcoxon p" in first.stdout
    again = run_riffd("finetune", "--midi", str(folder), "-o", str(out), "--epochs", "2", "--resume", *args)
    assert again.returncode == 0, again.stderr
    assert "resuming after epoch 1" in again.stdout
    trained_with = json.loads((out / "config.json").read_text())["training"]
    assert trained_with["epochs"] == 2 and trained_with["config"]["lora_rank"] == 0
    assert "`riffd finetune` from `riff-small` (every weight)" in (out / "README.md").read_text()
    # no --style: the songs are learned under the --preset's, so that it plays them live
    styles = {json.loads(line)["style"] for line in (out / "dataset" / "pieces.jsonl").read_text().splitlines()}
    assert styles == {"folk"} and (out / "README.md").read_text().count("learned under the `folk` style token") == 1


def test_training_again_keeps_the_cards_hand_written_items(tmp_path):
    from riffd.models.training.train import write_card
    config = {"architecture": {"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 192,
                               "num_attention_heads": 4},
              "parameters": 1000, "max_context": 256,
              "training": {"data": "data/tunes", "init": "models/checkpoints/riff-small", "pieces": {"ryans": {"train": 9}},
                           "keys": [0], "steps": 10, "epochs": 1, "minutes": 0.5, "tokens_seen": 2560,
                           "config": {"lora_rank": 8, "lora_layers": 4, "seed": 0}},
              "metrics": {"test_perplexity": 1.9, "test_accuracy": 0.8, "test_tokens": 100}}
    write_card(tmp_path, config)
    card = tmp_path / "README.md"
    mine = "- **What it is for**: the fiddle preset's model,\n  reels and jigs.\n"
    card.write_text(card.read_text() + mine + "\nA paragraph finetune appends.\n\n## Evaluation\n\n| a |\n")
    config["metrics"]["test_perplexity"] = 1.7
    write_card(tmp_path, config)
    text = card.read_text()
    assert mine in text and "perplexity\n  1.7," in text and "1.9" not in text
    assert text.count("- **Data**") == 1 and "appends" not in text and "## Evaluation" not in text
