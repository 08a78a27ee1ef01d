"""The evaluation suite: each model plays over the real pieces' chords and its melodies
are compared with the real ones (riffd.models.evaluation.features, .judge).

Per model (and for the real melodies): the mean of every scalar feature; the KL
divergence KL(real || model) of each pooled histogram (features.kl, nats); the
two-sample test's accuracy (judge.told_apart) with its real-vs-real calibration; and a
per-piece distance to the piece's own real melody::

    d = mean KL of the four histograms + |d chord-tone ratio| + |d 2-bar repetition|
        + |d pitch-class entropy| / log2(12) + |d notes per bar| / real notes per bar

whose mean is the composite score (lower is closer). Pairs of models are compared with
the Wilcoxon signed-rank test (scipy.stats.wilcoxon) on their per-piece distances.
``TARGETS`` are issue 12's.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from riffd.models.ending import end_as
from riffd.models import meters
from riffd.models.protocol import ChordAt, Context, MelodyNote, one_voice

from .arrangements import Arrangement
from .features import FEATURE_NAMES, HISTOGRAMS, SCALARS, MelodyFeatures, features, kl, pooled
from .humans import reference
from .judge import FOLDS, calibration, tells, told_apart

WIDE_REGISTER = [55, 88]  # wider than any preset's, for a test split (eval, calibrate): the model's own range
JUDGE_PIECES = 2 * FOLDS  # the calibration splits the real melodies in halves of FOLDS each
TARGETS = {"judge": 0.70, "chord_tone_ratio": 0.03, "pc_entropy": 0.15, "notes_per_bar": 0.15,
           "repetition_2bar": 0.10, "kl": 0.05}


def models_to_play(text: str | None, preset_model: str) -> tuple[list[str], str | None]:
    """The models ``riffd eval`` plays: the comma-separated names or checkpoint folders of
    ``text``, or for None rules, markov and ``preset_model`` (the preset's own model: onnx
    for most presets, riff-fiddle for fiddle, the checkpoint of a ``finetune --midi``
    preset). Second, a note when ``preset_model`` is not among them (the preset's values
    then play other models), else None. Raises ValueError for an unknown name."""
    from riffd.models import model_names
    known = model_names()
    names = list(dict.fromkeys(["rules", "markov", preset_model] if text is None
                               else [m.strip() for m in text.split(",") if m.strip()]))
    unknown = [n for n in names if n not in known and not Path(n).exists()]
    if unknown or not names:
        raise ValueError(f"unknown model {', '.join(unknown) or '(none)'} (choose {', '.join(known)}, "
                         "or a path to a model)")
    note = None if preset_model in names else (
        f"note: the preset's model is {preset_model}; --models plays {', '.join(names)} with its values")
    return names, note


def play(model_name, pieces: list[Arrangement], preset, seed: int = 0):
    """Each piece's melody by ``model_name`` (a name load_model takes, or a model) over
    its chords (preset's meter and tempo set from the piece; seed ``seed + i`` for piece
    i), one voice as riffd plays it, ended as the preset says (models/ending.py) where the
    tune ends (``Arrangement.ends``)."""
    from riffd.models import load_model
    model = load_model(model_name) if isinstance(model_name, str) else model_name
    out = []
    for i, piece in enumerate(pieces):
        played = preset.with_values(meter=list(piece.meter), tempo=min(400.0, max(20.0, float(piece.tempo))))
        if piece.style != "user":
            played = played.with_values(style=piece.style)
        if piece.call:
            notes, meter = answer(model, played, piece, seed + i), tuple(played.meter)
        else:
            start = piece.origin if piece.given else piece.chords[0].beat  # a continuation plays from its window
            notes, meter = meters.play(model, played, piece.chords, start, piece.length, seed + i, piece.given,
                                       time_signatures=piece.time_signatures)  # each meter in its own bars
        out.append(end_as(notes, piece.chords, piece.length, played, meter) if piece.ends else notes)
    return out


def answer(model, preset, piece: Arrangement, seed: int | None) -> list[MelodyNote]:
    """``piece``'s window (``origin`` to ``length``) played as the live engine answers a
    call (daemon/engine.py, call-response): the model started at the bar line of the
    call's first key, ``piece.given`` extended as the player's keys, ``answer``, the
    rollback to the window, the window's chords extended, ``generate``; one voice. Bars
    count from the window's bar lines."""
    shift = -piece.origin % piece.bar_beats
    a, b = piece.origin + shift, piece.length + shift
    moved = [ChordAt(c.beat + shift, c.chord) for c in piece.chords]
    call = piece.bar_beats * math.floor((piece.given[0].start + shift) / piece.bar_beats + 1e-9)
    model.start(Context(preset, seed=seed, start_beat=call, chords=[c for c in moved if c.beat <= a + 1e-9]))
    model.extend([MelodyNote(n.start + shift, n.duration, n.pitch, n.velocity) for n in piece.given])
    model.answer(None, a, b)
    model.rollback(a)
    model.extend([ChordAt(a, model.chord_at(a))] + [c for c in moved if a + 1e-9 < c.beat < b - 1e-9])
    return [MelodyNote(n.start - shift, n.duration, n.pitch, n.velocity) for n in one_voice(model.generate(b))]


