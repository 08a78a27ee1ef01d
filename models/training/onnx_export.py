"""``riffd export onnx``: the checkpoint's llama graph, written with the ``onnx`` package.

The graph is built node by node from ``model.safetensors`` (no PyTorch): token
embedding, per layer RMSNorm, attention with rotary position embedding (RoPE, Su et al.,
"RoFormer", 2021, in mlx's non-traditional half-split form) and a KV cache, SwiGLU MLP
(Shazeer, "GLU Variants Improve Transformer", 2020), final RMSNorm and the tied output
projection. Attention is onnxruntime's contrib operator ``GroupQueryAttention`` (RoPE,
cache and causal mask in one node), or with ``fused=False`` standard ONNX operators.
Inputs: ``input_ids`` (int64, shape (1, L)) and ``past_key_i`` / ``past_value_i``
(float32, (1, heads, P, head_dim)); outputs: ``logits`` (1, L, vocab) and
``present_key_i`` / ``present_value_i`` (1, heads, P + L, head_dim). The fused graph also
takes ``past_length`` (int64 scalar: the cached tokens P): its past and present may then be
one preallocated buffer of C >= P + L positions, written in place (GroupQueryAttention's
shared buffer; shape (1, heads, C, head_dim)), where concatenating a new cache on every
call cost a third of a one-token call at 250 cached tokens.

``export`` writes ``model.onnx`` with its MatMul weights in 8-bit blocks (onnxruntime's
``MatMulNBits``: 32 weights per block, symmetric, one float scale each, products in int8
with accuracy level 4): a one-token call reads 2.1 MB of weights instead of 7.5 MB and
costs about half as long. Its next-token distributions differ from the float32 graph's
by a mean KL of 3e-5 nats for riff-small and 2e-4 to 2.5e-3 for its fine-tunes (probes on
test windows of the fiddle tunes; ``tests/test_neural.py`` holds riff-small under 0.005).
``weights="float32"`` (and every portable graph) keeps float32. ``quantize_int8`` writes
onnxruntime's dynamically quantized copy (INT8 weights, activations per tensor).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from riffd.models.checkpoint import Checkpoint, CheckpointError

OPSET = 17
ROPE_TABLE = 1024  # positions in GroupQueryAttention's rotation tables, at least 2x the window


class _Graph:
    """A small builder: nodes, initializers and fresh names."""

    def __init__(self):
        self.nodes, self.inits, self._n, self._names = [], [], 0, set()

    def const(self, name: str, value) -> str:
        """An initializer; a name already given is shared, not added again."""
        from onnx import numpy_helper
        if name not in self._names:
            self._names.add(name)
            self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        from onnx import helper
        self._n += 1
        out = out or f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _rms_norm(g: _Graph, x: str, weight: str, eps: float) -> str:
    """x / sqrt(mean(x^2) + eps) * weight, in the node pattern onnxruntime fuses into one
    SimplifiedLayerNormalization."""
    var = g.op("ReduceMean", g.op("Pow", x, g.const("f2", np.float32(2.0))), axes=[-1], keepdims=1)
    rms = g.op("Sqrt", g.op("Add", var, g.const(f"{weight}.eps", np.float32(eps))))
    return g.op("Mul", g.op("Div", x, rms), weight)


def _split(g: _Graph, x: str, sizes: list[int], axis: int, names: list[str]) -> list[str]:
    from onnx import helper
    g.nodes.append(helper.make_node("Split", [x, g.const(f"sizes_{'_'.join(map(str, sizes))}", np.array(sizes))],
                                    names, axis=axis))
    return names


def _mlp(g: _Graph, h: str, weights, p: str, arch: dict, eps: float, W, WT) -> str:
    """h + SwiGLU MLP of the RMS-normed h; gate and up in one product."""
    x = _rms_norm(g, h, W(f"{p}.post_attention_layernorm.weight"), eps)
    gu_w = np.concatenate([weights[f"{p}.mlp.{n}_proj.weight"].T for n in ("gate", "up")], axis=1)
    gu = g.op("MatMul", x, g.const(f"{p}.gate_up.T", np.ascontiguousarray(gu_w.astype(np.float32))))
    n_mid = arch["intermediate_size"]
    gate, up = _split(g, gu, [n_mid, n_mid], -1, [f"{p}.gate", f"{p}.up"])
    act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
    return g.op("Add", h, g.op("MatMul", act, WT(f"{p}.mlp.down_proj.weight")))


def _fused_attention(g: _Graph, past_len: str, total: str, inv_freq: np.ndarray, H: int, D: int):
    """Per layer: onnxruntime's GroupQueryAttention on the packed q|k|v (rotation tables
    of ROPE_TABLE positions, lengths as int32)."""
    from onnx import TensorProto, helper
    angles = np.arange(ROPE_TABLE)[:, None] * inv_freq[None, :]
    cos_cache = g.const("cos_cache", np.cos(angles).astype(np.float32))
    sin_cache = g.const("sin_cache", np.sin(angles).astype(np.float32))
    total32 = g.op("Cast", total, to=TensorProto.INT32)
    seqlens_k = g.op("Unsqueeze", g.op("Sub", total32, g.const("one32", np.int32(1))), g.const("ax0", np.array([0])))

    def attention(qkv: str, i: int) -> str:
        out = f"attn_{i}"
        g.nodes.append(helper.make_node(
            "GroupQueryAttention", [qkv, "", "", f"past_key_{i}", f"past_value_{i}", seqlens_k, total32,
                                    cos_cache, sin_cache],
            [out, f"present_key_{i}", f"present_value_{i}"], domain="com.microsoft",
            num_heads=H, kv_num_heads=H, do_rotary=1, rotary_interleaved=0))
        return out
    return attention


def _plain_attention(g: _Graph, past_len: str, total: str, inv_freq: np.ndarray, H: int, D: int):
    """Per layer: attention in standard operators. q and k are rotated together:
    rope(x) = x cos + (x R) sin, where x R = [-x2, x1] for the halves x1, x2 of a head;
    the causal mask lets position P+j see keys 0..P+j."""
    from onnx import TensorProto
    half = D // 2
    positions = g.op("Range", past_len, total, "one")
    ax1 = g.const("ax1", np.array([1]))
    angles = g.op("Mul", g.op("Unsqueeze", g.op("Cast", positions, to=TensorProto.FLOAT), ax1), g.const("inv_freq", inv_freq))
    angles = g.op("Unsqueeze", g.op("Concat", angles, angles, axis=-1), ax1)  # (L, 1, D): over heads
    cos, sin = g.op("Cos", angles), g.op("Sin", angles)
    rotate = np.zeros((D, D), dtype=np.float32)
    rotate[np.arange(half) + half, np.arange(half)] = -1.0
    rotate[np.arange(half), np.arange(half) + half] = 1.0
    rotate = g.const("rotate_half", rotate)
    key_pos = g.op("Range", g.const("zero", np.array(0)), total, "one")
    allowed = g.op("LessOrEqual", g.op("Unsqueeze", key_pos, g.const("ax0", np.array([0]))),
                   g.op("Unsqueeze", positions, ax1))
    mask = g.op("Where", allowed, g.const("f0", np.float32(0.0)), g.const("fneg", np.float32(-1e9)))
    qkv_shape = g.const("qkv_shape", np.array([0, 0, 3 * H, D]))
    flat_shape = g.const("flat_shape", np.array([0, 0, H * D]))

    def attention(qkv: str, i: int) -> str:
        qk, v = _split(g, g.op("Reshape", qkv, qkv_shape), [2 * H, H], 2, [f"qk_{i}", f"v_{i}"])
        qk = g.op("Add", g.op("Mul", qk, cos), g.op("Mul", g.op("MatMul", qk, rotate), sin))
        q, k = _split(g, g.op("Transpose", qk, perm=[0, 2, 1, 3]), [H, H], 1, [f"q_{i}", f"k_{i}"])
        v = g.op("Transpose", v, perm=[0, 2, 1, 3])
        k_all = g.op("Concat", f"past_key_{i}", k, axis=2, out=f"present_key_{i}")
        v_all = g.op("Concat", f"past_value_{i}", v, axis=2, out=f"present_value_{i}")
        scores = g.op("Add", g.op("MatMul", q, g.op("Transpose", k_all, perm=[0, 1, 3, 2])), mask)
        attn = g.op("MatMul", g.op("Softmax", scores, axis=-1), v_all)
        return g.op("Reshape", g.op("Transpose", attn, perm=[0, 2, 1, 3]), flat_shape)
    return attention


def build_graph(weights: dict[str, np.ndarray], arch: dict, fused: bool = True):
    """The ONNX ModelProto for mlx-lm llama ``arch`` with ``weights`` (name -> array).

    ``fused``: attention as onnxruntime's contrib operator ``GroupQueryAttention`` (RoPE,
    KV cache and causal mask in one node per layer; onnxruntime only); otherwise in
    standard ONNX operators that any runtime runs.
    """
    from onnx import TensorProto, helper
    if arch["model_type"] != "llama" or arch.get("rope_traditional") or arch.get("rope_scaling"):
        raise CheckpointError("the ONNX export supports mlx-lm llama with default RoPE")
    H = arch["num_attention_heads"]
    if (arch.get("num_key_value_heads") or H) != H:
        raise CheckpointError("the ONNX export supports as many key/value heads as query heads")
    D = arch.get("head_dim") or arch["hidden_size"] // H
    eps, n_layers = arch["rms_norm_eps"], arch["num_hidden_layers"]
    g = _Graph()
    W = lambda name: g.const(name, weights[name].astype(np.float32))  # noqa: E731
    WT = lambda name: g.const(name + ".T", np.ascontiguousarray(weights[name].astype(np.float32).T))  # noqa: E731

    # positions P..P+L-1 of this call's tokens, after P cached ones (fused: given, as the
    # cache may be a longer buffer; else the past's length)
    past_len = "past_length" if fused else g.op("Gather", g.op("Shape", "past_key_0"), g.const("two", np.array(2)), axis=0)
    cur_len = g.op("Gather", g.op("Shape", "input_ids"), g.const("one", np.array(1)), axis=0)
    total = g.op("Add", past_len, cur_len)
    inv_freq = (arch.get("rope_theta", 10000.0) ** (-np.arange(D // 2) * 2.0 / D)).astype(np.float32)
    attention = (_fused_attention if fused else _plain_attention)(g, past_len, total, inv_freq, H, D)

    h = g.op("Gather", W("model.embed_tokens.weight"), "input_ids", axis=0)
    for i in range(n_layers):
        p = f"model.layers.{i}"
        x = _rms_norm(g, h, W(f"{p}.input_layernorm.weight"), eps)
        # one product for q, k and v: one operator and one pass over x instead of three
        qkv_w = np.concatenate([weights[f"{p}.self_attn.{n}_proj.weight"].T for n in "qkv"], axis=1)
        if not fused:
            qkv_w[:, :H * D] *= D ** -0.5  # the attention scale, folded into q
        qkv = g.op("MatMul", x, g.const(f"{p}.qkv.T", np.ascontiguousarray(qkv_w.astype(np.float32))))
        attn = attention(qkv, i)
        h = g.op("Add", h, g.op("MatMul", attn, WT(f"{p}.self_attn.o_proj.weight")))
        h = _mlp(g, h, weights, p, arch, eps, W, WT)
    h = _rms_norm(g, h, W("model.norm.weight"), eps)
    head = "lm_head.weight" if "lm_head.weight" in weights else "model.embed_tokens.weight"
    g.op("MatMul", h, WT(head), out="logits")

    V = arch["vocab_size"]
    kv_in = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, H, "past", D])  # noqa: E731
    kv_out = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, H, "total", D])  # noqa: E731
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "length"])]
    inputs += [kv_in(f"past_{kv}_{i}") for i in range(n_layers) for kv in ("key", "value")]
    if fused:
        inputs.append(helper.make_tensor_value_info("past_length", TensorProto.INT64, []))
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "length", V])]
    outs += [kv_out(f"present_{kv}_{i}") for i in range(n_layers) for kv in ("key", "value")]
    graph = helper.make_graph(g.nodes, "riffd_llama", inputs, outs, g.inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if fused else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="riffd")
    model.ir_version = 8
    return model


def export(path: str | Path, int8: bool = True, fused: bool = True, weights: str = "q8") -> list[Path]:
    """Write ``model.onnx`` (and ``model.int8.onnx``) into the checkpoint folder ``path``;
    ``fused=False`` writes standard operators only (see ``build_graph``), in float32;
    ``weights``: ``"q8"`` (8-bit blocks, see the module's docstring) or ``"float32"``.
    Raises CheckpointError for a folder without weights or an unsupported architecture,
    ValueError for another ``weights``."""
    import onnx
    from safetensors.numpy import load_file
    if weights not in ("q8", "float32"):
        raise ValueError(f"weights must be 'q8' or 'float32', not {weights!r}")
    check = Checkpoint.load(path)
    weights_file = check.existing_weights()
    if fused and check.max_context * 2 > ROPE_TABLE:
        raise CheckpointError(f"{check.path}: a window of {check.max_context} tokens needs the unfused export")
    model = build_graph(load_file(str(weights_file)), check.arch, fused)
    onnx.checker.check_model(model)
    out = check.path / "model.onnx"
    written = [out]
    if int8:  # from the float32 graph
        written.append(quantize_int8(model, check.path / "model.int8.onnx"))
    final = quantize_q8(model) if fused and weights == "q8" else model
    # written once, under a temporary name and renamed: a running riffd never reads half a file
    part = check.path / f".model.onnx.{os.getpid()}.part"  # created as any file is (umask)
    try:
        onnx.save(final, str(part))
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return written


def quantize_q8(model):
    """``model`` (an onnx ModelProto) with every MatMul's constant weight in 8-bit blocks
    of 32 (onnxruntime's ``MatMulNBits``, symmetric, accuracy level 4: int8 products)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
    with _quiet_logging():  # it logs every MatMul it visits
        quantizer = MatMulNBitsQuantizer(model, algo_config=config)
        quantizer.process()
    return quantizer.model.model


def quantize_int8(model, dst: Path) -> Path:
    """onnxruntime's dynamic quantization of ``model`` (an onnx ModelProto, left as it is:
    onnxruntime quantizes a reloaded copy) into ``dst``: INT8 MatMul weights, activations
    quantized at run time per tensor."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with _quiet_logging():  # its advice to pre-process does not apply here
        # the contrib attention op has no ONNX shape inference: say its outputs are float
        quantize_dynamic(model, str(dst), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": 1})
    return dst


@contextlib.contextmanager
def _quiet_logging():
    """The root logger at ERROR for the block: onnxruntime's quantizers log through it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
