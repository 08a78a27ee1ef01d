"""`riffd blend BASE TUNED -o OUT`: a model and its fine-tune, weight by weight."""
from __future__ import annotations

import json
import shutil

import numpy as np
from safetensors.numpy import load_file

from riffd.models import SHIPPED, load_model
from riffd.models.backends import OnnxRunner

from conftest import run_riffd


def test_blend_mixes_every_weight_and_plays(tmp_path, chorale_piece):
    out = tmp_path / "mine"
    result = run_riffd("blend", "riff-small", "riff-folksong", "--weight", "0.25", "-o", str(out))
    assert result.returncode == 0, result.stderr
    base, tuned, mixed = (load_file(str(f / "model.safetensors")) for f in
                          (SHIPPED / "riff-small", SHIPPED / "riff-folksong", out))
    assert set(mixed) == set(base)
    for name in base:  # a quarter of the way from the base to its fine-tune
        assert np.allclose(mixed[name], 0.75 * base[name] + 0.25 * tuned[name], atol=1e-6), name
    assert any(not np.array_equal(mixed[n], base[n]) for n in base)  # the fine-tune's changes are in it
    config = json.loads((out / "config.json").read_text())
    assert config["blend"]["weight"] == 0.25 and "metrics" not in config  # the base's figures are not the blend's
    assert not (out / "calibration.json").exists()  # riff-folksong's was fitted to riff-folksong
    assert (out / "model.safetensors").stat().st_mode == (out / "config.json").stat().st_mode  # readable as any file
    chords = tmp_path / "chords.mid"
    chorale_piece.to_midi(with_melody=False).save(chords)
    played = run_riffd("render", str(chords), "-o", str(tmp_path / "out.mid"), "--model", str(out), "--seed", "1")
    assert played.returncode == 0 and "rules" not in played.stderr, played.stderr  # the blend itself played
    assert isinstance(load_model(str(out)).runner, OnnxRunner)


def test_blend_refuses_checkpoints_that_are_not_one_model(tmp_path):
    other = tmp_path / "wider"
    other.mkdir()
    shutil.copy(SHIPPED / "riff-small" / "tokenizer.json", other)
    config = json.loads((SHIPPED / "riff-small" / "config.json").read_text())
    config["architecture"]["num_hidden_layers"] += 2
    (other / "config.json").write_text(json.dumps(config))
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED / "riff-folksong", broken)
    (broken / "model.safetensors").write_bytes(b"not weights" * 10)
    out = tmp_path / "out"
    for args, says in ((("riff-small", str(other)), "architecture"),
                       (("riff-small", str(broken)), "unreadable weights"),
                       (("riff-small", str(tmp_path)), "not a riffd checkpoint"),
                       (("riff-small", "riff-fiddle", "--weight", "1.5"), "1.5")):
        result = run_riffd("blend", *args, "-o", str(out))
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert not out.exists()  # nothing half written
