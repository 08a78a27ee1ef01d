"""Form (models/form.py): a returning progression brings back its melody, transposed,
with its ending varied, in batch and when the chords arrive one by one as live."""
from __future__ import annotations

import pytest

from riffd.models import load_model
from riffd.models.form import ENDING_BEATS, SPAN_BARS
from riffd.models.protocol import ChordAt, Context
from riffd.music.chords import parse_chord
from riffd.presets import PresetError, load_preset

SECTION = ["C", "C", "F", "G", "Am", "F", "G", "C"]  # one chord a bar: four 2-bar spans


def timeline(names):
    return [ChordAt(4.0 * i, parse_chord(n)) for i, n in enumerate(names)]


def span_notes(notes, k, span=8.0, cut=ENDING_BEATS):
    """(offset, pitch, duration) of the notes in span k before its ending."""
    return [(round(n.start - k * span, 4), n.pitch, round(n.duration, 4)) for n in notes
            if k * span <= n.start < (k + 1) * span - cut]


def play(model_name, chords, repeat, seed=3, until=None, **values):
    model = load_model(model_name)
    model.start(Context(load_preset("folk").with_values(repeat=repeat, **values), seed=seed, chords=chords))
    return model, list(model.generate(until or chords[-1].beat + 4.0))


@pytest.mark.parametrize("name", ["rules", "markov"])
def test_a_returning_section_brings_back_its_melody(name):
    chords = timeline(SECTION * 2)
    model, notes = play(name, chords, repeat=1.0)
    # the return, 8 bars (two phrases) later, is recognised from its first span on; span 3
    # (G C) opens its phrase on a major chord as span 1 (F G) did: its first bar, a tone up;
    # span 5 (F G) could start as span 3 did, but span 1's whole progression matches
    assert {k: v for k, v in model.form.decided.items() if v} == {3: (1, 2), 4: (0, 0), 5: (1, 0), 6: (2, 0),
                                                                   7: (3, 0)}
    for k in (4, 5, 6, 7):
        assert span_notes(notes, k) == span_notes(notes, k - 4) and span_notes(notes, k)
    first_bar = lambda k: [(o, p, d) for o, p, d in span_notes(notes, k) if o < 4.0]  # noqa: E731
    assert first_bar(3) == [(o, p + 2, d) for o, p, d in first_bar(1)] and first_bar(3)
    _, never = play(name, chords, repeat=0.0)
    assert any(span_notes(never, k) != span_notes(never, k - 4) for k in (5, 6, 7))


@pytest.mark.parametrize("name", ["rules", "onnx"])
def test_a_returning_section_brings_back_the_tune_it_goes_on_from(name):
    """`render --continue` (Context notes): the section's return brings back the given
    tune's onsets and pitches (its lengths on 12 steps a beat), not only the model's own
    notes (before, its memory was what it generated: over the return it played something
    new)."""
    chords = timeline(SECTION * 2)
    tune = play("rules", chords, repeat=0.0, seed=11, until=32.0)[1]
    model = load_model(name)
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=3, start_beat=32.0, chords=chords,
                        notes=tune))
    notes = list(model.generate(64.0))
    onsets = lambda notes, k: [(o, p) for o, p, _ in span_notes(notes, k)]  # noqa: E731 (lengths: on 12 a beat)
    for k in (4, 5, 6, 7):
        assert onsets(notes, k) == onsets(tune, k - 4) and onsets(notes, k), k
    # a tune in another meter's bars (before ``heard_since``) is not brought back
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=3, start_beat=32.0, chords=chords,
                        notes=tune, heard_since=32.0))
    notes = list(model.generate(64.0))
    assert model.given == [] and any(onsets(notes, k) != onsets(tune, k - 4) for k in (4, 5, 6, 7))


def test_a_phrase_comes_back_whole_and_varies_only_its_ending():
    """At ``repeat`` 0.5 the chance is drawn once a phrase (two spans): once a phrase's
    first span comes back, its second follows without a new draw (drawn span by span, a
    phrase came back with holes). A span inside a phrase comes back to its last note; the
    one that ends the phrase keeps its last beat for the model's own ending."""
    phrases = set()
    for seed in range(16):
        model, notes = play("rules", timeline(SECTION * 2), repeat=0.5, seed=seed)
        decided = model.form.decided
        for first in (4, 6):  # the return's two phrases
            assert decided.get(first + 1) if decided.get(first) else True
        phrases.add((bool(decided.get(4)), bool(decided.get(6))))
        if decided.get(4):
            assert span_notes(notes, 4, cut=0.0) == span_notes(notes, 0, cut=0.0)  # inside the phrase: whole
    assert len(phrases) >= 3  # each phrase drawn apart


