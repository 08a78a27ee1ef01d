"""The preset's density for the transformer (models/density.py): off by default, a band
when ``density_follow`` asks for it."""
import math

import numpy as np
import pytest

from riffd.daemon.benchgen import progression
from riffd.models import load_model
from riffd.models.density import BAND, GAIN, LIMIT, gap_bias, tilt, tilt_now
from riffd.models.protocol import ChordAt, Context
from riffd.music.chords import parse_chord
from riffd.presets import load_preset


def test_no_tilt_inside_the_band_or_before_a_bar_or_when_not_asked():
    assert tilt(16, 16.0, 4.0, 4.0) == 0.0                       # on the density
    assert tilt(19, 16.0, 4.0, 4.0) == 0.0                       # 4.75 a bar: within 25 %
    assert tilt(13, 16.0, 4.0, 4.0) == 0.0                       # 3.25 a bar: within 25 %
    assert tilt(9, 3.0, 4.0, 2.0) == 0.0                         # under a bar: no rate yet
    assert tilt(32, 16.0, 4.0, 2.0, follow=0.0) == 0.0           # density_follow 0


def test_the_tilt_grows_with_the_rate_beyond_the_band_and_is_limited():
    dense = tilt(32, 16.0, 4.0, 4.0)                             # twice the density
    assert dense == pytest.approx(GAIN * (1.0 - math.log2(BAND)))
    assert tilt(8, 16.0, 4.0, 4.0) == pytest.approx(-dense)      # half the density
    assert tilt(0, 16.0, 4.0, 4.0) == -LIMIT                     # silence: at most LIMIT
    assert tilt(32, 16.0, 4.0, 4.0, follow=0.5) == pytest.approx(dense / 2)


def test_gap_bias_favours_longer_gaps_when_positive():
    bias = gap_bias(np.array([0.0, 0.5, 1.0, 2.0]), 2.0)
    assert np.all(np.diff(bias) > 0)
    assert bias[3] - bias[2] == pytest.approx(2.0)               # 2 nats per doubling


def notes_per_bar(model, preset, seeds=range(3), bars=16) -> float:
    """Over a chord a bar (I vi IV V): every change gets a note at rest_on_changes 0, so
    the chords alone ask for one note a bar."""
    chords = [ChordAt(4.0 * b, parse_chord(("C", "Am", "F", "G")[b % 4])) for b in range(bars)]
    rates = []
    for seed in seeds:
        model.start(Context(preset, seed=seed, chords=chords))
        rates.append(len(list(model.generate(bars * 4.0))) / bars)
    return float(np.mean(rates))


@pytest.fixture(scope="module")
def transformer():
    return load_model("onnx")


def test_density_does_not_move_the_transformer_unless_asked(transformer):
    """density_follow 0 (every shipped preset but pop): the transformer's notes are the same
    at any density, as riff-chorale's evaluation against Bach's melodies asks."""
    played = []
    for density in (2.0, 12.0):
        preset = load_preset("pop").with_values(density=density, density_follow=0.0)
        transformer.start(Context(preset, seed=5, chords=progression(8)))
        played.append([(n.start, n.pitch, n.duration) for n in transformer.generate(32.0)])
    assert played[0] == played[1]


def test_density_follow_brings_the_transformer_to_the_density(transformer):
    """At density_follow 1 the notes per bar follow density: at 2 they stay near the
    band's top (2.5) where the model by itself runs in eighths (7.2 a bar, measured), at
    7 they more than double that."""
    pop = load_preset("pop").with_values(density_follow=1.0, repeat=0.0)  # a recalled phrase keeps its notes
    own = notes_per_bar(transformer, pop.with_values(density=2.0, density_follow=0.0))
    sparse = notes_per_bar(transformer, pop.with_values(density=2.0))
    dense = notes_per_bar(transformer, pop.with_values(density=7.0))
    assert sparse <= 2.0 * BAND + 0.5 < own / 2, (sparse, own)
    assert dense >= 2.0 * sparse, (sparse, dense)


def test_density_follow_moves_the_markov_model_too():
    """Less far than the transformer (4.15 notes a bar by itself, 3.44 at density 2, 4.58
    at 7, measured): the longest context it knows offers few long gaps."""
    markov = load_model("markov")
    # pop as these figures were measured: its bias and recall, set for the transformer, move
    # markov's own rhythm (bias 0: 3.83 a bar), and a recalled phrase keeps its notes
    pop = load_preset("pop").with_values(density=2.0, density_follow=0.0, chord_tone_bias=0.85, repeat=0.0)
    own = notes_per_bar(markov, pop)
    sparse = notes_per_bar(markov, pop.with_values(density_follow=1.0))
    dense = notes_per_bar(markov, pop.with_values(density_follow=1.0, density=7.0))
    assert sparse + 0.5 < own < dense, (sparse, own, dense)


def test_a_stretch_the_model_was_not_asked_to_play_is_no_sparse_playing():
    """A rollback past the cursor (a call-response call it listened to, a rest the engine
    skipped) starts the count again there: counted from before, the silence read as
    -LIMIT nats, and a pop answer came out in twelfth-beat blips."""
    markov = load_model("markov")
    markov.start(Context(load_preset("pop"), seed=1, chords=progression(4)))
    played = list(markov.generate(16.0))
    assert len(played) >= 8
    markov.rollback(40.0)
    assert markov.playing_from == 40.0 and tilt_now(markov, 0.0) == 0.0  # under a bar played: no rate
    markov.rollback(8.0)  # back before it: counted from there (what it played before is not lost, only not counted)
    assert markov.playing_from == 8.0
