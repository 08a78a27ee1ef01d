"""The REMI encoder's preparation steps that run once per piece, in plain Python: time
signatures, tempos and chords brought to tokenizer ticks as miditok 3.x
``MusicTokenizer.preprocess_score`` does (the test oracle). ``t`` is a remi.Tables."""
import numpy as np


def closest_index(bins, values):
    """Index of the nearest bin for each value, ties going to the upper bin, exactly as
    miditok's ``np_get_closest`` (after https://stackoverflow.com/a/46184652).
    ``bins`` ascending; returns an int64 array shaped like ``values``."""
    bins = np.asarray(bins, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(bins, values, side="left")
    lower = np.fabs(values - bins[np.maximum(idx - 1, 0)]) < np.fabs(values - bins[np.minimum(idx, len(bins) - 1)])
    idx[(idx == len(bins)) | lower] -= 1
    return idx


class UnsupportedMeter(ValueError):
    """A piece whose meters cannot share one tick grid (e.g. 3/4 then 6/8)."""


def prepare_meter(t, time_sigs, ppqn):
    """(tpq, [(tick, num, den)]): miditok's time-signature steps, in tokenizer ticks.

    ``time_sigs``: (tick, numerator, denominator) at ``ppqn``. Unsupported meters are
    dropped, a 4/4 is assumed at tick 0 if none is there, each change is moved to the
    next bar start and repeats are dropped. Raises UnsupportedMeter when the meters
    left have different denominators.
    """
    sigs = sorted(((int(a), int(b), int(c)) for a, b, c in time_sigs if (b, c) in t.ts_ids), key=lambda s: s[0])
    if not sigs or sigs[0][0] != 0:
        sigs.insert(0, (0, 4, 4))
    tpq = int(t.P * max(s[2] for s in sigs) / 4)
    if ppqn != tpq:
        ratio = tpq / ppqn
        sigs = [(int(tick * ratio), num, den) for tick, num, den in sigs]  # truncated, as miditok
    sigs = [list(s) for s in sigs]

    def bar(s):
        return int(tpq * 4 / s[2]) * s[1]

    i, ticks_per_bar, previous = 0, bar(sigs[0]), 0
    while i < len(sigs):
        if i >= 1 and sigs[i][1:] == sigs[i - 1][1:]:
            del sigs[i]
            continue
        if i >= 1 and sigs[i][0] < sigs[i - 1][0]:
            sigs[i][0] = sigs[i - 1][0]
        bars, rest = divmod(sigs[i][0] - previous, ticks_per_bar)
        if rest > 0:
            sigs[i][0] = previous + (bars + 1) * ticks_per_bar
        ticks_per_bar, previous = bar(sigs[i]), sigs[i][0]
        if i >= 1 and sigs[i][0] == sigs[i - 1][0]:
            del sigs[i - 1]
            if i >= 2 and sigs[i - 1][1:] == sigs[i - 2][1:]:
                del sigs[i - 1]
                ticks_per_bar, previous = bar(sigs[i - 2]), sigs[i - 2][0]
                i -= 1
            continue
        i += 1
    if sigs[0][0] != 0:
        sigs.insert(0, [0, 4, 4])
    dens = {s[2] for s in sigs}
    if len(dens) > 1 or int(tpq * 4 / dens.pop()) != t.P:
        raise UnsupportedMeter("meters " + ", ".join(f"{n}/{d}" for _, n, d in sigs) + " do not share one beat unit")
    return tpq, [tuple(s) for s in sigs]


def resampled(events, ppqn, tpq):
    if ppqn == tpq:
        return [(int(e[0]), *e[1:]) for e in events]
    f = tpq / ppqn
    return [(int(e[0] * f + 0.5), *e[1:]) for e in events]


def prepare_tempos(t, tempos, ppqn, tpq):
    """[(tick, Tempo id)]: ``tempos`` as (tick, microseconds per quarter) at ``ppqn``,
    snapped to the bins, the last kept where several share a tick, a default at 0."""
    out = []
    for tick, mspq in sorted(resampled(tempos, ppqn, tpq), key=lambda e: e[0]):
        if out and out[-1][0] == tick:
            out.pop()
        out.append((tick, t.tempo_id(mspq)))
    if not out or out[0][0] != 0:
        out.insert(0, (0, t.default_tempo_id))
    return out


def prepare_chords(t, chords, ppqn, tpq):
    """[(tick, Chord id)]: ``chords`` as (tick, root 0-11, quality index) at ``ppqn``; the
    last of several at one tick wins, and a chord equal to the one before is dropped."""
    out = []
    for tick, root, quality in sorted(resampled(chords, ppqn, tpq), key=lambda e: e[0]):
        token = t.chord_id(root, quality)
        if out and out[-1][0] == tick:
            out.pop()
        if not out or out[-1][1] != token:
            out.append((tick, token))
    return out
