"""Live phrases (daemon/phrasing.py): answers in the call's place in the bar, rests on a bar line, ended as the preset says."""
from riffd.daemon.phrasing import answer_plan, ended, rest_beat
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.music.chords import parse_chord
from riffd.presets import load_preset

C, F, G = (parse_chord(n) for n in ("C7", "F7", "G7"))
BLUES = load_preset("blues").with_values(phrase_bars=2)  # 4/4: a bar is 4 beats


def test_an_answer_starts_a_whole_number_of_bars_after_the_call_began():
    # a call of two bars from beat 0, released on beat 8; riffd hears the silence at 10.02
    start, end, plan = answer_plan([(0.0, C), (4.0, F)], F, 10.02, 8.0, BLUES)
    assert (start, end) == (12.0, 20.0)  # the next bar line, not beat 11 (the bar's fourth)
    assert plan == [ChordAt(12.0, C), ChordAt(16.0, F)]
    # a call begun on a bar's third beat keeps that place
    start, _, plan = answer_plan([(2.0, C), (6.0, G)], G, 11.5, 10.0, BLUES)
    assert start == 14.0 and plan[1] == ChordAt(18.0, G)


def test_a_short_call_repeats_every_whole_bar_it_lasted():
    # C7 two beats, F7 two beats, released a little late: a one-bar progression, twice in 2 bars
    _, _, plan = answer_plan([(0.0, C), (2.0, F)], F, 6.1, 4.1, BLUES)
    assert [(c.beat, c.chord) for c in plan] == [(8.0, C), (10.0, F), (12.0, C), (14.0, F)]
    # a change in the call's last bar, released soon after: three bars, never two (G would fall on C)
    _, _, plan = answer_plan([(0.0, C), (4.0, F), (8.0, G)], G, 10.5, 8.5, BLUES.with_values(phrase_bars=4))
    assert [(c.beat, c.chord) for c in plan] == [(12.0, C), (16.0, F), (20.0, G), (24.0, C)]


def test_a_lone_chord_or_none_plays_the_whole_answer_over_one_chord():
    assert answer_plan([(5.0, C)], F, 9.0, 7.0, BLUES)[2] == [ChordAt(9.0, C)]
    start, end, plan = answer_plan([], G, 9.0, 7.0, BLUES)  # melody keys alone: the next bar line
    assert (start, end, plan) == (12.0, 20.0, [ChordAt(12.0, G)])


def test_an_answer_ends_as_the_preset_says():
    plan = [ChordAt(0.0, C), ChordAt(4.0, F)]
    notes = [MelodyNote(b * 0.5, 0.5, 64 + b % 3, 90) for b in range(16)]  # eighths to the end, ending on E
    root = ended(notes, plan, 8.0, BLUES.with_values(ending="root", ending_beats=1.0))
    assert root[-1].pitch % 12 == F.root and root[-1].end == 8.0 and root[-1].start <= 7.0
    assert ended(notes, plan, 8.0, BLUES.with_values(ending="model")) == notes
    # planned from inside the last bar (its first notes scheduled already): only cut
    assert ended(notes, plan, 8.0, BLUES.with_values(ending="root"), begun=5.0) == notes
    assert ended(notes, plan, 8.0, BLUES.with_values(ending="root"), begun=4.0) == root


def test_the_accompaniment_rests_on_the_bar_line_nearest_two_bars_on():
    assert rest_beat(7.5, 2, BLUES) == 16.0   # 15.5: the next bar line
    assert rest_beat(5.9, 2, BLUES) == 12.0   # 13.9: the bar line before, nearer
    assert rest_beat(2.0, 2, BLUES.with_values(meter=[3, 4])) == 9.0  # 8 beats on: 3/4's bar line at 9
