from riffd.music.chords import QUALITIES, Chord, parse_chord, recognize


def test_every_quality_named_in_root_position_and_inversions():
    for quality, (intervals, _, _) in QUALITIES.items():
        for root in (0, 5, 9):
            pitches = [48 + root + i for i in intervals]
            # symmetric sets (dim7, aug) and sus2/sus4 (Csus2 = Gsus4/C) name their inversions
            # by the bass; only root position is unambiguous for them
            ambiguous = quality in ("dim7", "aug", "sus2", "sus4")
            for inversion in range(1 if ambiguous else len(pitches)):
                voiced = sorted(pitches[inversion:] + [p + 12 for p in pitches[:inversion]])
                chord = recognize(voiced)
                assert (chord.root, chord.quality) == (root, quality), (quality, root, inversion, chord)
                assert chord.bass == voiced[0] % 12


def test_spread_voicing_and_doublings():
    # C major spread over three octaves with a doubled root, as in a chorale
    assert recognize([36, 55, 64, 72]).name == "C"
    # first inversion with E in the bass: named by its root, bass kept
    chord = recognize([40, 60, 67, 72])
    assert (chord.name, chord.bass) == ("C/E", 4)
    # G7 with the fifth left out
    assert recognize([43, 59, 65]).name == "G7"


def test_single_pitch_class_is_no_chord():
    assert recognize([60]) is None
    assert recognize([48, 60, 72]) is None


def test_parse_names_and_voicing():
    assert parse_chord("Am7") == Chord(9, "m7", 9)
    assert parse_chord("F#m7b5").name == "F#m7b5"
    assert parse_chord("C/E") == Chord(0, "maj", 4)
    assert parse_chord("Bbmaj7").miditok_name == "A#:7maj"
    voiced = parse_chord("D/F#").voicing()
    assert voiced[0] % 12 == 6 and recognize(voiced) == parse_chord("D/F#")


def test_parse_rejects_garbage():
    import pytest
    with pytest.raises(ValueError, match="not a chord name"):
        parse_chord("Hm7")
