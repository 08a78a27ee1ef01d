"""Synthetic pieces: the rules model over common progressions, varied in key, tempo and style.

They teach a model the styles the corpus lacks (pop, jazz, blues, gospel, trance); the
dataset marks them synthetic, with the style token of the preset that made them.
"""
from __future__ import annotations

import numpy as np

from riffd.music.chords import parse_chord

from .corpus import Piece
from riffd.models.protocol import ChordAt, Context, one_voice

# Roman-numeral-free progressions in C, one chord per bar (or two where listed twice).
PROGRESSIONS = {
    "pop": [["C", "G", "Am", "F"], ["Am", "F", "C", "G"], ["C", "Am", "F", "G"], ["F", "G", "Em", "Am"]],
    "gospel": [["C", "C7", "F", "Fm"], ["C", "Am7", "Dm7", "G7"], ["F", "G", "Em7", "Am7"]],
    "jazz": [["Dm7", "G7", "Cmaj7", "Cmaj7"], ["Cmaj7", "Am7", "Dm7", "G7"], ["Em7", "A7", "Dm7", "G7"]],
    "blues": [["C7", "F7", "C7", "C7", "F7", "F7", "C7", "C7", "G7", "F7", "C7", "G7"]],
    "trance": [["Am", "F", "C", "G"], ["Am", "Am", "F", "G"], ["Em", "C", "G", "D"]],
    "folk": [["C", "F", "C", "G"], ["C", "G", "C", "G"], ["Am", "G", "Am", "Em"]],
}


# The preset values the shipped riff-small's synthetic pieces were made with where a preset
# has since been set for playing (presets/pop.toml, jazz.toml, blues.toml, gospel.toml,
# trance.toml), so the training data stays as it was.
# No value pins code: the form's recall drawn once a phrase (models/form.py, 2026-12-05)
# changed 44 of the 50 folk pieces of `--synthetic 300`, whose preset recalls (repeat 0.8).
MADE_WITH = {"pop": {"chord_tone_bias": 0.85, "repeat": 0.0, "density": 6.0},
             "jazz": {"chord_tone_bias": 0.8, "repeat": 0.0}, "blues": {"chord_tone_bias": 0.75, "repeat": 0.0},
             "gospel": {"chord_tone_bias": 0.9, "repeat": 0.0}, "trance": {"repeat": 0.0}}


def generate(index: int, seed: int = 0) -> Piece:
    """Synthetic piece number ``index``: a style, a progression in a random key, 8 or 16
    bars of 4/4 at the preset's tempo +-15%, melody by the rules model."""
    from riffd.presets import load_preset
    from riffd.models.rules import RulesModel

    rng = np.random.default_rng([seed, index])
    style = list(PROGRESSIONS)[index % len(PROGRESSIONS)]
    preset = load_preset(style)
    progression = PROGRESSIONS[style][int(rng.integers(len(PROGRESSIONS[style])))]
    key = int(rng.integers(12))
    bars = int(rng.choice([8, 16]))
    tempo = float(preset.tempo * rng.uniform(0.85, 1.15))
    preset = preset.with_values(meter=[4, 4], tempo=min(400.0, max(20.0, tempo)), **MADE_WITH.get(style, {}))
    chords = [parse_chord(progression[b % len(progression)]).transposed(key) for b in range(bars)]
    model = RulesModel()
    model.start(Context(preset, seed=int(rng.integers(2 ** 31)),
                        chords=[ChordAt(4.0 * b, c) for b, c in enumerate(chords)]))
    end = 4.0 * bars
    # one voice, as render and serve play it: a rules note may outlast the next onset
    melody = [n for n in one_voice(model.generate(end)) if n.start < end]
    blocks = [(4.0 * b, 4.0 * b + 4.0, tuple(c.voicing(48))) for b, c in enumerate(chords)]
    return Piece(f"synthetic-{seed}-{index}", "synthetic", tempo, (4, 4), blocks, melody,
                 [(0.0, 4, 4)], {"style": style, "chords": "synthetic", "file": f"synthetic-{index}"})