def continuations(pieces: list[Arrangement], given_bars: int, bars: int | None = None, as_call: bool = False,
                  echo=print) -> list[Arrangement]:
    """Each piece as a continuation: its melody's first ``given_bars`` bars (from bar 1,
    ``origin``) are ``given``, and the piece is the ``bars`` bars after them (None: to its
    end), its real melody there the one compared (``origin`` and ``length`` the window's);
    ``as_call``: the given bars are a live call the models answer (``answer``).
    A piece in more than one meter, shorter than the window, or with under 4 notes given
    or 3 to compare is left out, and the count said through ``echo``."""
    out = []
    for p in pieces:
        a = p.origin + given_bars * p.bar_beats
        b = p.length if bars is None else a + bars * p.bar_beats
        given = [n for n in p.melody if n.start < a - 1e-9]
        real = [n for n in p.melody if a - 1e-9 <= n.start < b - 1e-9]
        if p.length < b - 1e-9 or b <= a or len(p.time_signatures) > 1 or len(given) < 4 or len(real) < 3:
            continue
        out.append(replace(p, melody=real, chords=[c for c in p.chords if c.beat < b - 1e-9], length=b, origin=a,
                           given=given, ends=b >= p.length - 1e-9, call=as_call))  # an ending where the tune ends
    if len(out) < len(pieces):
        echo(f"riffd eval: {len(pieces) - len(out)} of {len(pieces)} pieces left out: shorter than {given_bars} "
             "bars given and those compared, in more than one meter, or too few notes")
    return out


def playable(pieces: list[Arrangement], models: list, preset, echo=print) -> list[Arrangement]:
    """The pieces every model of ``models`` (names or models, as ``play`` takes) can start
    in, each in its meter: the transformer plays its vocabulary's (tokens.model_meter),
    every model a beat of a sixteenth or longer. Each other piece is echoed, with why,
    and its ``found`` account says ``skipped``; it is left out for every model alike, so
    that the comparisons stay paired (one file in 5/2 does not end a folder's run)."""
    from riffd.models import load_model
    loaded = [load_model(m) if isinstance(m, str) else m for m in models]
    kept = []
    for piece in pieces:
        why = _refusal(piece, loaded, preset)
        if why is None:
            kept.append(piece)
            continue
        piece.found["skipped"] = why
        echo(f"riffd eval: {piece.found.get('file', piece.name)}: skipped: {why}")
    return kept


def _refusal(piece: Arrangement, models: list, preset) -> str | None:
    """Why a model of ``models`` cannot start in ``piece``'s meter, or None."""
    from riffd.models.protocol import Context, MeterError
    from riffd.presets import PresetError
    try:
        played = preset.with_values(meter=list(piece.meter))
    except PresetError as exc:  # a beat under a sixteenth (4/32)
        return str(exc)
    for model in models:
        try:
            model.start(Context(played, seed=0, start_beat=piece.chords[0].beat, chords=piece.chords))
        except MeterError as exc:
            return f"{model.name}: {exc}"
    return None


def distance(real: MelodyFeatures, other: MelodyFeatures) -> float:
    """The per-piece distance of the module docstring."""
    r, o = real.scalars, other.scalars
    hist = np.mean([kl(real.histograms[k], other.histograms[k]) for k in HISTOGRAMS])
    return float(hist + abs(r["chord_tone_ratio"] - o["chord_tone_ratio"])
                 + abs(r["repetition_2bar"] - o["repetition_2bar"]) + abs(r["pc_entropy"] - o["pc_entropy"]) / math.log2(12)
                 + abs(r["notes_per_bar"] - o["notes_per_bar"]) / max(r["notes_per_bar"], 1e-9))


