"""Runners: a checkpoint's transformer with its KV cache, behind one small interface.

``feed(ids) -> logits`` (shape (vocab,), float32, after the last id), ``trim(n)``,
``reset()``, ``length``. ``MlxRunner`` uses mlx-lm's model and KV cache;
``OnnxRunner`` runs ``model.onnx`` (riffd.models.training.onnx_export) on onnxruntime's CPU
provider, passing the past keys and values in and out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .checkpoint import Checkpoint, CheckpointError


class MlxRunner:
    """The checkpoint's mlx-lm model; the KV cache is mlx-lm's ``KVCache`` per layer."""

    def __init__(self, checkpoint: Checkpoint):
        from .blas import use_fast_blas
        use_fast_blas()  # before mlx_lm imports mlx.core
        from mlx_lm.models.cache import make_prompt_cache
        self._make_cache = make_prompt_cache
        self.model = checkpoint.mlx_model()
        self.reset()

    def reset(self) -> None:
        self.cache = self._make_cache(self.model)
        self.length = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        import mlx.core as mx
        logits = self.model(mx.array([ids], dtype=mx.int32), cache=self.cache)[0, -1]
        self.length += len(ids)
        return np.array(logits, dtype=np.float32)

    def trim(self, n: int) -> None:
        from mlx_lm.models.cache import trim_prompt_cache
        trim_prompt_cache(self.cache, n)
        self.length -= n

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """All logits of one sequence without a cache: shape (len(ids), vocab)."""
        import mlx.core as mx
        return np.array(self.model(mx.array(ids[None], dtype=mx.int32))[0], dtype=np.float32)


class OnnxRunner:
    """``model.onnx`` (or ``model.int8.onnx``) of a checkpoint on onnxruntime's CPU provider.

    ``threads``: intra-op threads; at batch 1 every operator is too small to split, so
    one thread is fastest (the time goes to reading the weights, once per call).
    """

    def __init__(self, checkpoint: Checkpoint, file: str = "model.onnx", threads: int = 1):
        import onnxruntime as ort
        path = Path(checkpoint.path) / file
        if not path.exists():
            raise CheckpointError(f"{path} not found (run: riffd export onnx {checkpoint.path})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        arch = checkpoint.arch
        self.layers = arch["num_hidden_layers"]
        self.kv_heads = arch.get("num_key_value_heads") or arch["num_attention_heads"]
        self.head_dim = arch.get("head_dim") or arch["hidden_size"] // arch["num_attention_heads"]
        self.outputs = ["logits"] + [f"present_{kv}_{i}" for i in range(self.layers) for kv in ("key", "value")]
        self.reset()

    def reset(self) -> None:
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
        self.past = {f"past_{kv}_{i}": empty for i in range(self.layers) for kv in ("key", "value")}
        self.length = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        out = self.session.run(self.outputs, {"input_ids": np.array([ids], dtype=np.int64), **self.past})
        self.past = {name.replace("present", "past"): v for name, v in zip(self.outputs[1:], out[1:])}
        self.length += len(ids)
        return out[0][0, -1]

    def trim(self, n: int) -> None:
        keep = self.length - n
        self.past = {k: v[:, :, :keep] for k, v in self.past.items()}
        self.length = keep

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """All logits of one sequence from an empty cache: shape (len(ids), vocab)."""
        self.reset()
        out = self.session.run(["logits"], {"input_ids": np.asarray(ids, dtype=np.int64)[None], **self.past})
        return out[0][0]
