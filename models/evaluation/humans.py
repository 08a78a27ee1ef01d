"""A human reference for the two-sample test: real melodies of another folder, told from
the evaluated folder's real melodies exactly as a model's melodies are.

Why: on a folder riffd never saw, "told from real 0.85" means little until it is set
beside what people score. Real tunes of a neighbouring collection (another editor,
another region, another composer of the same age) are told apart too, and often almost
always: the classifier learns a collection's habits, not only "human or not". A model
that is told apart less often than another collection's real tunes plays as close to
the folder as those people do; only the folder's own music (a fine-tune on it) can do
better. The reference's melodies keep their own chords and bars, so its figures are
not paired piece by piece with the folder's (no per-piece distance, no Wilcoxon test).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .arrangements import Arrangement, read_folder
from .features import FEATURE_NAMES, HISTOGRAMS, SCALARS, MelodyFeatures, kl, pooled
from .judge import FOLDS, tells, told_apart


def label(folder: str | Path) -> str:
    """The row name of a reference folder in reports: ``humans: NAME``."""
    return f"humans: {Path(folder).name}"


def reference(real: list[MelodyFeatures], rows: list[MelodyFeatures], seeds: list[int]) -> dict:
    """Another folder's real melodies, ``rows`` (each measured over its own chords), against
    ``real`` (the evaluated folder's real melodies): the means of every scalar feature, the KL divergence
    KL(real || these) of each pooled histogram (nats), the two-sample test's accuracy
    with each of ``seeds`` (the folds drawn anew; the melodies are the same) and its mean,
    and the features that tell them apart most. Raises ValueError with fewer than
    ``FOLDS`` pieces on either side."""
    if min(len(rows), len(real)) < FOLDS:
        raise ValueError(f"a human reference needs at least {FOLDS} melodies a side ({len(rows)} and {len(real)})")
    real_x, x = np.array([r.vector() for r in real]), np.array([r.vector() for r in rows])
    scores = [round(told_apart(real_x, x, s), 3) for s in seeds]
    out = {k: round(float(np.mean([r.scalars[k] for r in rows])), 4) for k in SCALARS}
    out.update({f"kl_{k}": round(kl(pooled(real, k), pooled(rows, k)), 4) for k in HISTOGRAMS})
    out.update(pieces=len(rows), seeds=list(seeds), told_from_real=scores, judge=scores[0],
               mean=round(float(np.mean(scores)), 3), tells=tells(real_x, x, FEATURE_NAMES))
    return out


def read_references(folders: list[str | Path], echo=print) -> dict[str, list[Arrangement]]:
    """Each folder's arrangements (arrangements.read_folder), by ``label`` (by its whole
    path when another folder of the same name came first). Raises ValueError for a
    folder with no usable file."""
    out = {}
    for folder in folders:
        pieces, _ = read_folder(folder, echo=echo)
        if not pieces:
            raise ValueError(f"{folder}: no MIDI file with a melody and chords for a human reference")
        out[label(folder) if label(folder) not in out else f"humans: {folder}"] = pieces  # two folders named alike
    return out
