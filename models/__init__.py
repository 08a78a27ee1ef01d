"""Melody models behind one protocol (start, extend, generate, rollback); see protocol.py."""
from __future__ import annotations

import importlib
from pathlib import Path

BUILTIN = ("rules", "markov")
NEURAL = ("mlx", "onnx", "onnx-int8")
DEFAULT = "onnx"  # the shipped checkpoint on onnxruntime; rules is the fallback
SHIPPED = Path(__file__).parent / "checkpoints"


def load_model(name: str):
    """A fresh model by name.

    ``rules`` or ``markov``; ``mlx``, ``onnx`` or ``onnx-int8`` (the shipped checkpoint,
    models/checkpoints/riff-small, on that backend); a shipped checkpoint by its folder's
    name in models/checkpoints (``riff-fiddle``); or a path: a checkpoint folder (its
    ``model.onnx`` on onnxruntime when exported, else mlx; training removes an export
    its new weights outdate), a ``.onnx`` file inside one, its ``model.safetensors``
    (mlx), or a markov table (.json). The module ``riffd.models.<name>`` provides
    ``MODEL`` for the built-in ones (no registry).
    Raises ValueError for an unknown name or an unreadable model.
    """
    if name in BUILTIN:
        return importlib.import_module(f"riffd.models.{name}").MODEL()
    if name in NEURAL:
        from .checkpoint import DEFAULT as folder
        file = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}.get(name)
        return neural_model(folder, file, name)
    model = _load_path(name)
    model.name = name  # the name that loads it again (serve's phrase worker, /riffd/status)
    return model


def _load_path(name: str):
    """A model from a shipped checkpoint's name or a path (see load_model)."""
    path = checkpoint_folder(name)
    if path.suffix == ".onnx":
        return neural_model(path.parent, path.name, "onnx")
    if path.name == "model.safetensors" and path.is_file():
        return neural_model(path.parent, None, "mlx")
    if (path / "config.json").is_file():
        return checkpoint_model(path)
    if path.suffix == ".json" or path.is_file() or (path / "model.json").is_file():
        from .markov import MarkovModel, MarkovTable
        table_path = path / "model.json" if path.is_dir() else path
        try:
            return MarkovModel(MarkovTable.load(table_path))
        except OSError as exc:
            raise ValueError(f"{table_path}: cannot read model: {exc.strerror or exc}") from None
    raise ValueError(f"unknown model {name!r} (choose {', '.join(model_names())}, or a path to a model)")


def checkpoint_folder(name: str) -> Path:
    """``name`` as a path: a shipped checkpoint's folder for its name (riff-fiddle, say)
    unless a path of that name exists."""
    path = Path(name)
    return SHIPPED / name if not path.exists() and name in shipped_names() else path


def checkpoint_model(folder, calibrated: bool = True):
    """The model of checkpoint ``folder``: its ``model.onnx`` on onnxruntime when exported,
    else mlx; ``calibrated`` as neural_model's."""
    folder = Path(folder)
    if (folder / "model.onnx").is_file():
        return neural_model(folder, "model.onnx", "onnx", calibrated)
    return neural_model(folder, None, "mlx", calibrated)


def shipped_names() -> tuple[str, ...]:
    """The neural checkpoints in models/checkpoints, by folder name (riff-fiddle, riff-small)."""
    return tuple(sorted(p.name for p in SHIPPED.iterdir()
                        if (p / "model.onnx").is_file() or (p / "model.safetensors").is_file()))


def model_names() -> tuple[str, ...]:
    """Every name ``load_model`` takes besides a path."""
    return BUILTIN + NEURAL + shipped_names()


def is_shipped_neural(name: str) -> bool:
    """A neural model that ships with riffd (one that falls back to rules if it cannot load)."""
    return name in NEURAL or name in shipped_names()


def neural_model(folder, file: str | None, name: str, calibrated: bool = True):
    """A NeuralModel on the checkpoint ``folder``: mlx when ``file`` is None, else the
    ONNX ``file`` in it, with the folder's calibration.json if it has one (and
    ``calibrated``). Raises ValueError (a CheckpointError or CalibrationError) when it
    cannot load."""
    from .backends import MlxRunner, OnnxRunner
    from .calibration import Calibration
    from .checkpoint import Checkpoint
    from .neural import NeuralModel
    check = Checkpoint.load(folder)
    runner = MlxRunner(check) if file is None else OnnxRunner(check, file)
    calibration = Calibration.load(folder) if calibrated else None
    model = NeuralModel(runner, check.vocab, check.max_context, name, calibration)
    if calibration is not None:
        calibration.duration_bias(len(model.groups.durations))  # raises for another vocabulary's table
    return model


def load_or_fallback(name: str, warn=print):
    """``load_model(name)``, or the rules model (with a warning) when a neural model cannot
    load: the daemon keeps playing."""
    try:
        return load_model(name)
    except (ValueError, ImportError, OSError) as exc:
        if name in BUILTIN:
            raise
        warn(f"riffd: model {name!r} unavailable ({exc}); using rules")
        return load_model("rules")