def summary(rows: list[MelodyFeatures], real: list[MelodyFeatures]) -> dict:
    """Means of the scalars, KL of each pooled histogram against ``real`` (absent for
    the real melodies themselves), the per-piece distances and their mean."""
    out = {k: round(float(np.mean([r.scalars[k] for r in rows])), 4) for k in SCALARS}
    if rows is not real:
        out.update({f"kl_{k}": round(kl(pooled(real, k), pooled(rows, k)), 4) for k in HISTOGRAMS})
        dist = [distance(a, b) for a, b in zip(real, rows)]
        out["distances"] = [round(d, 4) for d in dist]
        out["composite"] = round(float(np.mean(dist)), 4)
    return out


def verdicts(row: dict, real: dict, told_from_real: float | None = None) -> dict:
    """Each target of ``TARGETS`` as True (met) or False for one model's row; the
    two-sample test's by ``told_from_real`` (the mean over seeds when there are several;
    None: the row's own ``judge``), None when it was not run (fewer than
    ``JUDGE_PIECES`` pieces)."""
    told_from_real = row["judge"] if told_from_real is None else told_from_real
    return {
        "judge": None if told_from_real is None else told_from_real <= TARGETS["judge"],
        "chord_tone_ratio": abs(row["chord_tone_ratio"] - real["chord_tone_ratio"]) <= TARGETS["chord_tone_ratio"],
        "pc_entropy": abs(row["pc_entropy"] - real["pc_entropy"]) <= TARGETS["pc_entropy"],
        "notes_per_bar": abs(row["notes_per_bar"] - real["notes_per_bar"])
        <= TARGETS["notes_per_bar"] * real["notes_per_bar"],
        "repetition_2bar": abs(row["repetition_2bar"] - real["repetition_2bar"]) <= TARGETS["repetition_2bar"],
        "kl": all(row[f"kl_{k}"] <= TARGETS["kl"] for k in HISTOGRAMS),
    }


def wilcoxon_tests(configs: dict, models: list[str]) -> list[dict]:
    """Wilcoxon signed-rank test on the per-piece distances of every pair of models;
    ``closer`` names the model whose median distance is lower."""
    from scipy.stats import wilcoxon
    tests = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            da, db = np.array(configs[a]["distances"]), np.array(configs[b]["distances"])
            p = 1.0 if np.allclose(da, db) else float(wilcoxon(da, db).pvalue)
            tests.append({"a": a, "b": b, "closer": a if np.median(da - db) < 0 else b, "p": float(f"{p:.3g}"),
                          "pieces": len(da)})
    return tests


def told(row: dict) -> str:
    """A row's two-sample accuracy for a line of text: "0.74", or "-" when not tested."""
    return "-" if row.get("judge") is None else f"{row['judge']:.2f}"


def piece_features(notes: list, piece: Arrangement) -> MelodyFeatures:
    """The features of ``notes`` played over ``piece``'s chords and bars."""
    return features(notes, piece.chords, piece.bar_beats, piece.length, piece.origin)


