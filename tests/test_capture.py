import pytest

from riffd.daemon.capture import Agreed, ChordCapture, ChordChange, MelodyKey, Restrike, name_chord, snap_to_beat
from riffd.music.chords import parse_chord


def strike(capture, pitches, t, spacing=0.005):
    """Keys ``spacing`` s apart from ``t``; returns every outcome up to the strike's close."""
    outcomes = [capture.note_on(p, t + i * spacing) for i, p in enumerate(pitches)]
    outcomes.append(capture.poll(t + 1.0))
    return [o for o in outcomes if o]


def test_inversion_named_by_root():
    capture = ChordCapture()
    changes = strike(capture, [52, 55, 60], 0.0)
    assert [c.chord.name for c in changes] == ["C/E"]


@pytest.mark.parametrize("keys, name", [([57, 64, 60], "Am"), ([55, 59, 62, 65], "G7"),
                                         ([53, 55, 62, 59], "G7/F")])
def test_one_strike_key_by_key_is_one_change(keys, name):
    """Struck one key every 8 ms: gathered first, then named once (Am never 'A')."""
    capture = ChordCapture(window_s=0.03)
    outcomes = strike(capture, keys, 0.0, spacing=0.008)
    assert [o.chord.name for o in outcomes] == [name]


def test_a_block_chord_closes_after_the_settle_time():
    capture = ChordCapture(window_s=0.03, settle_s=0.002)  # explicit: 2 ms
    for p in (48, 52, 55):
        assert capture.note_on(p, 1.0) is None
    assert capture.poll(1.001) is None            # still gathering
    change = capture.poll(1.0025)                 # 2 ms of quiet: the strike is whole
    assert isinstance(change, ChordChange) and change.chord.name == "C" and change.t == 1.0


def test_legato_change_names_the_new_strike():
    capture = ChordCapture()
    strike(capture, [48, 52, 55], 0.0)                   # C, still held
    changes = strike(capture, [53, 57, 60], 0.5)         # F pressed before C is released
    assert [c.chord.name for c in changes] == ["F"]


def test_a_strum_longer_than_a_window_is_one_chord_on_its_lowest_string():
    """A guitar's strum, 15 ms a string (75 ms for six, over two 30 ms windows): the
    later strings are named with the earlier ones still ringing, down or up: F, not
    the top strings' F/A. A chord struck a window after the last key is named alone."""
    down, up = [41, 48, 53, 57, 60, 65], [65, 60, 57, 53, 48, 41]

    def strum(capture, strings, t):
        for p in list(capture.held):  # a string struck again is damped first
            capture.note_off(p)
        return strike(capture, strings, t, spacing=0.015)

    for strings in (down, up):
        capture = ChordCapture(window_s=0.03)
        strum(capture, [57, 60, 64], 0.0)  # Am
        changes = strum(capture, strings, 0.5)
        # the low strings' bare fifth is not Fm (Am's quality) first: the strike waits for the third
        assert [c.chord.name for c in changes] == ["F" if strings == down else "F/A", "F"][:2 - (strings == down)]
        again = strum(capture, strings, 1.0)
        if strings == down:  # the same strum again: it agrees at its third pitch class, then one restrike,
            # at its first string, then nothing
            assert [type(o) for o in again] == [Agreed, Restrike] and again[1].t == 1.0, again
        else:  # its top strings are F/A for a moment, then F again (a rebass); never a melody key
            assert [(o.chord.name, o.rebass) for o in again] == [("F/A", False), ("F", True)], again
    capture = ChordCapture(window_s=0.03)
    strike(capture, [48, 52, 55], 0.0)  # C, held; F 50 ms after its last key
    assert [c.chord.name for c in strike(capture, [57, 60, 65], 0.06)] == ["F/A"]


def test_a_tune_over_a_held_chord_is_melody_and_never_renames_it():
    """The left hand holds C; the right hand's tune an octave and more above is melody,
    non-chord tones too (D, F, B: not Cadd9, C/F, Cmaj7), in thirds as well. A key within the octave over
    the bass, or under it, still names the chord with everything held."""
    capture = ChordCapture()
    strike(capture, [48, 52, 55], 0.0)
    tune = []
    for i, p in enumerate([74, 72, 71, 77, 76, 60]):
        tune.append(strike(capture, [p], 0.5 + i * 0.25))
        capture.note_off(p)
    assert [[type(o) for o in out] for out in tune] == [[MelodyKey]] * 6
    dyad = strike(capture, [74, 77], 2.0)                                   # D and F in thirds: the tune's F
    assert [(type(o), o.pitch) for o in dyad] == [(MelodyKey, 77)]
    for p in (74, 77):
        capture.note_off(p)
    assert capture.chord.name == "C"
    assert [c.chord.name for c in strike(capture, [58], 2.5)] == ["C7"]      # B flat 3: within the octave
    assert [c.chord.name for c in strike(capture, [47], 3.0)] == ["C7/B"]    # a new bass under it all


