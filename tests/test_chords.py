import pytest

from riffd.music.chords import QUALITIES, Chord, parse_chord, recognize, suffixes
from riffd.music.theory import fifth_quality


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
    # a power chord leaves the third open: the error says how to name one instead
    with pytest.raises(ValueError, match="'E5' is a power chord.*name it E or Em"):
        parse_chord("E5")
    with pytest.raises(ValueError, match="name it Bb or Bbm"):
        parse_chord("bb5/F")


def test_lead_sheet_names_beyond_the_qualities():
    # the quality the models hear, and every written tone among the chord tones
    cases = {"G7sus4": (7, "sus4", {7, 0, 2, 5}), "Cadd9": (0, "maj", {0, 4, 7, 2}),
             "Bb13": (10, "9", {10, 2, 5, 8, 0, 7}), "Dm(maj7)": (2, "min", {2, 5, 9, 1}),
             "E7(b9)": (4, "7", {4, 8, 11, 2, 5}), "C6": (0, "maj", {0, 4, 7, 9}),
             "F#m11": (6, "m9", {6, 9, 1, 4, 8, 11}), "Ebmaj7#11": (3, "maj7", {3, 7, 10, 2, 9})}
    for name, (root, quality, tones) in cases.items():
        chord = parse_chord(name)
        assert (chord.root, chord.quality, set(chord.tones)) == (root, quality, tones), name
        assert {p % 12 for p in chord.voicing()} == tones, name
    # other spellings of the same chord
    for a, b in [("D-Δ", "DmM7"), ("CΔ9", "Cmaj9"), ("C^7", "Cmaj7"), ("B°7", "Bdim7"), ("B♭m6", "Bbm6"),
                 ("F♯m7♭5", "F#m7b5"), ("AMaj7", "Amaj7"), ("A-7", "Am7"), ("Cm(add9)", "Cmadd9"),
                 ("F#m7-5", "F#m7b5"), ("A-7b5", "Am7b5"), ("G7-9", "G7b9"), ("Emi6", "Em6"), ("Fma9", "Fmaj9")]:
        assert parse_chord(a) == parse_chord(b), (a, b)
    assert parse_chord("G7sus4") != parse_chord("Gsus4") and parse_chord("C6") != parse_chord("C")


def test_a_bass_is_spelled_as_its_interval_above_the_root():
    """E over G# is E/G#, not E/Ab; a major chord on pitch class 1 is Db (Db/F, not C#/F);
    a spelling past one sharp or flat, or on E#, B#, Cb, Fb, falls back to the plain name."""
    spelled = {(4, 8): "E/G#", (8, 0): "Ab/C", (0, 10): "C/Bb", (0, 6): "C/F#", (1, 5): "Db/F",
               (11, 3): "B/D#", (9, 1): "A/C#", (6, 10): "F#/A#", (8, 11): "Ab/B", (0, 1): "C/Db"}
    for (root, bass), name in spelled.items():
        assert Chord(root, "maj", bass).name == name
    assert recognize([52, 56, 59, 64]).name == "E" and recognize([56, 64, 71]).name == "E/G#"
    assert Chord(1, "min", 4).name == "C#m/E" and Chord(1, "7", 1).name == "Db7"


def test_every_suffix_parses_and_its_name_parses_back():
    for suffix in suffixes():
        for text in (f"C{suffix}", f"F#{suffix}", f"Bb{suffix}/D"):
            chord = parse_chord(text)
            assert parse_chord(chord.name) == chord, (text, chord.name)
            voiced = chord.voicing()
            assert voiced == sorted(voiced) and voiced[0] % 12 == chord.bass


def test_a_major_triads_alterations_are_named_in_parentheses_and_parse_back():
    """AM-5 (A major with a flat fifth) was named "Ab5", which reads as A-flat's power
    chord (refused), and A major with a b9 "Ab9", A-flat's ninth chord: the alteration's
    flat became the root's (found by fuzzing with random seeds)."""
    for text, name, added in [("AM-5", "A(b5)", (6,)), ("CMb9", "C(b9)", (13,)),
                              ("BbM#11b9", "Bb(b9,#11)", (13, 18)), ("F#M#11", "F#(#11)", (18,))]:
        chord = parse_chord(text)
        assert (chord.quality, chord.added, chord.name) == ("maj", added, name), text
        assert parse_chord(name) == chord and parse_chord(f"{name}/E").bass == 4
    assert parse_chord("C(#5)") == parse_chord("Caug") and parse_chord("Cm(b5)") == parse_chord("Cdim")
    with pytest.raises(ValueError, match="power chord"):
        parse_chord("Ab5")


def test_a_chord_transposed_keeps_its_quality_added_tones_and_inversion():
    assert parse_chord("C/E").transposed(7) == parse_chord("G/B")
    assert parse_chord("Bb13").transposed(3) == parse_chord("Db13")
    assert parse_chord("A(b5)").transposed(-9).name == "C(b5)"