def test_a_return_off_the_phrase_grid_is_recognised_from_its_second_span():
    chords = timeline(SECTION + ["Dm", "Dm"] + SECTION)  # a 2-bar interlude: the return is 10 bars later
    model, notes = play("rules", chords, repeat=1.0)
    decided = model.form.decided
    # span 5 (C C) starts as the span a phrase before it (G C, a fourth down); from span 6
    # on the section itself comes back, found by the span before it
    assert decided[5] == (3, 5) and (decided[6], decided[7], decided[8]) == ((1, 0), (2, 0), (3, 0))
    assert span_notes(notes, 6) == span_notes(notes, 1) and span_notes(notes, 6)


def test_a_transposed_return_is_transposed():
    up = ["D", "D", "G", "A", "Bm", "G", "A", "D"]  # the section a whole tone up
    model, notes = play("rules", timeline(SECTION + up), repeat=1.0)
    assert model.form.decided[4] == (0, 2) and model.form.decided[5] == (1, 2)  # two phrases on: from its first span
    for k in (4, 5):
        recalled, source = span_notes(notes, k), span_notes(notes, k - 4)
        assert recalled and [(o, p - 2, d) for o, p, d in recalled] == source


def test_live_chords_one_by_one_recall_and_stop_where_the_progression_leaves():
    """As the engine drives a model: each chord is only known once struck, which
    re-plans from its beat (rollback); a chord that differs from the section's ends the
    recall at its beat."""
    names = SECTION * 2
    names[13] = "E"  # span 6's second chord (F in the section) changes
    model = load_model("rules")
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=5, chords=[]))
    for bar, chord in enumerate(names):
        beat = 4.0 * bar
        model.rollback(beat)  # a note sounding across the change is cut there, as the engine does
        model.extend([ChordAt(beat, parse_chord(chord))])
        list(model.generate(beat + 4.0))
    played = model.generated
    assert span_notes(played, 5) == span_notes(played, 1) and span_notes(played, 5)
    first_bar = [x for x in span_notes(played, 6) if x[0] < 4.0]
    assert first_bar == [x for x in span_notes(played, 2) if x[0] < 4.0]
    model.rollback(52.0)
    assert model.form.recall(52.0) is None  # E where the section had F: the model plays on its own


def test_the_transformer_takes_a_recall_into_its_token_stream():
    from riffd.models.remi import RemiTokenizer
    model, notes = play("onnx", timeline(SECTION * 2), repeat=1.0)
    assert span_notes(notes, 5) == span_notes(notes, 1)
    events = RemiTokenizer(model.vocab).decode(model.prefix + model.ids)
    tpq = 12 * model.den / 4
    stream = [(round(model.times[0] + e[1] / tpq, 4), e[3]) for e in events if e[0] == "note"]
    assert [(round(n.start, 4), n.pitch) for n in notes] == stream


def test_a_chord_change_is_answered_at_once_even_where_the_recalled_span_rested():
    chords = timeline(SECTION * 2)
    model = load_model("rules")
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=3, chords=chords))
    list(model.generate(40.0))
    model.generated = [n for n in model.generated if abs(n.start - 12.0) > 1e-6]  # span 2 rests at its G
    notes = list(model.generate(64.0))
    assert any(abs(n.start - 44.0) < 1e-6 for n in notes)  # span 6's G is answered all the same
    # after the model's own answer the recall goes on: the rest of the bar is span 2's
    after = [(round(n.start - 44.0, 4), n.pitch) for n in notes if 44.0 < n.start < 47.0]
    source = [(round(n.start - 12.0, 4), n.pitch) for n in model.generated if 12.0 < n.start < 15.0]
    assert after and after == source[len(source) - len(after):]


