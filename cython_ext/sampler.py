# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Sampling kernel: one token id from a model's logits, in one call.

Temperature scaling, then nucleus (top-p) sampling (Holtzman et al., "The Curious Case
of Neural Text Degeneration", ICLR 2020), drawn by inverse CDF from one uniform number
that the caller supplies (so the caller's random stream decides, and both twins draw the
same id). Cython in pure-Python mode like the REMI and synth kernels; run by the
interpreter it is its own twin. Batch rendering samples about 220 times a 16-bar file:
as a dozen numpy calls over 20-90 ids a draw cost 67 us, mostly call overhead; as one
kernel call 14 us with its wrapper (both under cProfile, 6,672 draws). With the chord-tone
bias read from a table (models/sampling.py), a 16-bar onnx file with WAV and PNG went
from 175 to 134 ms (docs/measured.md, "Early morning").
"""
import cython
import numpy as np
from cython.cimports.libc.math import exp

GREEDY_TEMPERATURE = 0.05  # at or below it the most likely id is taken


@cython.ccall
def draw(logits: cython.float[:], allowed: cython.longlong[:], bias: cython.double[:],
         temperature: cython.double, top_p: cython.double, u: cython.double) -> cython.longlong:
    """The id drawn out of ``allowed`` (ids, shape (n,), n >= 1).

    ``logits``: shape (vocab,); ``bias``: shape (n,) or (0,) for none, in nats, added
    before the temperature. With ``top_p`` < 1 only the most likely ids whose
    probabilities first reach ``top_p`` together are kept (ties: the earlier in
    ``allowed`` first). ``u``: uniform in [0, 1), unused when the draw is greedy
    (``temperature`` <= GREEDY_TEMPERATURE, or n == 1: the first most likely id).
    Raises ValueError for no ids, or a ``bias`` of another length.
    """
    n: cython.Py_ssize_t = allowed.shape[0]
    biased: cython.bint = bias.shape[0] == n
    if n == 0 or not (biased or bias.shape[0] == 0):
        raise ValueError(f"{n} allowed ids and {bias.shape[0]} biases: need at least one id, one bias each or none")
    z = np.empty(n, dtype=np.float64)
    zv: cython.double[:] = z
    i: cython.Py_ssize_t
    best: cython.Py_ssize_t = 0
    for i in range(n):
        zv[i] = logits[allowed[i]] + (bias[i] if biased else 0.0)
        if zv[i] > zv[best]:
            best = i
    if temperature <= GREEDY_TEMPERATURE or n == 1:
        return allowed[best]
    top: cython.double = zv[best]
    total: cython.double = 0.0
    for i in range(n):
        zv[i] = exp((zv[i] - top) / temperature)
        total += zv[i]
    order = np.arange(n, dtype=np.int64)
    ov: cython.longlong[:] = order
    kept: cython.Py_ssize_t = n
    k: cython.Py_ssize_t
    j: cython.Py_ssize_t
    swap: cython.longlong
    cum: cython.double = 0.0
    if top_p < 1.0:
        # selection, most likely first: the nucleus is a few ids, a full sort is not needed
        for k in range(n):
            best = k
            for j in range(k + 1, n):
                if zv[ov[j]] > zv[ov[best]] or (zv[ov[j]] == zv[ov[best]] and ov[j] < ov[best]):
                    best = j
            swap = ov[k]
            ov[k] = ov[best]
            ov[best] = swap
            cum += zv[ov[k]]
            if cum >= top_p * total:
                kept = k + 1
                break
        total = cum if kept < n else total
    target: cython.double = u * total
    cum = 0.0
    for k in range(kept):
        cum += zv[ov[k]]
        if cum > target:
            return allowed[ov[k]]
    return allowed[ov[kept - 1]]  # u * total rounded up to the last sum