def test_an_added_ninth_is_not_a_ninth_chord():
    assert recognize([48, 62, 64, 67]) == parse_chord("Cadd9")     # C D E G: no seventh
    assert recognize([48, 62, 63, 67]).name == "Cmadd9"            # C D Eb G
    assert recognize([48, 65, 67, 69]).name == "Fadd9/C"           # F/C with a G
    assert recognize([48, 60, 64, 67]).name == "C"
    assert recognize([48, 62, 64, 67, 70]).name == "C9"    # with Bb it is C9
    assert recognize([48, 62, 63, 67, 70]).name == "Cm9"


def test_altered_dominants_of_jazz_charts_are_heard_as_their_seventh_chords_with_the_alterations():
    """D7b5, G13b9, C7#5#9 ... (refused before: "not a chord name"): heard as the quality
    they contain, the altered tones among their chord tones."""
    heard = {"D7b5": ("7", {8}), "D7-5": ("7", {8}), "G9b5": ("9", {1}), "C7#5#9": ("aug7", {3, 8}),
             "E7b9b13": ("7", {5, 0}), "A7#9b13": ("7", {0, 5}), "G13b9": ("7", {8, 4}), "F13#11": ("9", {11, 2}),
             "Bb13sus": ("sus4", {3, 7}), "Cmmaj9": ("min", {11, 2})}
    for name, (quality, altered) in heard.items():
        chord = parse_chord(name)
        assert chord.quality == quality and altered <= chord.tones, (name, chord.quality, sorted(chord.tones))


def test_alterations_stack_after_any_suffix():
    """G13#9, Cmaj9#11, D7#9b5 ... (refused before: "not a chord name"): the written tones
    are the chord tones, an altered ninth or fifth replaces the plain one, other spellings
    of the same chord are equal, and each name riffd writes parses back."""
    tones = {"G13#9": ("7", {7, 11, 2, 5, 10, 4}), "Cmaj9#11": ("maj7", {0, 4, 7, 11, 2, 6}),
             "D7#9b5": ("7", {2, 6, 9, 0, 5, 8}), "Am(b6)": ("min", {9, 0, 4, 5}),
             "G7b9sus": ("sus4", {7, 0, 2, 5, 8}), "C9#5": ("aug7", {0, 4, 8, 10, 2}),
             "Cm9b5": ("m7b5", {0, 3, 6, 10, 2}), "E7(b9,13)": ("7", {4, 8, 11, 2, 5, 1}),
             "Bb7#9#11": ("7", {10, 2, 5, 8, 1, 4}), "F#m7b5b9": ("m7b5", {6, 9, 0, 4, 7})}
    for name, (quality, written) in tones.items():
        chord = parse_chord(name)
        assert (chord.quality, set(chord.tones)) == (quality, written), (name, chord)
        assert parse_chord(chord.name) == chord and {p % 12 for p in chord.voicing()} == written, chord.name
    for a, b in [("G7#9add13", "G13#9"), ("C7(#9,#5)", "C7#5#9"), ("C7(9)", "C9"), ("Cm7(9)", "Cm9"),
                 ("Cmaj7(9)", "Cmaj9"), ("Dm-5", "Ddim"), ("G7b9sus4", "G7b9sus"), ("C9b9", "C7b9")]:
        assert parse_chord(a) == parse_chord(b), (a, b)
    assert [parse_chord(n).name for n in ("G13#9", "F7b9#5", "Am(b6)", "Cm9b5")] == ["G13#9", "F7b9#5", "Amb6", "Cm9b5"]
    import pytest
    for garbage in ("C7b", "C7#", "Cmaj7x", "C7b9q", "Cb9b"):
        with pytest.raises(ValueError, match="not a chord name"):
            parse_chord(garbage)


def test_the_readme_lists_every_suffix():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = readme.split("<!-- suffixes -->", 1)[1].split("<!-- /suffixes -->", 1)[0]
    assert listed == ", ".join(suffixes())


def weights(*pcs):
    heard = [0.0] * 12
    for pc in pcs:
        heard[pc % 12] += 1.0
    return heard


def test_a_bare_fifth_takes_its_third_from_what_was_heard():
    assert fifth_quality(9, weights(9, 4, 0)) == "min"       # A5 with a C heard: Am
    assert fifth_quality(9, weights(9, 4, 1)) == "maj"       # ... a C#: A
    # no third heard: the key signatures that hold the most say, G natural in C and A minor
    assert fifth_quality(9, weights(9, 4, 7, 2, 5, 0)) == "min"
    assert fifth_quality(7, weights(9, 4, 7, 2, 5, 0)) == "maj"
    assert fifth_quality(2, weights(9, 0, 4, 2)) == "min"    # D5 among A C E: C, F and G major, two say F
    assert fifth_quality(9, [0.0] * 12) is None              # nothing heard: the caller's default
