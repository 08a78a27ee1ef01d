"""The classifier two-sample test: can a classifier tell generated melodies from real ones?

Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017: train a
classifier to separate two samples; its held-out accuracy is near 0.5 when they come
from one distribution. Here: a logistic regression (scikit-learn, features standardized)
on each melody's feature vector (riffd.models.evaluation.features: the scalars and the
four histograms), accuracy of stratified 5-fold cross-validation. Its calibration is the
same test between two random halves of the real melodies (what "cannot tell" scores on
this many pieces).
"""
from __future__ import annotations

import numpy as np

FOLDS = 5


def told_apart(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Cross-validated accuracy of telling rows of ``a`` from rows of ``b`` (each shape
    (n, features)); 0.5 is chance. Raises ValueError with fewer than ``FOLDS`` rows a side."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if min(len(a), len(b)) < FOLDS:
        raise ValueError(f"the two-sample test needs at least {FOLDS} melodies a side ({len(a)} and {len(b)})")
    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=folds, scoring="accuracy")))


def calibration(real: np.ndarray, repeats: int = 5, seed: int = 0) -> tuple[float, float]:
    """(lowest, highest) accuracy of the test between random halves of ``real``, over
    ``repeats`` splits."""
    rng = np.random.default_rng(seed)
    scores = []
    for r in range(repeats):
        order = rng.permutation(len(real))
        half = len(real) // 2
        scores.append(told_apart(real[order[:half]], real[order[half:2 * half]], seed + r))
    return min(scores), max(scores)


def tells(real: np.ndarray, other: np.ndarray, names: list[str], k: int = 5) -> list[dict]:
    """The ``k`` features that set ``other`` apart from ``real`` the most (each shape
    (n, features), columns named by ``names``): by the difference of their means in
    standard deviations of the two samples pooled (Cohen's d), largest first. Each is
    ``{"feature", "real", "other", "d"}``: what to look at when the test tells them apart."""
    pooled = np.sqrt((real.var(axis=0) + other.var(axis=0)) / 2.0)
    d = (other.mean(axis=0) - real.mean(axis=0)) / np.where(pooled > 0, pooled, np.inf)
    return [{"feature": names[i], "real": round(float(real[:, i].mean()), 3),
             "other": round(float(other[:, i].mean()), 3), "d": round(float(d[i]), 2)}
            for i in np.argsort(-np.abs(d))[:k]]
