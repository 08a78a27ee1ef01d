"""Repeats: a score's bars in played order (models/training/repeats.py), and the corpus
readers that take them (`riffd dataset build --repeats played`)."""
from __future__ import annotations

import pytest

from conftest import run_riffd
from riffd.models.training.repeats import Bar, played_order

ABC = """X:1
T:Test reel
M:4/4
L:1/8
K:G
|:"G"GABc dBGB|"C"cBcd e2dc|"G"BAGB "D"A2FA|1"G"G2B2 G4:|2"G"G2B2 g4||
"Em"e2ge dBGB|"C"c2ec BAGA|"G"B2dB "D"A2FA|"G"G2B2 G4:|
"""


def test_plain_score_is_its_own_order():
    assert played_order([Bar()] * 5) == [0, 1, 2, 3, 4]


def test_aabb_repeats_each_section_alone():
    # |: 0 1 :| 2 3 :|  -> the second sign goes back to bar 2, not to the first bar
    bars = [Bar(start=True), Bar(end_times=2), Bar(), Bar(end_times=2)]
    assert played_order(bars) == [0, 1, 0, 1, 2, 3, 2, 3]


def test_endings_are_taken_in_turn():
    # |: 0 1 |1 2 :|2 3 || 4 5 :|
    bars = [Bar(start=True), Bar(), Bar(end_times=2, endings=frozenset({1})), Bar(endings=frozenset({2})),
            Bar(), Bar(end_times=2)]
    assert played_order(bars) == [0, 1, 2, 0, 1, 3, 4, 5, 4, 5]


def test_double_bar_and_times():
    # 0 || 1 2 :|x3  -> from the double bar, three times in all
    bars = [Bar(double=True), Bar(), Bar(end_times=3)]
    assert played_order(bars) == [0, 1, 2, 1, 2, 1, 2]


@pytest.fixture(scope="module")
def reel(tmp_path_factory):
    path = tmp_path_factory.mktemp("abc") / "reel.abc"
    path.write_text(ABC)
    return path


def test_corpus_reader_plays_the_form(reel):
    from riffd.models.training.corpus import chord_symbol_tunes, melodies
    written, = melodies(reel, "oneill")
    played, = melodies(reel, "oneill", repeats="played")
    assert written.length_beats == 9 * 4  # both endings in a row
    assert played.length_beats == 16 * 4  # A (first ending), A (second), B, B
    first_a = [(n.start, n.pitch) for n in played.melody if n.start < 16]
    second_a = [(n.start - 16, n.pitch) for n in played.melody if 16 <= n.start < 28]
    assert second_a == [x for x in first_a if x[0] < 12]  # the A again, up to its ending
    assert [n.pitch for n in played.melody if 28 <= n.start < 32][-1] == 79  # the second ending's g
    tune, = chord_symbol_tunes(reel, repeats="played")
    assert [c[0] for c in tune.chords if c[0] >= 32][:2] == [32.0, 36.0]  # the B's chords: Em, C
    assert tune.length_beats == 64


def test_dataset_songs_plays_the_repeats(tmp_path):
    """`riffd dataset songs --repeats played`: Aird's airs as played, each section as often
    as its signs say, in files a user's folder would hold; a composer's works refuse it."""
    from riffd.models.evaluation.arrangements import read_folder
    from riffd.models.evaluation.features import repetition
    found = {}
    for form in ("written", "played"):
        made = run_riffd("dataset", "songs", "-o", str(tmp_path / form), "--source", "airds", "--count", "6",
                         "--repeats", form)
        assert made.returncode == 0, made.stderr
        found[form], _ = read_folder(tmp_path / form, echo=lambda line: None)
    pairs = list(zip(found["written"], found["played"]))
    assert len(pairs) == 6 and all(p.length >= w.length for w, p in pairs)
    longer = [(w, p) for w, p in pairs if p.length > w.length]
    assert len(longer) >= 3 and all(p.length <= 2 * w.length + 1e-6 for w, p in longer)
    again = [repetition(p.melody, p.bar_beats, p.length, p.origin) > repetition(w.melody, w.bar_beats, w.length,
                                                                                   w.origin) for w, p in longer]
    assert all(again)  # a section played twice repeats its 2-bar phrases
    refused = run_riffd("dataset", "songs", "-o", str(tmp_path / "pal"), "--source", "palestrina", "--count", "1",
                        "--repeats", "played")
    assert refused.returncode == 2 and "--repeats played" in refused.stderr
