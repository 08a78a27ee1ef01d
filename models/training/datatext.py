"""The text form of REMI tokens (one token per word) and its JSONL exports for mlx-lm.

``text``: ``{"text": "BOS_None Style_folk Bar_None TimeSig_4/4 ..."}`` per line, the
format mlx-lm's trainer reads (mlx_lm.tuner.datasets.TextDataset). ``mlx-chat``:
``{"messages": [{"role": "user", "content": <style and chords>}, {"role": "assistant",
"content": <the whole stream>}]}``, mlx-lm's chat format. Files go to OUT/{train,valid,
test}.jsonl, as mlx-lm's ``--data`` folder expects.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .dataset import SPLITS, load_split
from riffd.models.tokens import Vocab

CHORD_PROMPT_KINDS = ("BOS", "Style", "Bar", "TimeSig", "Tempo", "Position", "Chord")


def to_text(vocab: Vocab, ids) -> str:
    """Ids as text, one token per word."""
    return " ".join(vocab.tokens[int(i)] for i in ids)


def from_text(vocab: Vocab, text: str) -> np.ndarray:
    """Text back to ids (uint16). Raises KeyError naming an unknown token."""
    try:
        return np.array([vocab.ids[w] for w in text.split()], dtype=np.uint16)
    except KeyError as exc:
        raise KeyError(f"unknown token {exc.args[0]!r}") from None


def chord_prompt(vocab: Vocab, ids) -> str:
    """The chord part of a stream as text: no melody tokens, and no Position left
    without a Chord or Tempo after it."""
    words = [vocab.tokens[int(i)] for i in ids if vocab.tokens[int(i)].split("_")[0] in CHORD_PROMPT_KINDS]
    keep = [w for j, w in enumerate(words)
            if not (w.startswith("Position_") and (j + 1 == len(words) or not words[j + 1].startswith(("Chord_", "Tempo_"))))]
    return " ".join(keep)


def export(folder: str | Path, out: str | Path, fmt: str = "text") -> dict:
    """Write OUT/{split}.jsonl in ``fmt`` ("text" or "mlx-chat") and read every line
    back, checking that its tokens give the same ids. Returns lines per split.
    Raises ValueError for an unknown format or a failed round trip."""
    if fmt not in ("text", "mlx-chat"):
        raise ValueError(f"unknown format {fmt!r} (text or mlx-chat)")
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocab = Vocab.load(folder / "tokenizer.json")
    written = {}
    for split in SPLITS:
        ids, offsets = load_split(folder, split)
        path = out / f"{split}.jsonl"
        with open(path, "w") as fh:
            for i in tqdm(range(len(offsets) - 1), desc=f"export {split}", unit="seq"):
                seq = ids[offsets[i]:offsets[i + 1]]
                text = to_text(vocab, seq)
                if fmt == "text":
                    record = {"text": text}
                else:
                    record = {"messages": [{"role": "user", "content": chord_prompt(vocab, seq)},
                                           {"role": "assistant", "content": text}]}
                fh.write(json.dumps(record) + "\n")
        with open(path) as fh:  # the round trip: every line gives back its ids
            for i, line in enumerate(fh):
                record = json.loads(line)
                text = record["text"] if fmt == "text" else record["messages"][1]["content"]
                if not np.array_equal(from_text(vocab, text), ids[offsets[i]:offsets[i + 1]]):
                    raise ValueError(f"{path}:{i + 1}: the text does not give back the ids")
        written[split] = len(offsets) - 1
    return written
