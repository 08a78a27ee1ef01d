"""Training the neural melody models with MLX: ``riffd train`` and ``riffd finetune``.

A language model over the dataset's REMI ids (riffd.models.training.dataset): windows of
``seq_len + 1`` tokens drawn at random offsets from a split's concatenated sequences;
cross-entropy counted on melody targets only (Bar, Position, Pitch, Velocity, Duration,
EOS), since Chord, TimeSig and Tempo come from the player at play time. AdamW with a
linear warmup and a cosine decay (Loshchilov & Hutter, "Decoupled Weight Decay
Regularization", ICLR 2019; "SGDR", ICLR 2017), gradients clipped by global norm.
An epoch is ``epoch_steps`` steps (default: one pass over the training tokens); after
each, the validation loss decides the best weights and early stopping.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from riffd.models import checkpoint as ckpt
from riffd.models.calibration import FILE as CALIBRATION
from .dataset import load_split
from riffd.models.tokens import Vocab

MELODY_PREFIXES = ("Bar_", "Position_", "Pitch_", "Velocity_", "Duration_", "EOS_")


@dataclass
class TrainConfig:
    """Hyper-parameters; lengths in tokens, ``max_minutes`` in wall-clock minutes."""
    seq_len: int = 256
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_epochs: int = 20
    epoch_steps: int | None = None
    patience: int = 3
    eval_windows: int = 256
    max_minutes: float | None = None
    seed: int = 0
    lora_rank: int = 0  # 0: every weight trains; >0: mlx-lm LoRA layers of this rank
    lora_layers: int = 4


def melody_mask(vocab: Vocab) -> np.ndarray:
    """Shape (vocab,), float32: 1 for the ids the loss counts (melody targets)."""
    return np.array([t.startswith(MELODY_PREFIXES) for t in vocab.tokens], dtype=np.float32)


def windows(ids: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Shape (len(starts), length + 1), int32: ``ids[s:s + length + 1]`` for each start."""
    return np.stack([np.asarray(ids[s:s + length + 1], dtype=np.int32) for s in starts])


def eval_starts(n_ids: int, length: int, count: int) -> np.ndarray:
    """``count`` evenly spaced window starts (the same every time: comparable losses)."""
    return np.unique(np.linspace(0, max(0, n_ids - length - 1), count).astype(np.int64))


def evaluate(model, ids: np.ndarray, mask: np.ndarray, length: int, count: int,
             batch: int = 32) -> dict:
    """Loss (nats per melody token), perplexity and top-1 accuracy over ``count`` windows."""
    import mlx.core as mx
    total = correct = n = 0.0
    starts = eval_starts(len(ids), length, count)
    for i in range(0, len(starts), batch):
        w = windows(ids, starts[i:i + batch], length)
        logits = model(mx.array(w[:, :-1]))
        targets = mx.array(w[:, 1:])
        weights = mx.array(mask[w[:, 1:]])
        ce = _cross_entropy(logits, targets)
        total += (ce * weights).sum().item()
        correct += ((mx.argmax(logits, axis=-1) == targets) * weights).sum().item()
        n += weights.sum().item()
    loss = total / max(n, 1)
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": correct / max(n, 1), "tokens": int(n)}


def _cross_entropy(logits, targets):
    import mlx.nn as nn
    return nn.losses.cross_entropy(logits, targets, reduction="none")


def _lora(model, cfg: TrainConfig) -> None:
    from mlx_lm.tuner.utils import linear_to_lora_layers
    model.freeze()
    linear_to_lora_layers(model, cfg.lora_layers, {"rank": cfg.lora_rank, "scale": 20.0, "dropout": 0.0})


