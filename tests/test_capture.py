from riffd.daemon.capture import ChordCapture, snap_to_beat


def strike(capture, pitches, t):
    changes = [capture.note_on(p, t + i * 0.005) for i, p in enumerate(pitches)]
    return [c for c in changes if c]


def test_inversion_named_by_root():
    capture = ChordCapture()
    changes = strike(capture, [52, 55, 60], 0.0)
    assert changes[-1].chord.name == "C/E"


def test_legato_change_names_the_new_strike():
    capture = ChordCapture()
    strike(capture, [48, 52, 55], 0.0)                   # C, still held
    changes = strike(capture, [53, 57, 60], 0.5)         # F pressed before C is released
    assert changes[-1].chord.name == "F"
    assert len({c.strike for c in changes}) == 1          # one strike, refined


def test_sustain_pedal_holds_released_keys():
    capture = ChordCapture()
    capture.control(64, 127)
    strike(capture, [48, 52, 55], 0.0)
    for p in (48, 52, 55):
        capture.note_off(p)
    assert capture.sounding == {48, 52, 55}
    # a single new key under the pedal is named with what the pedal holds: C7
    change = capture.note_on(58, 1.0)
    assert change.chord.name == "C7"
    capture.control(64, 0)
    assert capture.sounding == {58}


def test_release_keeps_the_chord():
    capture = ChordCapture()
    strike(capture, [57, 60, 64], 0.0)
    for p in (57, 60, 64):
        capture.note_off(p)
    assert capture.chord.name == "Am" and not capture.sounding


def test_near_beat_strikes_count_on_the_beat():
    assert snap_to_beat(3.8, 0.25) == 4.0      # early: counts on the next beat
    assert snap_to_beat(4.1, 0.25) == 4.0      # a little late: still that beat
    assert snap_to_beat(3.6, 0.25) == 3.5      # off the beat: the nearest sixteenth
    assert snap_to_beat(3.8, 0.125) == 3.75    # a stricter preset tolerance
