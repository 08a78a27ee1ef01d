# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Synthesizer kernel: voices -> stereo PCM, sample by sample.

Cython in pure-Python mode, like the REMI kernel: ``setup.py`` compiles it, and run by
the interpreter it is its own (slow) twin; ``synth_np.py`` is the numpy twin that the
tests hold it to, sample for sample. Each voice is one note already placed by the
caller (start sample, note-off sample, release, stealing done): an oscillator, a
resonant low-pass biquad, a linear ADSR envelope, its amplitude and constant-power pan,
added into ``out``.

Oscillators: sine; saw and square band-limited with PolyBLEP (Valimaki and Huovilainen,
"Antialiasing Oscillators in Subtractive Synthesis", IEEE Signal Processing Magazine
2007); organ, four sine drawbars (harmonics 1, 2, 3, 4 at 1, 1/2, 1/3, 1/4) in one
wavetable; electric piano, two-operator FM with a decaying index (Chowning, "The
Synthesis of Complex Audio Spectra by Means of Frequency Modulation", JAES 1973),
modulator at 1x, index 2 decaying over 0.4 s (updated every 32 samples). Sines come
from a 4,096-step table read with linear interpolation. The phase is computed from the sample index (frequency x n / rate), not
accumulated, so both twins see the same numbers. The filter is the RBJ Audio EQ Cookbook
low-pass, run direct form I; coefficients come from ``lowpass``.
"""
import cython
import numpy as np
from cython.cimports.libc.math import ceil, cos, exp, sin

TABLE_SIZE = 4096
# One period of a sine, plus the first sample again so interpolation never wraps. Read
# with linear interpolation its error is under 3e-7 of full scale (-130 dB).
SINE_TABLE = np.sin(2.0 * np.pi * np.arange(TABLE_SIZE + 1) / TABLE_SIZE)
# The organ: four sine drawbars (harmonics 1-4 at 1, 1/2, 1/3, 1/4), peak 1, in one table.
_k = 2.0 * np.pi * np.arange(TABLE_SIZE + 1) / TABLE_SIZE
ORGAN_TABLE = sum(np.sin(h * _k) / h for h in (1, 2, 3, 4))
ORGAN_TABLE = ORGAN_TABLE / np.abs(ORGAN_TABLE).max()
_N = cython.declare(cython.double, 4096.0)

TIMBRES = {"sine": 0, "saw": 1, "square": 2, "organ": 3, "epiano": 4}
# C constants in the compiled kernel (a module global would be a Python lookup per sample)
_SAW = cython.declare(cython.int, 1)
_SQUARE = cython.declare(cython.int, 2)
_ORGAN = cython.declare(cython.int, 3)
_EPIANO = cython.declare(cython.int, 4)
_INV_TWO_PI = cython.declare(cython.double, 0.15915494309189535)
_EP_INDEX = cython.declare(cython.double, 2.0)    # FM index of the electric piano at the key strike
_EP_DECAY_S = cython.declare(cython.double, 0.4)  # its time constant (s)


def lowpass(cutoff_hz: float, q: float, rate: float) -> tuple:
    """(b0, b1, b2, a1, a2) of the RBJ cookbook low-pass, normalized by a0. A cutoff at
    or above 0.45 x rate gives the identity (1, 0, 0, 0, 0): no filter."""
    import math
    if cutoff_hz >= 0.45 * rate:
        return (1.0, 0.0, 0.0, 0.0, 0.0)
    w0 = 2.0 * math.pi * cutoff_hz / rate
    alpha = math.sin(w0) / (2.0 * q)
    cw, a0 = math.cos(w0), 1.0 + alpha
    return ((1.0 - cw) / 2.0 / a0, (1.0 - cw) / a0, (1.0 - cw) / 2.0 / a0, -2.0 * cw / a0, (1.0 - alpha) / a0)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _blep(t: cython.double, dt: cython.double) -> cython.double:
    x: cython.double
    if t < dt:
        x = t / dt
        return x + x - x * x - 1.0
    if t > 1.0 - dt:
        x = (t - 1.0) / dt
        return x * x + x + x + 1.0
    return 0.0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _frac(x: cython.double) -> cython.double:
    return x - cython.cast(cython.double, cython.cast(cython.longlong, x))


@cython.ccall
def render(out: cython.double[:, ::1], start: cython.longlong[::1], off: cython.longlong[::1],
           length: cython.longlong[::1], freq: cython.double[::1], amp: cython.double[::1],
           timbre: cython.int[::1], pan: cython.double[::1], adsr: cython.double[:, ::1],
           coef: cython.double[:, ::1], rate: cython.double):
    """Add every voice into ``out`` (shape (samples, 2), float64).

    Per voice v: ``start`` sample, note-off ``off`` samples after it, ``length`` samples
    in all (note-off plus release); ``freq`` Hz, ``amp`` linear, ``timbre`` one of
    TIMBRES, ``pan`` -1 (left) to 1 (right); ``adsr[v]`` attack, decay, release in
    samples (each at least 1) and the sustain level; ``coef[v]`` the biquad (b0, b1, b2,
    a1, a2). Samples past the end of ``out`` are dropped.

    A voice's oscillator and filter depend only on its frequency, timbre and filter
    (the phase and the FM index count from the note's start, the filter starts at
    rest), so voices that share them share one signal: it is computed once, as long as
    the longest of them, and each voice adds it times its own envelope and pan gains.
    A piece replays the same few dozen pitches, so most of the oscillator work goes.
    No loop branches per sample: one oscillator loop per timbre, the filter (skipped
    when it is the identity), then the envelope's segments.
    """
    v: cython.Py_ssize_t
    longest: cython.longlong
    theta: cython.double
    total: cython.longlong = out.shape[0]
    groups: dict = {}
    for v in range(start.shape[0]):
        if min(length[v], total - start[v]) > 0:
            key = (freq[v], timbre[v], coef[v, 0], coef[v, 1], coef[v, 2], coef[v, 3], coef[v, 4])
            groups.setdefault(key, []).append(v)
    for members in groups.values():
        longest = 0
        for v in members:
            longest = max(longest, min(length[v], total - start[v]))
        v = members[0]
        signal: cython.double[::1] = np.empty(longest)
        _oscillate(signal, longest, timbre[v], freq[v] / rate, rate)
        _lowpass(signal, longest, coef[v])
        for v in members:
            theta = (pan[v] + 1.0) * 0.7853981633974483   # constant-power pan law
            _envelope(out, signal, start[v], min(length[v], total - start[v]), off[v], adsr[v],
                      amp[v] * cos(theta), amp[v] * sin(theta))


@cython.cfunc
@cython.exceptval(check=False)
def _oscillate(buf: cython.double[::1], count: cython.longlong, kind: cython.int,
               dt: cython.double, rate: cython.double) -> cython.void:
    """The first ``count`` samples of one oscillator at ``dt`` cycles per sample into ``buf``."""
    n: cython.longlong
    block: cython.longlong
    t: cython.double
    index: cython.double
    tab: cython.double[::1] = SINE_TABLE
    organ: cython.double[::1] = ORGAN_TABLE
    if kind == _SAW:
        for n in range(count):
            t = _frac(dt * n)
            buf[n] = 2.0 * t - 1.0 - _blep(t, dt)
    elif kind == _SQUARE:
        for n in range(count):
            t = _frac(dt * n)
            buf[n] = (1.0 if t < 0.5 else -1.0) + _blep(t, dt) - _blep(_frac(t + 0.5), dt)
    elif kind == _ORGAN:
        for n in range(count):
            buf[n] = _sin(organ, _frac(dt * n))
    elif kind == _EPIANO:
        for block in range(0, count, 32):  # the FM index moves slowly: once per 32 samples
            index = _EP_INDEX * exp(-(block / rate) / _EP_DECAY_S) * _INV_TWO_PI
            for n in range(block, min(block + 32, count)):
                t = _frac(dt * n)
                buf[n] = _sin(tab, _frac(t + index * _sin(tab, t) + 1.0))
    else:
        for n in range(count):
            buf[n] = _sin(tab, _frac(dt * n))


@cython.cfunc
@cython.exceptval(check=False)
def _lowpass(buf: cython.double[::1], count: cython.longlong, c: cython.double[::1]) -> cython.void:
    """The biquad ``c`` (b0, b1, b2, a1, a2) over ``buf[:count]`` in place (direct form
    I), from rest; the identity is skipped."""
    n: cython.longlong
    x: cython.double
    y: cython.double
    b0: cython.double = c[0]
    b1: cython.double = c[1]
    b2: cython.double = c[2]
    a1: cython.double = c[3]
    a2: cython.double = c[4]
    x1: cython.double = 0.0
    x2: cython.double = 0.0
    y1: cython.double = 0.0
    y2: cython.double = 0.0
    if b0 == 1.0 and b1 == 0.0 and b2 == 0.0 and a1 == 0.0 and a2 == 0.0:
        return
    for n in range(count):
        x = buf[n]
        y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        x2 = x1
        x1 = x
        y2 = y1
        y1 = y
        buf[n] = y


@cython.cfunc
@cython.exceptval(check=False)
def _envelope(out: cython.double[:, ::1], buf: cython.double[::1], base: cython.longlong,
              count: cython.longlong, o: cython.longlong, adsr: cython.double[::1],
              gl: cython.double, gr: cython.double) -> cython.void:
    """``buf[:count]`` (a voice that starts at sample ``base``) times its ADSR and the pan
    gains, added into ``out``: attack below ``adsr[0]`` samples, decay for ``adsr[1]``
    more, sustain ``adsr[3]`` until the note-off ``o``, then the release (``adsr[2]``
    samples) from the level at the note-off to 0."""
    n: cython.longlong = 0
    stop: cython.longlong
    level: cython.double
    env: cython.double
    y: cython.double
    a: cython.double = adsr[0]
    ad: cython.double = adsr[0] + adsr[1]
    s: cython.double = adsr[3]
    ia: cython.double = 1.0 / adsr[0]
    idd: cython.double = 1.0 / adsr[1]
    ir: cython.double = 1.0 / adsr[2]
    # the level the release starts from: the envelope at the note-off, held
    level = o * ia if o < a else (1.0 - (1.0 - s) * (o - a) * idd if o < ad else s)
    stop = min(o, count, cython.cast(cython.longlong, ceil(a)))
    while n < stop:  # attack: n < a
        y = buf[n] * (n * ia)
        out[base + n, 0] += y * gl
        out[base + n, 1] += y * gr
        n += 1
    stop = min(o, count, cython.cast(cython.longlong, ceil(ad)))
    while n < stop:  # decay: a <= n < a + d
        y = buf[n] * (1.0 - (1.0 - s) * (n - a) * idd)
        out[base + n, 0] += y * gl
        out[base + n, 1] += y * gr
        n += 1
    stop = min(o, count)
    while n < stop:  # sustain until the note-off
        y = buf[n] * s
        out[base + n, 0] += y * gl
        out[base + n, 1] += y * gr
        n += 1
    while n < count:  # release, clamped at silence
        env = level * (1.0 - (n - o) * ir)
        if env < 0.0:
            env = 0.0
        y = buf[n] * env
        out[base + n, 0] += y * gl
        out[base + n, 1] += y * gr
        n += 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _sin(tab: cython.double[::1], t: cython.double) -> cython.double:
    """One period of ``tab`` at phase 0 <= t < 1, linearly interpolated."""
    x: cython.double = t * _N
    i: cython.Py_ssize_t = cython.cast(cython.Py_ssize_t, x)
    return tab[i] + (x - i) * (tab[i + 1] - tab[i])


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _osc(tab: cython.double[::1], organ: cython.double[::1], kind: cython.int, t: cython.double,
         dt: cython.double, index: cython.double) -> cython.double:
    if kind == _SAW:
        return 2.0 * t - 1.0 - _blep(t, dt)
    if kind == _SQUARE:
        return (1.0 if t < 0.5 else -1.0) + _blep(t, dt) - _blep(_frac(t + 0.5), dt)
    if kind == _ORGAN:
        return _sin(organ, t)
    if kind == _EPIANO:
        return _sin(tab, _frac(t + index * _sin(tab, t) * _INV_TWO_PI + 1.0))
    return _sin(tab, t)
