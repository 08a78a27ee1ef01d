"""`riffd blend BASE TUNED -o OUT`: a checkpoint between a model and its fine-tune.

Every weight of OUT is ``(1 - weight) * base + weight * tuned``: weight-space ensembling
of a model and its fine-tune, which keeps part of what the fine-tune learned and can
carry further, to music neither learned, than the fine-tune alone (WiSE-FT: Wortsman et
al., "Robust fine-tuning of zero-shot models", CVPR 2022; riffd's riff-air on Aird's
airs: docs/measured.md, "Weight-space blends"). Both checkpoints must share an
architecture and a vocabulary, as a fine-tune and the model it started from do.

OUT gets BASE's config.json (less its training and metrics, plus the blend's sources),
its tokenizer.json, the blended model.safetensors and a model card (README.md); no
calibration.json, since a calibration is fitted to one model's sampling (``riffd
calibrate`` fits one to the blend).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from riffd.bridges.atomic import atomic_path

from ..checkpoint import Checkpoint, CheckpointError


def blend(base: str | Path, tuned: str | Path, out: str | Path, weight: float = 0.5) -> Path:
    """Write the checkpoint folder ``out`` whose weights are ``(1 - weight) * base +
    weight * tuned``, element by element, in the weights' own dtype (float32).
    ``weight`` (0 to 1): 0 is ``base``, 1 is ``tuned``. Returns ``out``. Raises
    ValueError for a weight outside 0-1 or ``out`` being one of the two, and
    CheckpointError when either is not a checkpoint with weights or the two differ in
    architecture, vocabulary or weight names and shapes."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file, save_file
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be between 0 and 1, not {weight}")
    a, b = Checkpoint.load(base), Checkpoint.load(tuned)
    out = Path(out)
    if out.resolve() in (a.path.resolve(), b.path.resolve()):
        raise ValueError(f"{out}: write the blend to a new folder, not over one of its checkpoints")
    if a.arch != b.arch or a.max_context != b.max_context:
        raise CheckpointError(f"{a.path} and {b.path} differ in architecture: blend a model with its own fine-tune")
    if a.vocab.ids != b.vocab.ids:
        raise CheckpointError(f"{a.path} and {b.path} differ in vocabulary: blend a model with its own fine-tune")
    files = a.existing_weights(), b.existing_weights()
    try:
        wa, wb = (load_file(str(f)) for f in files)
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"unreadable weights ({exc})") from None
    if {k: v.shape for k, v in wa.items()} != {k: v.shape for k, v in wb.items()}:
        raise CheckpointError(f"{a.path} and {b.path} differ in their weights' names or shapes")
    mixed = {k: ((1.0 - weight) * wa[k] + weight * wb[k]).astype(wa[k].dtype) for k in wa}
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.onnx", "model.int8.onnx", "calibration.json"):
        (out / stale).unlink(missing_ok=True)  # from an earlier blend into the same folder
    # whole or not at all, and with a new file's permissions (safetensors writes 0600)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(mixed, str(tmp))
    # the base's shape; its training and test metrics describe the base, not the blend
    config = {k: v for k, v in a.config.items() if k not in ("training", "metrics")}
    config["blend"] = {"base": str(a.path), "tuned": str(b.path), "weight": weight}
    (out / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copyfile(a.path / "tokenizer.json", out / "tokenizer.json")
    (out / "README.md").write_text(card(a.path, b.path, weight))
    return out


def card(base: Path, tuned: Path, weight: float) -> str:
    """The blend's model card (Markdown)."""
    return (f"# {Path(base).name} and {Path(tuned).name}, blended\n\n"
            f"Every weight is {1 - weight:g} x `{base}` + {weight:g} x `{tuned}` "
            f"(`riffd blend {base} {tuned} --weight {weight:g}`): weight-space ensembling of a\n"
            "model and its fine-tune (WiSE-FT: Wortsman et al., \"Robust fine-tuning of zero-shot\n"
            "models\", CVPR 2022). The architecture, window and vocabulary are the base's\n"
            "(config.json, tokenizer.json). No calibration: `riffd calibrate` fits one.\n")