def test_planning_one_step_at_a_time_moves_a_recall_note_by_note():
    """The engine plans with ``generate(cursor + 1e-6)``: a recall must move on by whole
    notes, as a model does, not by the 1e-6 asked for (the plan then fell behind the
    clock and notes left late)."""
    chords = timeline(SECTION * 2)
    model = load_model("rules")
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=3, chords=chords))
    list(model.generate(40.0))
    calls = 0
    while model.cursor < 56.0 and calls < 500:
        list(model.generate(model.cursor + 1e-6))
        calls += 1
    recalled = [n for n in model.generated if 40.0 <= n.start < 56.0]
    assert model.form.decided[5] and model.cursor >= 56.0 and calls <= len(recalled) + 8


@pytest.mark.parametrize("filler_bars, recalled", [(56, True), (64, False)])
def test_a_return_is_looked_for_within_the_form_memory_only(filler_bars, recalled):
    """A section is looked for at most MEMORY_SPANS spans back (64 bars in 4/4): the
    search costs the same in minute 10 of a live session as in minute 1."""
    from riffd.models.form import MEMORY_SPANS, SPAN_BARS
    filler = ["Dm", "Em"] * (filler_bars // 2)  # spans on a minor chord: never the section's
    model, notes = play("rules", timeline(SECTION + filler + SECTION), repeat=1.0)
    k = (len(SECTION) + filler_bars) // SPAN_BARS  # the return's first span
    assert (k <= MEMORY_SPANS) == recalled
    assert (model.form.decided.get(k) == (0, 0)) == recalled
    assert (span_notes(notes, k) == span_notes(notes, 0)) == recalled


@pytest.mark.parametrize("name", ["rules", "markov", "onnx"])
def test_a_live_session_keeps_its_notes_in_start_order(name):
    """Rollback and recall find notes by bisection, which needs ``generated`` in start
    order through chord-by-chord rollbacks and recalls, as the engine drives a model."""
    model = load_model(name)
    model.start(Context(load_preset("folk").with_values(repeat=1.0), seed=2, chords=[]))
    for bar, chord in enumerate(SECTION * 3):
        for beat in (4.0 * bar, 4.0 * bar + 2.0):  # struck again mid-bar: a rollback there too
            model.rollback(beat)
            model.extend([ChordAt(beat, parse_chord(chord))])
            list(model.generate(beat + 3.0))
    starts = [n.start for n in model.generated]
    assert len(starts) > 50 and starts == sorted(starts)
    assert any(model.form.decided.values())  # recalls happened along the way
    for low, high in ((0.0, 8.0), (30.5, 41.0), (90.0, 200.0)):
        assert model.notes_between(low, high) == [n for n in model.generated if low <= n.start < high]


def test_a_section_comes_back_whole_at_recall_bars_8():
    """With ``recall_bars`` 8 (a reel's or an air's section) a return drawn at a section's
    first span goes on through its four spans without a new draw, and only the section's
    last beat is the model's own (at 4, the end of its first phrase was the model's too)."""
    sections = set()
    for seed in range(16):
        model, notes = play("rules", timeline(SECTION * 2), repeat=0.5, seed=seed, recall_bars=8)
        decided = model.form.decided
        recalled = [bool(decided.get(k)) for k in (4, 5, 6, 7)]
        assert not recalled[0] or all(recalled), (seed, decided)  # from its first span: whole
        sections.add(recalled[0])
        if recalled[0]:
            for k in (4, 5, 6):  # to the last note, the end of the first phrase too
                assert span_notes(notes, k, cut=0.0) == span_notes(notes, k - 4, cut=0.0)
    assert sections == {True, False}  # drawn, not always taken


@pytest.mark.parametrize("bars, why", [(3, "not a whole number of 2-bar spans"), (0, "outside"), (34, "outside")])
def test_recall_bars_is_whole_spans_of_two_bars(bars, why):
    assert load_preset("folk").with_values(recall_bars=8).recall_bars == 8
    with pytest.raises(PresetError, match=f"key 'recall_bars': {bars} is {why}"):
        load_preset("folk").with_values(recall_bars=bars)


def test_the_preset_takes_recall_bars_in_the_form_s_own_spans():
    # presets/schema.py checks against a literal 2 (presets import no model): keep the two in step
    folk = load_preset("folk")
    for bars in range(2, 33):
        if bars % SPAN_BARS:
            with pytest.raises(PresetError, match="recall_bars"):
                folk.with_values(recall_bars=bars)
        else:
            assert folk.with_values(recall_bars=bars).recall_bars == bars
