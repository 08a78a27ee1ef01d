"""`riffd dataset stats`: counts, a token histogram, and a plot of pitches and chord qualities."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .dataset import SPLITS, load_split
from riffd.models.tokens import Vocab


def stats(folder: str | Path, png: str | Path | None = None) -> dict:
    """Counts per split, token counts by type, pitch and chord-quality distributions
    (over all splits); draws them to ``png`` (default FOLDER/stats.png)."""
    folder = Path(folder)
    vocab = Vocab.load(folder / "tokenizer.json")
    build = json.loads((folder / "build.json").read_text()) if (folder / "build.json").exists() else {}
    counts = np.zeros(len(vocab), dtype=np.int64)
    sequences = {}
    for split in SPLITS:
        ids, offsets = load_split(folder, split)
        counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(vocab))
        sequences[split] = {"sequences": len(offsets) - 1, "tokens": int(len(ids))}
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
              "rejected": build.get("rejected", {}), "pieces": build.get("pieces", {})}
    _plot(result, Path(png) if png else folder / "stats.png")
    (folder / "stats.json").write_text(json.dumps(result, indent=1))
    return result


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
    lines.append(f"rejected: {result['rejected'] or 'none'}; plot: {png}")
    return lines
