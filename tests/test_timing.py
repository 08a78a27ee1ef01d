"""A played melody is measured as the rhythm it plays (models/evaluation/timing.py)."""
import numpy as np

from riffd.models.evaluation.timing import grid_of, played, snapped
from riffd.models.protocol import MelodyNote


def performed(notes, sigma, seed=0):
    """``notes`` as a person plays them: each onset and end moved by a normal error of
    ``sigma`` beats (0.03: 15 ms at 120 BPM)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in notes:
        start = n.start + rng.normal(0, sigma)
        end = n.start + n.duration + rng.normal(0, sigma)
        out.append(MelodyNote(start, max(0.05, end - start), n.pitch, n.velocity))
    return out


def line(onsets, length=0.5):
    return [MelodyNote(t, length, 60 + k % 12, 80) for k, t in enumerate(onsets)]


STRAIGHT = line([0, 0.5, 1, 1.75, 2, 2.25, 2.5, 3, 4, 4.5, 5, 5.75, 6, 6.25, 6.5, 7], 0.25)
SWUNG = line([b + off for b in range(8) for off in (0, 2 / 3)], 1 / 3)


def test_a_written_melody_is_left_as_it_is():
    assert not played(STRAIGHT) and not played(SWUNG)
    assert snapped(STRAIGHT) == (STRAIGHT, None)


def test_a_played_melody_is_snapped_back_to_the_rhythm_it_plays():
    """Straight sixteenths and a swung line (eighth-note triplets), each played with 15 ms
    of error at 120 BPM: their onsets come back as written, on the grid that fits."""
    for written, grid in ((STRAIGHT, "sixteenths"), (SWUNG, "triplets")):
        for seed in range(5):
            human = performed(written, 0.03, seed)
            assert played(human)
            notes, name = snapped(human)
            assert name == grid == grid_of(human)
            assert [(n.start, n.pitch) for n in notes] == [(round(n.start * 12) / 12, n.pitch) for n in written]
            assert all(n.duration > 0 for n in notes)
            assert all(a.start + a.duration <= b.start + 1e-9 for a, b in zip(notes, notes[1:]))  # one voice


def test_a_grace_note_gives_way_to_the_note_it_graces():
    human = performed(STRAIGHT, 0.02, 1)
    grace = MelodyNote(human[4].start - 0.02, 0.02, 61, 60)  # a flick just before beat 2
    notes, _ = snapped(sorted(human + [grace], key=lambda n: n.start))
    assert [n.pitch for n in notes] == [n.pitch for n in STRAIGHT]