def test_sustain_pedal_holds_released_keys():
    capture = ChordCapture()
    capture.control(64, 127)
    strike(capture, [48, 52, 55], 0.0)
    for p in (48, 52, 55):
        capture.note_off(p)
    assert capture.sounding == {48, 52, 55}
    # a single new key under the pedal is named with what the pedal holds: C7
    assert [c.chord.name for c in strike(capture, [58], 1.0)] == ["C7"]
    capture.control(64, 0)
    assert capture.sounding == {58}


def test_all_notes_off_releases_the_keys_as_note_offs_would():
    """A DAW's stop or a controller's panic sends CC123 (or a mode message, CC124-127)
    instead of each key's note-off: the keys are up, and the pedal still holds them."""
    for cc in (123, 124, 127):
        capture = ChordCapture()
        strike(capture, [48, 52, 55], 0.0)
        capture.control(cc, 0)
        assert capture.sounding == set(), cc
        assert [c.chord.name for c in strike(capture, [57, 60, 64], 1.0)] == ["Am"]  # no C held over it
    capture = ChordCapture()
    capture.control(64, 127)
    strike(capture, [48, 52, 55], 0.0)
    capture.control(123, 0)
    assert capture.sounding == {48, 52, 55}  # the pedal holds them, as it would after note-offs
    capture.control(121, 0)  # Reset All Controllers: the pedal is up
    assert capture.sounding == set() and not capture.pedal


def test_all_sound_off_forgets_keys_pedal_and_chord():
    capture = ChordCapture()
    capture.control(64, 127)
    strike(capture, [48, 52, 55], 0.0)
    capture.control(120, 0)
    assert capture.sounding == set() and not capture.pedal
    assert [c.chord.name for c in strike(capture, [48, 52, 55], 1.0)] == ["C"]  # the same chord: a change again


def test_other_controls_leave_keys_and_pedal_alone():
    capture = ChordCapture()
    strike(capture, [48, 52, 55], 0.0)
    for cc in (1, 7, 11, 64, 119, 122):
        capture.control(cc, 0)
    assert capture.sounding == {48, 52, 55}


def test_a_lone_key_that_changes_nothing_is_melody():
    capture = ChordCapture()
    strike(capture, [48, 52, 55], 0.0)
    for p in (48, 52, 55):
        capture.note_off(p)
    outcomes = strike(capture, [72], 1.0)
    assert outcomes == [MelodyKey(1.0, 72, 64)]
    assert capture.chord.name == "C"


def test_release_keeps_the_chord():
    capture = ChordCapture()
    strike(capture, [57, 60, 64], 0.0)
    for p in (57, 60, 64):
        capture.note_off(p)
    assert capture.chord.name == "Am" and not capture.sounding


def test_dyads_and_clusters_are_named_only_when_sure():
    am = parse_chord("Am")
    assert name_chord([50, 57], am).name == "Dm"          # a fifth keeps the quality: D-A after Am
    assert name_chord([57, 62], am).name == "Dm/A"        # a fourth is an inverted fifth
    assert name_chord([50, 57], None).name == "D"         # no previous chord: major
    assert name_chord([60, 64], am).name == "C"           # a major third is sure
    assert name_chord([60, 62], am) is am                 # a second: unsure
    assert name_chord([60, 66], am) is am                 # a tritone: unsure
    assert name_chord([60, 62, 64], am) is am             # a cluster keeps the chord
    assert name_chord([60, 61, 62, 63], am) is am
    assert name_chord([60, 62, 67], am).name != "Am"      # sus2 is no cluster


def played(capture, strikes):
    """The chord names ``strikes`` (key tuples, one a second) give, a change at a time."""
    names = []
    for k, keys in enumerate(strikes):
        outcomes = [capture.note_on(p, float(k)) for p in keys] + [capture.poll(k + 0.5)]
        names += [o.chord.name for o in outcomes if isinstance(o, ChordChange)]
        for p in keys:
            capture.note_off(p)
    return names


