"""The synthesizer kernel's numpy twin: the same voices, vectorized per voice.

``render`` takes the arguments of ``synth.render`` (see there) and adds the same samples
into ``out``: the oscillator and envelope as whole arrays, the biquad with
``scipy.signal.lfilter`` (transposed direct form II; the kernel runs direct form I, so
the two agree to rounding). setup.py does not compile this file.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SINE, SAW, SQUARE, ORGAN, EPIANO = range(5)
TWO_PI = 6.283185307179586
EP_INDEX = 2.0
EP_DECAY_S = 0.4


TABLE_SIZE = 4096
SINE_TABLE = np.sin(2.0 * np.pi * np.arange(TABLE_SIZE + 1) / TABLE_SIZE)
_k = 2.0 * np.pi * np.arange(TABLE_SIZE + 1) / TABLE_SIZE
ORGAN_TABLE = sum(np.sin(h * _k) / h for h in (1, 2, 3, 4))
ORGAN_TABLE = ORGAN_TABLE / np.abs(ORGAN_TABLE).max()


def _sin(t: np.ndarray, table: np.ndarray = SINE_TABLE) -> np.ndarray:
    """One period of ``table`` at phases 0 <= t < 1, interpolated as the kernel does."""
    x = t * float(TABLE_SIZE)
    i = x.astype(np.int64)
    return table[i] + (x - i) * (table[i + 1] - table[i])


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.trunc(x)


def _blep(t: np.ndarray, dt: float) -> np.ndarray:
    out = np.zeros_like(t)
    low, high = t < dt, t > 1.0 - dt
    x = t[low] / dt
    out[low] = x + x - x * x - 1.0
    x = (t[high] - 1.0) / dt
    out[high] = x * x + x + x + 1.0
    return out


def oscillator(kind: int, n: np.ndarray, freq: float, rate: float) -> np.ndarray:
    """One voice's raw oscillator over sample indices ``n``."""
    dt = freq / rate
    t = _frac(dt * n)
    if kind == SAW:
        return 2.0 * t - 1.0 - _blep(t, dt)
    if kind == SQUARE:
        return np.where(t < 0.5, 1.0, -1.0) + _blep(t, dt) - _blep(_frac(t + 0.5), dt)
    if kind == ORGAN:
        return _sin(t, ORGAN_TABLE)
    if kind == EPIANO:
        block = n - np.mod(n, 32.0)  # the kernel updates the index every 32 samples
        index = EP_INDEX * np.exp(-(block / rate) / EP_DECAY_S)
        return _sin(_frac(t + index * _sin(t) / TWO_PI + 1.0))
    return _sin(t)


def envelope(n: np.ndarray, a: float, d: float, s: float, r: float, off: int) -> np.ndarray:
    """The linear ADSR at sample indices ``n`` with the note-off at ``off``."""
    def held(k):
        k = np.asarray(k, dtype=np.float64)
        return np.where(k < a, k / a, np.where(k < a + d, 1.0 - (1.0 - s) * (k - a) / d, s))
    level = float(held(off))
    return np.where(n >= off, np.maximum(level * (1.0 - (n - off) / r), 0.0), held(n))


def render(out, start, off, length, freq, amp, timbre, pan, adsr, coef, rate) -> None:
    """As ``synth.render``: add every voice into ``out`` (samples, 2)."""
    total = out.shape[0]
    for v in range(len(start)):
        count = int(min(length[v], total - start[v]))
        if count <= 0:
            continue
        n = np.arange(count, dtype=np.int64)
        x = oscillator(int(timbre[v]), n.astype(np.float64), float(freq[v]), rate)
        b0, b1, b2, a1, a2 = coef[v]
        y = x if (b0, b1, b2, a1, a2) == (1.0, 0.0, 0.0, 0.0, 0.0) else lfilter([b0, b1, b2], [1.0, a1, a2], x)
        a, d, r, s = adsr[v]
        e = envelope(n.astype(np.float64), a, d, s, r, int(off[v]))
        theta = (pan[v] + 1.0) * 0.7853981633974483
        out[start[v]:start[v] + count, 0] += y * e * (amp[v] * np.cos(theta))
        out[start[v]:start[v] + count, 1] += y * e * (amp[v] * np.sin(theta))
