"""Call-response turns in one room: when a call is over and where its answer begins."""
from riffd.daemon.turns import Turns
from riffd.music.chords import parse_chord
from riffd.presets import load_preset

C, G = parse_chord("C"), parse_chord("G")


def preset(**values):
    return load_preset("folk").with_values(response_wait_beats=2.0, **values)  # 4/4


def test_a_call_ends_after_its_silence_with_no_key_held():
    p, turns = preset(), Turns()
    turns.heard(0.0, p, C)
    assert turns.due(9.0, 1.9, False, p) is None      # not silent long enough
    assert turns.due(9.0, 5.0, True, p) is None       # a key or the pedal is down
    assert turns.due(10.0, 2.0, False, p) == (10.0, 8.0)  # (the earliest start, the call's end)


def test_a_call_of_call_bars_is_answered_on_its_downbeat_let_go_or_not():
    p, turns = preset(call_bars=4), Turns()
    turns.heard(0.0, p, C)
    turns.heard(8.0, p, G)
    assert turns.due(12.0, 3.0, False, p) is None     # a rest inside the call does not end it
    assert turns.due(15.9, 0.0, True, p, lead=0.05) is None
    assert turns.due(15.96, 0.0, True, p, lead=0.05) == (16.0, 16.0)  # planned just before the downbeat
    assert turns.due(18.0, 0.0, True, p) == (18.0, 16.0)  # found late (a clock's jump): the next bar line


def test_a_call_of_keys_alone_begins_at_the_bar_line_nearest_its_first_key():
    p = preset(call_bars=2)
    for key, first in ((1.5, 0.0), (3.0, 4.0)):       # beat 4 of bar 1: a pickup to bar 2
        turns = Turns()
        turns.heard(key, p)
        assert turns.call.first == first and turns.call.notes == 1
        assert turns.due(first + 8.0, 0.0, False, p) == (first + 8.0, first + 8.0)


def test_the_player_ends_a_call_by_its_controller():
    p, turns = preset(), Turns(end_call_cc=67)
    turns.control(67, 127)
    assert not turns.call.ended                        # no call yet: nothing to end
    turns.heard(0.0, p, C)
    turns.control(66, 127)
    turns.control(67, 30)                              # another controller, or the switch let up
    assert turns.due(6.5, 0.0, True, p) is None
    turns.control(67, 127)
    assert turns.due(6.5, 0.0, True, p) == (6.5, 6.5)  # at once, keys held or not
    ended = Turns()
    ended.heard(0.0, preset(call_bars=4), C)
    ended.end()                                        # /riffd/call/end: before its bars are up
    assert ended.due(6.5, 0.0, True, preset(call_bars=4)) == (6.5, 6.5)


def test_keys_before_an_answer_starts_are_the_calls_tail_when_calls_last_call_bars():
    p, turns = preset(call_bars=4), Turns()
    turns.heard(0.0, p, C)
    turns.answering(16.0, 32.0)
    assert not turns.heard(15.98, p) and turns.call.first is None  # no next call begins
    assert not turns.cut(15.98, p) and turns.until == 32.0         # the answer stands
    assert turns.due(20.0, 4.0, False, p) is None                  # it is playing
    assert turns.cut(20.0, p) and turns.until is None              # the player plays over it: cut
    silence = Turns()
    silence.answering(16.0, 32.0)
    assert silence.cut(15.98, preset())                            # the player had not finished


def test_a_new_call_is_heard_once_the_answer_is_over():
    p, turns = preset(), Turns()
    turns.heard(0.0, p, C)
    turns.answering(8.0, 16.0)
    assert turns.due(16.0, 8.0, False, p) is None and turns.until is None  # over: listening, nothing played
    assert turns.heard(17.0, p, G) and turns.call.first == 17.0
