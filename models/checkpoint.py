"""Checkpoints of the neural melody models: ``models/checkpoints/<name>/``.

A folder holds ``config.json`` (``architecture``: mlx-lm model arguments with its
``model_type``; ``max_context`` in tokens; ``tokenizer``: miditok's TokenizerConfig;
``training`` and ``metrics``), ``tokenizer.json`` (riffd's vocabulary),
``model.safetensors`` (MLX weights), and after ``riffd export onnx`` ``model.onnx`` and
``model.int8.onnx``. The architecture is found by name, as mlx-lm does it
(``mlx_lm.models.<model_type>``): no registry to keep.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from .tokens import Vocab

CHECKPOINTS = Path(__file__).parent / "checkpoints"
DEFAULT = CHECKPOINTS / "riff-small"

# riff-small: 4 layers of width 192, 1.9M parameters (7.5 MB in float32), so the
# float32 and INT8 ONNX copies fit beside the weights in 20 MB.
SMALL = {
    "model_type": "llama",
    "hidden_size": 192,
    "num_hidden_layers": 4,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_traditional": False,
    "tie_word_embeddings": True,
}


class CheckpointError(ValueError):
    """A folder that is not a usable checkpoint; the message says what is missing."""


def architecture(vocab_size: int, **overrides) -> dict:
    """mlx-lm model arguments for riff-small over a vocabulary of ``vocab_size`` tokens."""
    return {**SMALL, **overrides, "vocab_size": vocab_size}


def build_model(arch: dict):
    """A fresh mlx-lm model (random weights) for ``arch``; imports MLX after a fast BLAS."""
    from .blas import use_fast_blas
    use_fast_blas()
    try:
        module = importlib.import_module(f"mlx_lm.models.{arch['model_type']}")
    except ImportError:
        raise CheckpointError(f"mlx-lm has no model type {arch['model_type']!r}") from None
    return module.Model(module.ModelArgs.from_dict(arch))


@dataclass
class Checkpoint:
    """A checkpoint folder read from disk: ``config`` (config.json) and ``vocab``."""
    path: Path
    config: dict
    vocab: Vocab

    @classmethod
    def load(cls, path: str | Path = DEFAULT) -> Checkpoint:
        """Read ``config.json`` and ``tokenizer.json``; raises CheckpointError."""
        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text())
            vocab = Vocab.load(path / "tokenizer.json")
            config["architecture"]["model_type"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: not a riffd checkpoint ({exc})") from None
        if config["architecture"].get("vocab_size") != len(vocab):
            raise CheckpointError(f"{path}: config.json and tokenizer.json disagree on the vocabulary size")
        return cls(path, config, vocab)

    @property
    def arch(self) -> dict:
        return self.config["architecture"]

    @property
    def max_context(self) -> int:
        """Tokens the model attends to at most (its training window)."""
        return int(self.config.get("max_context", 256))

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    def existing_weights(self) -> Path:
        """``weights``, the file; raises CheckpointError when the folder has none."""
        if not self.weights.exists():
            raise CheckpointError(f"{self.path}: no model.safetensors")
        return self.weights

    def mlx_model(self):
        """The mlx-lm model with this checkpoint's weights (float32, eval mode)."""
        model = build_model(self.arch)
        model.load_weights(str(self.existing_weights()))
        model.eval()
        return model


def save(path: str | Path, model, config: dict, vocab: Vocab) -> Path:
    """Write ``model``'s weights, ``config`` and ``vocab`` to the folder ``path``."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (path / "config.json").write_text(json.dumps(config, indent=1))
    vocab.save(path / "tokenizer.json")
    return path
