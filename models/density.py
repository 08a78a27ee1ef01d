"""The preset's ``density`` for models that play their own rhythm: a band, not a grid.

The rules model places ``density`` notes per bar. The transformer and the markov model
play the rhythm they learned: the transformer 4.75 notes a bar over the chorales' chords
with the pop preset, whatever the density (docs/measured.md, "Density for the
transformer"). With the preset's ``density_follow`` above 0 their sampling is tilted
while their notes per bar over the last ``BARS`` bars lie outside ``density / BAND`` to
``density * BAND``: ``GAIN`` nats (times density_follow) against each doubling of a gap
between onsets (or of a note's length) for each doubling of the rate beyond the band, at
most ``LIMIT``. Inside the band a model's own rhythm is left as it is. It is off by
default: held in a band, riff-chorale's melodies were told from Bach's more often (0.77
against 0.61), as real pieces differ in their rates.
"""
from __future__ import annotations

import math

import numpy as np

BARS = 4       # bars over which the rate is counted: a phrase, not one bar's figure
BAND = 1.25    # no tilt within this factor of the density either way
GAIN = 3.0     # nats per doubling of a gap, per doubling of the rate beyond the band
LIMIT = 6.0    # the most tilt, nats per doubling: a model may still rest or run
SHORTEST = 1.0 / 12.0  # beats: a REMI position step (tokens.CONFIG)


def tilt(onsets: int, span_beats: float, bar_beats: float, density: float, follow: float = 1.0) -> float:
    """Nats per doubling of a gap (positive: longer gaps, fewer notes) for ``onsets``
    notes begun over the last ``span_beats`` beats (at most ``BARS`` bars), against
    ``density`` notes per bar of ``bar_beats`` beats, scaled by ``follow`` (0 to 1). 0 over
    less than a bar (the rate is no rate yet) or inside the band. A stretch with no onset
    counts half of one."""
    if follow <= 0 or span_beats < bar_beats - 1e-9 or density <= 0:
        return 0.0
    excess = math.log2(max(onsets, 0.5) * bar_beats / span_beats / density)
    band = math.log2(BAND)
    beyond = excess - band if excess > band else excess + band if excess < -band else 0.0
    return max(-LIMIT, min(LIMIT, GAIN * follow * beyond))


def gap_bias(gaps_beats: np.ndarray, nats: float) -> np.ndarray:
    """Logit bias (nats, shape of ``gaps_beats``) of ``nats`` per doubling of each gap or
    length (beats; under a position step counts as one)."""
    return nats * np.log2(np.maximum(np.asarray(gaps_beats, dtype=np.float64), SHORTEST))


def tilt_now(model, stream_start: float) -> float:
    """``tilt`` for ``model`` (a MelodyModel) at its cursor: the notes it began over the
    last ``BARS`` bars of its preset's meter, none before ``stream_start`` (beats: where
    its stream began) or its ``playing_from`` (where it last began to play: a stretch it
    was not asked to play, a call-response call, is no sparse playing). 0 at once when
    the preset's ``density_follow`` is 0, so that the default costs nothing per step."""
    preset = model.preset
    if preset.density_follow <= 0:
        return 0.0
    bar = preset.beats_per_bar
    since = max(model.cursor - BARS * bar, stream_start, model.playing_from)
    onsets = len(model.notes_between(since, model.cursor + 1e-9))
    return tilt(onsets, model.cursor - since, bar, preset.density, preset.density_follow)
