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

    def __init__(self, checkpoint: Checkpoint, model=None):
        from .blas import use_fast_blas
        use_fast_blas()  # before mlx_lm imports mlx.core
        from mlx_lm.models.cache import make_prompt_cache
        self._make_cache = make_prompt_cache
        self.checkpoint = checkpoint
        self.model = checkpoint.mlx_model() if model is None else model
        self.reset()

    def twin(self) -> "MlxRunner":
        """A runner on the same weights with a KV cache of its own."""
        return MlxRunner(self.checkpoint, self.model)

    def reset(self) -> None:
        self.cache = self._make_cache(self.model)
        self.length = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        import mlx.core as mx
        logits = self.model(mx.array([ids], dtype=mx.int32), cache=self.cache)[0, -1]
        self.length += len(ids)
        return np.array(logits, dtype=np.float32)

    def warm(self) -> None:
        """Nothing: mlx runs lazily, and the mlx runner is not the live default."""

    def trim(self, n: int) -> None:
        from mlx_lm.models.cache import trim_prompt_cache
        trim_prompt_cache(self.cache, n)
        self.length -= n

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """All logits of one sequence without a cache: shape (len(ids), vocab)."""
        import mlx.core as mx
        return np.array(self.model(mx.array(ids[None], dtype=mx.int32))[0], dtype=np.float32)


SHORT_FEED = 4  # feeds of up to this many tokens (a step) reuse arrays bound once


