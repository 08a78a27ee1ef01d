"""`riffd dataset stats`: counts, a token histogram, how many bars the training window
holds, and a plot of pitches and chord qualities."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .dataset import SPLITS, load_split
from .train import TrainConfig
from riffd.models.tokens import Vocab


def stats(folder: str | Path, png: str | Path | None = None) -> dict:
    """Counts per split, token counts by type, pitch and chord-quality distributions
    (over all splits); draws them to ``png`` (default FOLDER/stats.png)."""
    folder = Path(folder)
    vocab = Vocab.load(folder / "tokenizer.json")
    build = json.loads((folder / "build.json").read_text()) if (folder / "build.json").exists() else {}
    counts = np.zeros(len(vocab), dtype=np.int64)
    sequences, lengths = {}, []
    bar = vocab.tokens.index("Bar_None")
    for split in SPLITS:
        ids, offsets = load_split(folder, split)
        ids = np.asarray(ids, dtype=np.int64)
        counts += np.bincount(ids, minlength=len(vocab))
        sequences[split] = {"sequences": len(offsets) - 1, "tokens": int(len(ids))}
        bars = np.add.reduceat(ids == bar, offsets[:-1]) if len(ids) else np.zeros(0, dtype=np.int64)
        lengths += [(int(b), int(t)) for b, t in zip(bars, np.diff(offsets)) if b]
    by_type: Counter = Counter()
    pitches: Counter = Counter()
    qualities: Counter = Counter()
    for token, n in zip(vocab.tokens, counts):
        kind, _, value = token.partition("_")
        by_type[kind] += int(n)
        if kind == "Pitch" and n:
            pitches[int(value)] += int(n)
        elif kind == "Chord" and n:
            qualities[value.split(":")[1]] += int(n)
    result = {"splits": sequences, "tokens_by_type": dict(by_type.most_common()),
              "pitches": dict(sorted(pitches.items())), "chord_qualities": dict(qualities.most_common()),
              "rejected": build.get("rejected", {}), "pieces": build.get("pieces", {}),
              "window": window_bars(lengths, TrainConfig.seq_len)}
    _plot(result, Path(png) if png else folder / "stats.png")
    (folder / "stats.json").write_text(json.dumps(result, indent=1))
    return result


def window_bars(lengths: list[tuple[int, int]], window: int) -> dict:
    """How many bars a training window of ``window`` tokens holds, from each sequence's
    (bars, tokens): the 10th, 50th and 90th percentiles over sequences of ``window``
    divided by its tokens per bar, each sequence's median bars, and the share of sequences
    longer than the window (whose form a model with that context cannot see whole)."""
    if not lengths:
        return {"tokens": window, "sequences": 0}
    bars, tokens = np.array(lengths, dtype=np.float64).T
    held = window / (tokens / bars)
    return {"tokens": window, "sequences": len(bars),
            "bars_held": {f"p{q}": round(float(np.percentile(held, q)), 1) for q in (10, 50, 90)},
            "bars_per_sequence": float(np.median(bars)),
            "longer_than_window": round(float(np.mean(tokens > window)), 3)}


def _plot(result: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(list(result["pitches"]), list(result["pitches"].values()), color="#4c72b0")
    a.set(title="Melody pitches", xlabel="MIDI pitch", ylabel="notes")
    q = result["chord_qualities"]
    b.bar(list(q), list(q.values()), color="#dd8452")
    b.set(title="Chord qualities", ylabel="Chord tokens")
    b.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def summary_lines(result: dict, png) -> list[str]:
    """The lines ``riffd dataset stats`` prints for ``stats``'s result."""
    lines = [f"{split:>6}: {c['sequences']:6d} sequences {c['tokens']:10,d} tokens"
             for split, c in result["splits"].items()]
    lines.append("tokens by type: " + ", ".join(f"{k} {v:,}" for k, v in result["tokens_by_type"].items() if v))
    lines.append("chord qualities: " + ", ".join(f"{k} {v:,}" for k, v in result["chord_qualities"].items()))
    w = result["window"]
    if w["sequences"]:
        held = w["bars_held"]
        lines.append(f"a {w['tokens']}-token window holds {held['p50']:g} bars (10th-90th percentile "
                     f"{held['p10']:g}-{held['p90']:g}); a sequence is {w['bars_per_sequence']:g} bars, "
                     f"{w['longer_than_window']:.0%} of them longer than the window")
    lines.append(f"rejected: {result['rejected'] or 'none'}; plot: {png}")
    return lines