def evaluate_pieces(pieces: list[Arrangement], models: list[str], preset, seed: int = 0, echo=print,
                    labels: list[str] | None = None, seeds: int = 1, humans: dict | None = None) -> dict:
    """The whole comparison; returns ``{"configs": {"real": {...}, model: {...}},
    "tests": [...], "judge": {...}, "pieces": n}``, each model under its label
    (``labels``, default the names: "before"/"after" for a fine-tune); with ``seeds`` > 1
    also ``"judge_seeds"``: the two-sample test with seeds ``seed`` to ``seed + seeds - 1``
    (judge_over_seeds). With fewer than ``JUDGE_PIECES`` (10) pieces everything but the
    two-sample test is measured: each ``judge`` is None and ``judge["skipped"]`` says
    why (a user's small folder still gets its before/after figures). ``humans``: other
    folders' real pieces by label (humans.read_references), each told from these real
    melodies as a model is, with the same seeds, under ``"humans"`` (humans.reference;
    not with fewer than ``JUDGE_PIECES`` pieces). Raises ValueError with no piece or for
    an unknown model name."""
    labels = labels or list(models)
    pieces = playable(pieces, models, preset, echo)
    if not pieces:
        raise ValueError("the evaluation needs at least 1 piece with a melody and chords (0 found)")
    real = [piece_features(p.melody, p) for p in pieces]
    real_x = np.array([r.vector() for r in real])
    judged = len(pieces) >= JUDGE_PIECES
    if judged:
        low, high = calibration(real_x, seed=seed)
        judge = {"real_vs_real": [round(low, 3), round(high, 3)]}
    else:
        judge = {"real_vs_real": None, "skipped": f"the two-sample test needs at least {JUDGE_PIECES} pieces "
                                                  f"({len(pieces)} here)"}
        echo(f"riffd eval: {judge['skipped']}: every other figure is measured")
    configs, every = {"real": summary(real, real)}, {"real": real}
    for spec, name in zip(models, labels):
        t0 = time.perf_counter()
        rows = [piece_features(notes, p) for notes, p in zip(play(spec, pieces, preset, seed), pieces)]
        row, x = summary(rows, real), np.array([r.vector() for r in rows])
        row["judge"] = judge[name] = round(told_apart(real_x, x, seed), 3) if judged else None
        row["tells"] = tells(real_x, x, FEATURE_NAMES)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        configs[name], every[name] = row, rows
        echo(f"riffd eval: {name}: told from real {told(row)}, composite {row['composite']:.3f} "
             f"({row['seconds']} s)")
    more = judge_over_seeds(real_x, pieces, models, preset, list(range(seed + 1, seed + seeds)), labels) \
        if seeds > 1 and judged else {}
    for name, row in more.items():  # the first seed's test is the one above
        row["seeds"], row["told_from_real"] = [seed, *row["seeds"]], [judge[name], *row["told_from_real"]]
        row["mean"] = round(float(np.mean(row["told_from_real"])), 3)
        echo(f"riffd eval: {name}: told from real with seeds {seed}-{seed + seeds - 1}: "
             + " / ".join(f"{x:.3f}" for x in row["told_from_real"]) + f", mean {row['mean']:.3f}")
    for name in labels:  # the two-sample target over every seed where there are several
        configs[name]["targets"] = verdicts(configs[name], configs["real"], more.get(name, {}).get("mean"))
    people = {}
    if humans and not judged:
        echo(f"riffd eval: no human reference either: {judge['skipped']}")
    for name, found in (humans or {}).items() if judged else ():
        every[name] = [piece_features(p.melody, p) for p in found]
        people[name] = reference(real, every[name], list(range(seed, seed + seeds)))
        echo(f"riffd eval: {name} (real melodies of another folder): told from real "
             + " / ".join(f"{x:.3f}" for x in people[name]["told_from_real"]))
    return {"judge_seeds": more, "humans": people, "pieces": len(pieces), "preset": preset.name, "configs": configs,
            "tests": wilcoxon_tests(configs, labels), "judge": judge,
            "histograms": {name: {k: [round(float(v), 4) for v in pooled(rows, k)] for k in HISTOGRAMS}
                           for name, rows in every.items()},
            "per_piece": {name: {k: [round(r.scalars[k], 4) for r in rows] for k in ("chord_tone_ratio", "repetition_2bar")}
                          for name, rows in every.items()}}


def judge_over_seeds(real_x: np.ndarray, pieces: list[Arrangement], models: list[str], preset, seeds: list[int],
                     labels: list[str] | None = None) -> dict:
    """Told from real for each model with each seed of ``seeds`` (the melodies and the
    test's folds drawn anew per seed: on 60 pieces the seed alone moves the accuracy by
    about 0.05); ``real_x``: the real melodies' feature vectors, shape (pieces, features).
    Returns ``{label: {"seeds": [...], "told_from_real": [...], "mean": m}}``. Raises
    ValueError as evaluate_pieces does."""
    labels = labels or list(models)
    out = {}
    for spec, name in zip(models, labels):
        scores = [round(told_apart(real_x, np.array([piece_features(n, p).vector() for n, p in
                                                     zip(play(spec, pieces, preset, seed), pieces)]), seed), 3)
                  for seed in seeds]
        out[name] = {"seeds": list(seeds), "told_from_real": scores, "mean": round(float(np.mean(scores)), 3)}
    return out