class OnnxRunner:
    """``model.onnx`` (or ``model.int8.onnx``) of a checkpoint on onnxruntime's CPU provider.

    ``threads``: intra-op threads; at batch 1 every operator is too small to split, so
    one thread is fastest (the time goes to reading the weights, once per call).

    A graph that takes ``past_length`` (the fused export) keeps its KV cache in one
    buffer per layer that GroupQueryAttention writes in place (bound as input and output
    through onnxruntime's IO binding): a call costs the same at any cache length, and
    ``trim`` only moves the length. The buffer holds ``max_context`` + 64 positions and
    doubles when a feed needs more. Other graphs pass the past in and take the present out.
    """

    def __init__(self, checkpoint: Checkpoint, file: str = "model.onnx", threads: int = 1, session=None):
        self.checkpoint, self.file = checkpoint, file
        self.session = self._session(checkpoint, file, threads) if session is None else session
        arch = checkpoint.arch
        self.layers = arch["num_hidden_layers"]
        self.kv_heads = arch.get("num_key_value_heads") or arch["num_attention_heads"]
        self.head_dim = arch.get("head_dim") or arch["hidden_size"] // arch["num_attention_heads"]
        self.names = [f"{kv}_{i}" for i in range(self.layers) for kv in ("key", "value")]
        self.outputs = ["logits"] + [f"present_{n}" for n in self.names]
        self.shared = "past_length" in {i.name for i in self.session.get_inputs()}
        self.vocab = checkpoint.arch["vocab_size"]
        self.past_length = np.zeros((), dtype=np.int64)  # bound to every step's binding
        self._steps: dict = {}  # n -> (input_ids (1, n), logits (1, n, vocab), its IOBinding)
        self.capacity = 0
        if self.shared:
            self._allocate(checkpoint.max_context + 64)
        self.reset()

    @staticmethod
    def _session(checkpoint: Checkpoint, file: str, threads: int):
        import onnxruntime as ort
        path = Path(checkpoint.path) / file
        if not path.exists():
            raise CheckpointError(f"{path} not found (run: riffd export onnx {checkpoint.path})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def twin(self) -> "OnnxRunner":
        """A runner on the same session (weights, loaded once) with a KV cache of its own."""
        return OnnxRunner(self.checkpoint, self.file, session=self.session)

    def _allocate(self, capacity: int) -> None:
        """(Re)make the shared buffers with room for ``capacity`` positions, keeping the cache."""
        import onnxruntime as ort
        old, keep = getattr(self, "buffers", None), getattr(self, "length", 0)
        shape = (1, self.kv_heads, capacity, self.head_dim)
        self.buffers = {n: np.zeros(shape, dtype=np.float32) for n in self.names}
        if old is not None and keep:
            for n in self.names:
                self.buffers[n][:, :, :keep] = old[n][:, :, :keep]
        self.values = [(n, ort.OrtValue.ortvalue_from_numpy(a)) for n, a in self.buffers.items()]  # share memory
        self.binding = self.session.io_binding()
        self.binding.bind_output("logits")  # output 0, bound again per call (its shape varies)
        self._bind_cache(self.binding)
        self._steps.clear()
        self.capacity = capacity

    def reset(self) -> None:
        if not self.shared:  # the shared buffers keep their memory: length 0 empties them
            empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
            self.past = {f"past_{n}": empty for n in self.names}
        self.length = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        if not self.shared:
            out = self.session.run(self.outputs, {"input_ids": np.array([ids], dtype=np.int64), **self.past})
            self.past = {name.replace("present", "past"): v for name, v in zip(self.outputs[1:], out[1:])}
            self.length += len(ids)
            return out[0][0, -1]
        if self.length + len(ids) > self.capacity:
            self._allocate(2 * (self.length + len(ids)))
        if len(ids) <= SHORT_FEED:  # a step: its arrays and binding made once, written in place
            ids_in, logits, binding = self._steps.get(len(ids)) or self._step(len(ids))
            ids_in[0] = ids
            self.past_length[()] = self.length
            self.session.run_with_iobinding(binding)
            self.length += len(ids)
            return logits[0, -1].copy()
        return self._prefill(ids)[-1]

    def _prefill(self, ids: list[int]) -> np.ndarray:
        """Feed ``ids`` through the general binding; their logits, shape (len(ids), vocab)."""
        self.binding.bind_cpu_input("input_ids", np.array([ids], dtype=np.int64))
        self.binding.bind_cpu_input("past_length", np.array(self.length, dtype=np.int64))
        self.binding.bind_output("logits")
        self.session.run_with_iobinding(self.binding)
        self.length += len(ids)
        return self.binding.get_outputs()[0].numpy()[0]

    def _bind_cache(self, binding) -> None:
        """Bind the KV cache buffers to ``binding`` as past (input) and present (output)."""
        for n, value in self.values:
            binding.bind_ortvalue_input(f"past_{n}", value)
            binding.bind_ortvalue_output(f"present_{n}", value)

    def _step(self, n: int) -> tuple:
        """The arrays and binding of an ``n``-token step (binding fresh arrays per call cost
        0.03 ms of a 0.2 ms call, and steps of 1 and 2 tokens alternate)."""
        import onnxruntime as ort
        ids_in, logits = np.zeros((1, n), dtype=np.int64), np.zeros((1, n, self.vocab), dtype=np.float32)
        binding = self.session.io_binding()
        self._bind_cache(binding)
        binding.bind_ortvalue_input("input_ids", ort.OrtValue.ortvalue_from_numpy(ids_in))
        binding.bind_ortvalue_input("past_length", ort.OrtValue.ortvalue_from_numpy(self.past_length))
        binding.bind_ortvalue_output("logits", ort.OrtValue.ortvalue_from_numpy(logits))
        self._steps[n] = (ids_in, logits, binding)
        return self._steps[n]

    def warm(self) -> None:
        """Run one step over the cache without keeping it (``length`` is unchanged), so
        that the weights and the cache stay in the CPU caches between chord changes.
        After 200 ms idle two steps cost 1.2 and 0.8 ms (0.4 back to back); with a warm-up
        every 10 ms, 0.6 and 0.45 ms (``tests/test_neural.py`` checks that it changes
        nothing). Never raises: a failing session is reported by the next ``feed``."""
        if not self.shared or self.length == 0 or self.length >= self.capacity:
            return
        ids_in, _, binding = self._steps.get(1) or self._step(1)
        ids_in[0] = [0]
        self.past_length[()] = self.length
        try:
            self.session.run_with_iobinding(binding)  # writes past the end: the next feed overwrites it
        except Exception:
            pass

    def trim(self, n: int) -> None:
        keep = self.length - n
        if not self.shared:
            self.past = {k: v[:, :, :keep] for k, v in self.past.items()}
        self.length = keep

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """All logits of one sequence from an empty cache: shape (len(ids), vocab)."""
        self.reset()
        if self.shared:
            if len(ids) > self.capacity:
                self._allocate(2 * len(ids))
            logits = self._prefill([int(i) for i in ids])
            self.reset()
            return logits
        out = self.session.run(["logits"], {"input_ids": np.asarray(ids, dtype=np.int64)[None], **self.past})
        return out[0][0]