def train(data: str | Path, out: str | Path, cfg: TrainConfig, init: str | Path | None = None,
          resume: bool = False, stop_after: int | None = None, progress: bool = True, log=print) -> dict:
    """Train a model on the dataset folder ``data``, writing the checkpoint folder ``out``.

    ``init``: a checkpoint to start from (fine-tuning); ``resume``: carry on from
    ``out/train_state``; ``stop_after``: run at most this many epochs now (the schedule
    is still the one of ``cfg.max_epochs``; resume later). Returns the config written to
    ``out/config.json``. Raises CheckpointError or FileNotFoundError (no dataset there)
    or ValueError (a split too small for one window, or a vocabulary that differs from
    ``init``'s).
    """
    from riffd.models.blas import use_fast_blas
    use_fast_blas()
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten, tree_unflatten

    data, out = Path(data), Path(out)
    vocab = Vocab.load(data / "tokenizer.json")
    train_ids, _ = load_split(data, "train")
    valid_ids, _ = load_split(data, "valid")
    for split, ids in (("train", train_ids), ("valid", valid_ids)):
        if not len(ids):  # a split left empty: too few pieces to hold one out (dataset.assign_splits)
            raise ValueError(f"{data}: the {split} split holds no piece: too few pieces passed the "
                             "filters to hold one out for it (pieces.jsonl and build.json list them); add songs")
        if len(ids) <= cfg.seq_len + 1:
            raise ValueError(f"{data}: the {split} split has {len(ids)} tokens, not enough for one "
                             f"window of {cfg.seq_len + 1}; add data or lower --seq-len")
    mx.random.seed(cfg.seed)
    if init is not None:
        base = ckpt.Checkpoint.load(init)
        if base.vocab.ids != vocab.ids:
            raise ValueError(f"{data}: its vocabulary differs from {init}'s")
        arch, model = base.arch, base.mlx_model()
        model.train()
    else:
        arch = ckpt.architecture(len(vocab))
        model = ckpt.build_model(arch)
    if cfg.lora_rank:
        _lora(model, cfg)
    mask = melody_mask(vocab)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    epoch_steps = cfg.epoch_steps or max(1, len(train_ids) // tokens_per_step)
    total_steps = cfg.max_epochs * epoch_steps
    warmup = min(cfg.warmup_steps, max(1, total_steps // 10))
    schedule = optim.join_schedules(
        [optim.linear_schedule(cfg.learning_rate * 1e-3, cfg.learning_rate, warmup),
         optim.cosine_decay(cfg.learning_rate, max(1, total_steps - warmup), cfg.learning_rate * cfg.min_lr_ratio)],
        [warmup])
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay)
    loss_and_grad = nn.value_and_grad(model, _masked_loss)

    state_dir = out / "train_state"
    st = {"epoch": 0, "step": 0, "best_val": float("inf"), "bad_epochs": 0, "seconds": 0.0,
          "history": [], "train_curve": []}
    if resume:
        if not (state_dir / "state.json").exists():
            raise FileNotFoundError(f"{state_dir}: nothing to resume")
        st = json.loads((state_dir / "state.json").read_text())
        model.load_weights(str(state_dir / "weights.safetensors"), strict=False)
        optimizer.init(model.trainable_parameters())
        optimizer.state = tree_unflatten(list(mx.load(str(state_dir / "optimizer.safetensors")).items()))
        log(f"resuming after epoch {st['epoch']} (step {st['step']})")
    mx.eval(model.parameters())

    state = [model.state, optimizer.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y, w):
        loss, grads = loss_and_grad(model, x, y, w)
        grads, _ = optim.clip_grad_norm(grads, cfg.grad_clip)
        optimizer.update(model, grads)
        return loss

    t_start = time.monotonic() - st["seconds"]
    stop, first_epoch = False, st["epoch"]
    while st["epoch"] < cfg.max_epochs and not stop:
        epoch = st["epoch"]
        rng = np.random.default_rng([cfg.seed, epoch])  # windows depend on (seed, epoch) only: resumable
        model.train()
        bar = tqdm(range(epoch_steps), desc=f"epoch {epoch + 1}/{cfg.max_epochs}", unit="step",
                   disable=not progress, leave=False)
        run_loss, t0, done = [], time.monotonic(), 0
        for _ in bar:
            w = windows(train_ids, rng.integers(0, len(train_ids) - cfg.seq_len - 1, cfg.batch_size), cfg.seq_len)
            loss = step(mx.array(w[:, :-1]), mx.array(w[:, 1:]), mx.array(mask[w[:, 1:]]))
            mx.eval(state)
            st["step"] += 1
            done += 1
            run_loss.append(loss.item())
            if st["step"] % 20 == 0:
                st["train_curve"].append([st["step"], float(np.mean(run_loss[-20:]))])
                bar.set_postfix(loss=f"{np.mean(run_loss[-20:]):.3f}",
                                tok_s=f"{done * tokens_per_step / (time.monotonic() - t0):.0f}")
            if cfg.max_minutes and time.monotonic() - t_start > cfg.max_minutes * 60:
                stop = True
                break
        bar.close()
        model.eval()
        val = evaluate(model, valid_ids, mask, cfg.seq_len, cfg.eval_windows)
        st["epoch"] = epoch + 1
        st["seconds"] = time.monotonic() - t_start
        st["history"].append({"epoch": epoch + 1, "step": st["step"], "train_loss": float(np.mean(run_loss)),
                              "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                              "seconds": round(st["seconds"], 1)})
        log(f"epoch {epoch + 1}: train loss {np.mean(run_loss):.4f}, valid loss {val['loss']:.4f} "
            f"(perplexity {val['perplexity']:.2f}, accuracy {val['accuracy']:.3f}), "
            f"{st['step']} steps, {st['seconds'] / 60:.1f} min")
        if val["loss"] < st["best_val"] - 1e-4:
            st["best_val"], st["bad_epochs"] = val["loss"], 0
            best = model if not cfg.lora_rank else _fused_copy(model, arch)
            ckpt.save(out, best, {"architecture": arch}, vocab)  # metrics follow below
            for stale, remake in ((out / "model.onnx", "export onnx"), (out / "model.int8.onnx", "export onnx"),
                                  (out / CALIBRATION, "calibrate")):
                if stale.exists():  # made for other weights: --model OUT would play those
                    stale.unlink()
                    log(f"removed {stale}, made for the weights before; riffd {remake} {out} makes it again")
        else:
            st["bad_epochs"] += 1
            if st["bad_epochs"] >= cfg.patience:
                log(f"early stop: no better validation loss for {cfg.patience} epochs")
                stop = True
        state_dir.mkdir(parents=True, exist_ok=True)
        mx.save_safetensors(str(state_dir / "weights.safetensors"), dict(tree_flatten(model.parameters())))
        mx.save_safetensors(str(state_dir / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
        (state_dir / "state.json").write_text(json.dumps(st))
        if stop_after and st["epoch"] - first_epoch >= stop_after:
            log(f"stopped after {stop_after} epochs as asked; carry on with --resume")
            break

    return finish(data, out, cfg, st, init, log)


def _fused_copy(model, arch):
    """A plain model with LoRA folded in (the training model keeps its LoRA layers)."""
    import mlx.core as mx
    copy = ckpt.build_model(arch)
    _fuse_into(copy, model)
    mx.eval(copy.parameters())
    return copy


def _fuse_into(target, lora_model) -> None:
    """Set ``target``'s weights to ``lora_model``'s with each LoRA delta added (mlx-lm's fuse)."""
    from mlx.utils import tree_flatten, tree_unflatten
    weights = {}
    for name, m in lora_model.named_modules():
        if hasattr(m, "fuse"):
            weights[f"{name}.weight"] = m.fuse().weight
    params = dict(tree_flatten(lora_model.parameters()))
    plain = {k.replace(".linear.", "."): v for k, v in params.items() if "lora_" not in k}
    plain.update(weights)
    target.update(tree_unflatten(list(plain.items())))


def _masked_loss(model, x, y, w):
    ce = _cross_entropy(model(x), y)
    return (ce * w).sum() / w.sum()


def finish(data: Path, out: Path, cfg: TrainConfig, st: dict, init, log=print) -> dict:
    """Measure the best weights on the test split; write config.json, loss.png and the
    model card (README.md). Returns the config."""
    from mlx.utils import tree_flatten
    check = ckpt.Checkpoint.load(out)
    model = check.mlx_model()
    vocab = check.vocab
    test_ids, _ = load_split(data, "test")
    if len(test_ids) > cfg.seq_len + 1:
        test = evaluate(model, test_ids, melody_mask(vocab), cfg.seq_len, max(cfg.eval_windows, 512))
    else:  # a tiny dataset without a usable test split
        test = {"loss": float("nan"), "perplexity": float("nan"), "accuracy": float("nan"), "tokens": 0}
    build = json.loads((data / "build.json").read_text()) if (data / "build.json").exists() else {}
    n_params = sum(v.size for _, v in tree_flatten(model.parameters()))
    config = {
        "architecture": check.arch,
        "max_context": cfg.seq_len,
        "tokenizer": vocab.data.get("config", {}),
        "parameters": int(n_params),
        "training": {
            "data": str(data), "init": project_path(init) if init else None,
            "pieces": build.get("pieces"), "tokens": build.get("tokens"), "keys": build.get("keys"),
            "epochs": st["epoch"], "steps": st["step"], "tokens_seen": st["step"] * cfg.batch_size * cfg.seq_len,
            "minutes": round(st["seconds"] / 60, 1), "config": asdict(cfg), "history": st["history"],
        },
        "metrics": {"test_loss": round(test["loss"], 4), "test_perplexity": round(test["perplexity"], 3),
                    "test_accuracy": round(test["accuracy"], 4), "test_tokens": test["tokens"],
                    "best_valid_loss": round(st["best_val"], 4)},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    plot_losses(st, out / "loss.png")
    write_card(out, config)
    log(f"test split: perplexity {test['perplexity']:.3f}, accuracy {test['accuracy']:.3f} "
        f"over {test['tokens']} melody tokens; wrote {out}")
    return config


def project_path(path: Path) -> str:
    """``path`` as the project names it: relative to its root where it lies inside (a shipped
    checkpoint), else as given, so a shipped config.json does not carry one machine's folders."""
    try:
        return str(Path(path).resolve().relative_to(ckpt.CHECKPOINTS.parent.parent))
    except ValueError:
        return str(path)


def plot_losses(st: dict, path: Path) -> None:
    """Training loss (mean of 20 steps) and validation loss per epoch against steps, as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    if st["train_curve"]:
        s, l = zip(*st["train_curve"])
        ax.plot(s, l, lw=1, label="train (20-step mean)")
    if st["history"]:
        ax.plot([h["step"] for h in st["history"]], [h["val_loss"] for h in st["history"]], "o-", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per melody token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_card(out: Path, config: dict) -> None:
    """The model card: what the model is, what it learned from, how well it does."""
    t, m, a = config["training"], config["metrics"], config["architecture"]
    pieces = t.get("pieces") or {}
    sources = ", ".join(f"{s} ({sum(v.values())} pieces)" for s, v in pieces.items())
    keys = t.get("keys") or list(range(-5, 7))
    augmented = (f"Training split augmented ({len(keys)} keys, tempo and velocity jitter, octave shifts)."
                 if keys != [0] else "Not augmented: each piece in its own key.")
    lora = t["config"].get("lora_rank", 0)
    how = "`riffd train`" if not t.get("init") else (
        f"`riffd finetune` from `{Path(t['init']).name}` ("
        + (f"LoRA rank {lora} on the last {t['config']['lora_layers']} layers, folded in)" if lora else "every weight)"))
    card = out / "README.md"
    kept = kept_card_items(card.read_text(encoding="utf-8")) if card.exists() else ""
    card.write_text(f"""# {out.name}

A decoder-only transformer (mlx-lm `{a['model_type']}`: {a['num_hidden_layers']} layers, width
{a['hidden_size']}, {a['num_attention_heads']} heads, {config['parameters']:,} parameters) that
continues riffd's REMI token streams: given the chords (Chord tokens) and the melody so far,
it writes the next melody tokens (Bar, Position, Pitch, Velocity, Duration).

- **Data**: `{t['data']}`, built by `riffd dataset build` from the music21 corpus: {sources or 'see build.json'}.
  {augmented}
- **Training**: {how}, {t['steps']} steps in {t['epochs']} epochs ({t['minutes']} minutes on this
  machine's CPU), {t['tokens_seen']:,} tokens seen, windows of {config['max_context']} tokens,
  AdamW with warmup and cosine decay, seed {t['config']['seed']}.
- **Test split** (pieces never seen in training, melody tokens only): perplexity
  {m['test_perplexity']}, top-1 token accuracy {m['test_accuracy']:.1%} over {m['test_tokens']:,} tokens.
- **Use**: `riffd render IN.mid --model {out.name if out.parent.name == 'checkpoints' else 'PATH/' + out.name}`
  (onnxruntime once `riffd export onnx` has written `model.onnx`, else mlx).
- **Limits**: learned from Bach chorales and European folk tunes with estimated chords;
  jazz extensions are rare in the data. Licenses of the sources: public domain, Essen
  Folksong Collection (free for research), music21 corpus encodings (BSD).
{kept}""", encoding="utf-8")


CARD_ITEMS = ("Data", "Training", "Test split", "Use", "Limits")  # the items write_card writes


def kept_card_items(text: str) -> str:
    """The items of a model card that ``write_card`` did not write (``- **Label**`` bullets with
    their indented lines, such as a maintainer's "What it is for"), so training a checkpoint
    again keeps them. The evaluation section and other paragraphs are left to their writers."""
    kept, keep = [], False
    for line in text.split("## Evaluation", 1)[0].splitlines():
        if line.startswith("- **"):
            keep = line[4:].split("**", 1)[0].rstrip(":") not in CARD_ITEMS
        elif not line.startswith("  "):
            keep = False
        if keep:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept)