def test_a_power_chord_takes_the_third_the_riff_has_played():
    """Bare fifths (power chords) name their third from the keys struck lately: a riff
    A5 G5 F5 G5 is Am G F G once its C and F have sounded; after Am, D5 F5 G5 are Dm F G,
    and after C, G5 A5 F5 are G Am F. Before, a fifth kept the quality before it: A G F
    G for ever, Fm and Gm after Dm, A after G."""
    riff = [(45, 52), (43, 50), (41, 48), (43, 50)]
    assert played(ChordCapture(), riff * 2) == ["A", "G", "F", "G", "Am", "G", "F", "G"]
    assert played(ChordCapture(), [(45, 48, 52), (50, 57), (41, 48), (43, 50)]) == ["Am", "Dm", "F", "G"]
    assert played(ChordCapture(), [(48, 52, 55), (43, 50), (45, 52), (41, 48)]) == ["C", "G", "Am", "F"]


def test_a_slow_roll_is_one_change_once_its_third_pitch_class_comes():
    """A hand's roll, 25 ms a key (C, G, E: past one 30 ms window): after Am it is C
    once, not the bare fifth's Cm first; a bare fifth struck alone is named a window
    after its last key, with the third the keys before say (Am's E: C); a key a window
    after the one before is a strike of its own."""
    capture = ChordCapture(window_s=0.03)
    strike(capture, [57, 60, 64], 0.0)  # Am
    assert [c.chord.name for c in strike(capture, [48, 55, 64], 1.0, spacing=0.025)] == ["C"]
    capture = ChordCapture(window_s=0.03)
    strike(capture, [57, 60, 64], 0.0)
    for p in (57, 60, 64):
        capture.note_off(p)
    assert capture.note_on(48, 1.0) is None and capture.note_on(55, 1.02) is None
    assert capture.poll(1.045) is None  # the fifth may be a roll's first keys
    assert capture.poll(1.05).chord.name == "C"
    capture = ChordCapture(window_s=0.03)
    strike(capture, [57, 60, 64], 0.0)
    capture.note_on(72, 1.0)
    assert isinstance(capture.note_on(74, 1.04), MelodyKey)  # 40 ms apart: two tune notes


def test_near_beat_strikes_count_on_the_beat():
    assert snap_to_beat(3.8, 0.25) == 4.0      # early: counts on the next beat
    assert snap_to_beat(4.1, 0.25) == 4.0      # a little late: still that beat
    assert snap_to_beat(3.6, 0.25) == 3.5      # off the beat: the nearest sixteenth
    assert snap_to_beat(3.8, 0.125) == 3.75    # a stricter preset tolerance


def test_a_rolled_restrike_agrees_at_its_third_pitch_class_and_a_change_never_does():
    capture = ChordCapture(window_s=0.03)
    strike(capture, [48, 52, 55], 0.0)                       # C
    outcomes = [capture.note_on(p, 1.0 + i * 0.006) for i, p in enumerate([48, 52, 55, 60])]
    assert outcomes[:2] == [None, None] and outcomes[2] == Agreed(1.012) and outcomes[3] is None  # said once
    assert isinstance(capture.poll(2.0), Restrike)
    outcomes = [capture.note_on(p, 3.0 + i * 0.006) for i, p in enumerate([48, 52, 55, 58])]  # C7 at the last key
    assert outcomes[2] == Agreed(3.012) and isinstance(capture.poll(4.0), ChordChange)  # the close still decides
    outcomes = [capture.note_on(p, 5.0 + i * 0.006) for i, p in enumerate([45, 48, 52])]  # Am: never agrees
    assert outcomes == [None, None, None] and capture.poll(6.0).chord.name == "Am"


def test_a_key_held_on_two_channels_sounds_until_both_let_it_go():
    """A DAW's piano (channel 1) and pad (channel 2) layered on one chord: the piano's
    short note-offs leave the pad's keys down (before, the first note-off let the pitch
    go). All Notes Off on one channel lets only its keys go; a note-off on a channel that
    holds no such key still lets the key go, so that no key is left held."""
    capture = ChordCapture()
    for channel in (0, 1):
        for p in (48, 52, 55):
            capture.note_on(p, 0.0, 80, channel)
    assert capture.poll(1.0).chord.name == "C"
    for p in (48, 52, 55):
        capture.note_off(p, 0)                    # the piano's stab ends
    assert capture.sounding == {48, 52, 55}       # the pad holds the chord
    capture.control(123, 0, 1)                    # the pad's channel: All Notes Off
    assert capture.sounding == set()
    for channel in (0, 1):
        capture.note_on(60, 2.0, 80, channel)
    capture.control(123, 0, 2)                    # a channel that holds nothing
    assert capture.held == {60}
    capture.note_off(60, 5)                       # a note-off on a channel that never held it
    assert capture.held == set()
    capture.note_on(62, 3.0, 80, 3)
    capture.control(123, 0)                       # no channel given: every key
    assert capture.held == set()
