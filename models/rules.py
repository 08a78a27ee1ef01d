"""The rules model: chord tones on strong beats, scale and passing tones between.

Rhythm comes from the preset's grid (at most sixteenths) and density (notes per bar), register and swing
from the preset; a note always starts on a chord change so the melody answers it.
"""
from __future__ import annotations

import math

import numpy as np

from .protocol import MelodyModel, MelodyNote
from riffd.music.theory import chord_scale, pitches_in, strength, swing_offset
from riffd.music.theory import velocity as note_velocity


FINEST_GRID = 4  # sixteenths: finer preset grids (6, 12) free the transformer's rhythm, not this one's


class RulesModel(MelodyModel):
    name = "rules"

    def _gap_steps(self, pos: float, step: float) -> int:
        """How many grid steps until the next onset: around the density's mean, with a
        pull towards beats."""
        p = self.preset
        mean = max(1.0, p.beats_per_bar / p.density / step)
        ks = np.arange(1, int(2 * mean) + 2)
        weights = np.exp(-((ks - mean) ** 2) / (2 * max(0.5, mean / 2) ** 2))
        weights *= [1.6 if strength(pos + k * step, p.beats_per_bar) >= 2 else 1.0 for k in ks]
        return int(self.rng.choice(ks, p=weights / weights.sum()))

    def _pick_pitch(self, pos: float) -> int:
        p = self.preset
        chord = self.chord_at(pos)
        low, high = p.register
        prev = self.previous_pitch()
        if prev is None:
            prev = (low + high) // 2
        strong = strength(pos, p.beats_per_bar) >= 2
        # a chord change is always answered with one of its tones
        if chord is not None and (self.changes_at(pos) or (strong and self.rng.random() < p.chord_tone_bias)):
            pool, spread = pitches_in(chord.tones, low, high), 4.0
        else:
            pool, spread = pitches_in(chord_scale(chord, p.scale), low, high), 2.5
        pool = np.array(pool)
        dist = np.abs(pool - prev).astype(float)
        # small steps preferred; temperature widens the leaps; a repeat is rarer
        weights = np.exp(-dist / (spread * p.temperature)) * np.where(dist == 0, 0.3, 1.0)
        # drift back towards the middle of the register
        weights *= np.exp(-np.abs(pool - (low + high) / 2) / 24.0)
        return int(self.rng.choice(pool, p=weights / weights.sum()))

    def _next_notes(self) -> list[MelodyNote]:
        p = self.preset
        grid = min(p.grid, FINEST_GRID)
        step = 1.0 / grid
        pos = self.cursor
        k = self._gap_steps(pos, step)
        end = pos + k * step
        change = self.next_change(pos)
        if change is not None and change < end:
            end = change  # a chord change starts a note of its own
        # align to the grid (after a rollback the cursor may sit off it)
        end = max(pos + 1e-6, math.floor(end / step + 1e-6) * step) if end - pos > step else end
        self.cursor = end
        if self.chord_at(pos) is None or (not self.changes_at(pos) and strength(pos, p.beats_per_bar) < 2
                                          and self.rng.random() < 0.08):
            return []  # no chord yet, or an occasional rest on a weak position (never on a change)
        shift = swing_offset(pos, grid, p.swing)
        velocity = note_velocity(p.velocity, strength(pos, p.beats_per_bar), int(self.rng.integers(-4, 5)))
        duration = max(step * 0.25, (end - pos - shift) * 0.92)
        return [MelodyNote(pos + shift, duration, self._pick_pitch(pos), velocity)]


MODEL = RulesModel
