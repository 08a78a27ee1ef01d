"""Chord recognition: a set of sounding pitches named as root, quality and bass.

One recognizer serves live capture, batch rendering and the dataset, so a chord means
the same everywhere. It scores every root and quality template against the pitch-class
set (template matching in the manner of Pardo & Birmingham, "Algorithms for Chordal
Analysis", Computer Music Journal 26(2), 2002), so inversions and spread voicings are
named by their root, not by their lowest note.

Names as lead sheets write them (``parse_chord``) reach beyond the 14 qualities that the
models hear: G7sus4 is heard as sus4 with the seventh added to its tones and voicing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MIDITOK_ROOTS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # miditok's spelling

# quality -> (intervals above the root in semitones, suffix in a chord name, miditok name).
# miditok names are those of miditok.constants.CHORD_MAPS, used by the REMI Chord tokens.
QUALITIES: dict[str, tuple[tuple[int, ...], str, str]] = {
    "maj": ((0, 4, 7), "", "maj"),
    "min": ((0, 3, 7), "m", "min"),
    "dim": ((0, 3, 6), "dim", "dim"),
    "aug": ((0, 4, 8), "aug", "aug"),
    "sus2": ((0, 2, 7), "sus2", "sus2"),
    "sus4": ((0, 5, 7), "sus4", "sus4"),
    "7": ((0, 4, 7, 10), "7", "7dom"),
    "maj7": ((0, 4, 7, 11), "maj7", "7maj"),
    "m7": ((0, 3, 7, 10), "m7", "7min"),
    "m7b5": ((0, 3, 6, 10), "m7b5", "7halfdim"),
    "dim7": ((0, 3, 6, 9), "dim7", "7dim"),
    "aug7": ((0, 4, 8, 10), "aug7", "7aug"),
    "9": ((0, 4, 7, 10, 2), "9", "9maj"),
    "m9": ((0, 3, 7, 10, 2), "m9", "9min"),
}

_SUFFIXES = {
    "": "maj", "M": "maj", "maj": "maj", "m": "min", "min": "min", "-": "min",
    "dim": "dim", "o": "dim", "aug": "aug", "+": "aug", "sus2": "sus2", "sus4": "sus4",
    "sus": "sus4", "7": "7", "dom7": "7", "maj7": "maj7", "M7": "maj7", "m7": "m7",
    "min7": "m7", "-7": "m7", "m7b5": "m7b5", "ø": "m7b5", "ø7": "m7b5", "dim7": "dim7",
    "o7": "dim7", "aug7": "aug7", "+7": "aug7", "7#5": "aug7", "7+5": "aug7", "9": "9", "m9": "m9",
    "min9": "m9", "-9": "m9", "mi": "min", "mi7": "m7", "ma7": "maj7",
    "m7-5": "m7b5", "-7b5": "m7b5", "mi7b5": "m7b5", "min7b5": "m7b5", "-7-5": "m7b5", "mi9": "m9",
}
# Names beyond the models' qualities, as lead sheets write them: suffix -> (the quality
# the models hear, tones added above the root in semitones, 14 = the ninth). The first
# suffix of a pair is the one ``Chord.name`` writes.
EXTENDED: dict[str, tuple[str, tuple[int, ...]]] = {
    "6": ("maj", (9,)), "M6": ("maj", (9,)), "maj6": ("maj", (9,)), "add6": ("maj", (9,)),
    "m6": ("min", (9,)), "min6": ("min", (9,)), "-6": ("min", (9,)),
    "6/9": ("maj", (9, 14)), "69": ("maj", (9, 14)), "6add9": ("maj", (9, 14)),
    "m6/9": ("min", (9, 14)), "m69": ("min", (9, 14)),
    "add9": ("maj", (14,)), "add2": ("maj", (2,)), "add11": ("maj", (17,)), "add4": ("maj", (5,)),
    "madd9": ("min", (14,)), "minadd9": ("min", (14,)), "-add9": ("min", (14,)), "madd2": ("min", (2,)),
    "7sus4": ("sus4", (10,)), "7sus": ("sus4", (10,)), "7sus2": ("sus2", (10,)),
    "9sus4": ("sus4", (10, 14)), "9sus": ("sus4", (10, 14)), "11": ("sus4", (10, 14, 17)),
    "m11": ("m9", (17,)), "min11": ("m9", (17,)), "-11": ("m9", (17,)),
    "13": ("9", (21,)), "m13": ("m9", (21,)), "min13": ("m9", (21,)), "-13": ("m9", (21,)),
    "maj9": ("maj7", (14,)), "M9": ("maj7", (14,)), "maj13": ("maj7", (14, 21)), "M13": ("maj7", (14, 21)),
    "maj7#11": ("maj7", (18,)), "M7#11": ("maj7", (18,)),
    "7b9": ("7", (13,)), "7#9": ("7", (15,)), "7#11": ("7", (18,)), "7b13": ("7", (20,)),
    "7-9": ("7", (13,)), "7+9": ("7", (15,)), "7b9#11": ("7", (13, 18)),
    "mi6": ("min", (9,)), "mi11": ("m9", (17,)), "mi13": ("m9", (21,)), "ma9": ("maj7", (14,)),
    "9#11": ("9", (18,)), "7alt": ("7", (13, 15, 20)),
    # altered dominants of jazz charts: the altered fifth added, as 7alt's are
    "7b5": ("7", (6,)), "7-5": ("7", (6,)), "9b5": ("9", (6,)), "7#5#9": ("aug7", (15,)),
    "7b9b13": ("7", (13, 20)), "7#9b13": ("7", (15, 20)), "13b9": ("7", (13, 21)), "13#11": ("9", (18, 21)),
    "13sus4": ("sus4", (10, 14, 21)), "13sus": ("sus4", (10, 14, 21)), "mmaj9": ("min", (11, 14)),
    "mM9": ("min", (11, 14)),
    "mM7": ("min", (11,)), "mmaj7": ("min", (11,)), "minmaj7": ("min", (11,)), "m/maj7": ("min", (11,)),
    "-maj7": ("min", (11,)),
    "maj7#5": ("aug", (11,)), "+maj7": ("aug", (11,)), "augmaj7": ("aug", (11,)), "+M7": ("aug", (11,)),
    # stacked alterations (below) parse without these; they are the names ``Chord.name`` writes
    "13#9": ("7", (15, 21)), "9#5": ("aug7", (14,)), "7b9#5": ("aug7", (13,)), "m9b5": ("m7b5", (14,)),
    "maj9#11": ("maj7", (14, 18)),
}
_EXTENDED_NAME = {}
for _suffix, _pair in EXTENDED.items():
    _EXTENDED_NAME.setdefault(_pair, _suffix)

# Alterations a name stacks after any suffix above (G13#9, Cmaj9#11, D7#9b5, Am(b6),
# E7(b9,13)): the tone each adds, in semitones above the root. The first spelling of a
# tone is the one ``Chord.name`` writes.
_ALTERATIONS = {"b5": 6, "-5": 6, "b6": 8, "#5": 8, "+5": 8, "b9": 13, "-9": 13, "#9": 15, "+9": 15,
                "#11": 18, "+11": 18, "b13": 20, "-13": 20, "add9": 14, "add11": 17, "add13": 21,
                "add2": 2, "add4": 5, "add6": 9, "9": 14, "11": 17, "13": 21}
_ALTERATION_TEXT = {}
for _text, _tone in _ALTERATIONS.items():
    _ALTERATION_TEXT.setdefault(_tone, _text)
_ALTERATION_RE = re.compile("(?:" + "|".join(map(re.escape, _ALTERATIONS)) + ")+")
_ALTERATION_TOKEN = re.compile("|".join(map(re.escape, _ALTERATIONS)))
# An altered fifth replaces the fifth where a quality has it (C7#5 is aug7, Cm7b5 m7b5);
# a dominant's b5 is added beside it, as the tables' 7b5 and 7alt add it.
_RAISED_FIFTH = {"maj": ("aug", ()), "7": ("aug7", ()), "9": ("aug7", (14,)), "maj7": ("aug", (11,))}
_LOWERED_FIFTH = {"min": ("dim", ()), "m7": ("m7b5", ()), "m9": ("m7b5", (14,))}
_NINTH_CHORD = {"7": "9", "m7": "m9"}  # a seventh chord with its ninth is the ninth chord the models hear


def _listed(suffix: str) -> tuple[str, tuple[int, ...]] | None:
    """(quality, added) of a suffix in the tables (_SUFFIXES, EXTENDED), or None."""
    if suffix in EXTENDED:
        return EXTENDED[suffix]
    return (_SUFFIXES[suffix], ()) if suffix in _SUFFIXES else None


def _stacked(suffix: str) -> tuple[str, tuple[int, ...]] | None:
    """(quality, added) of a suffix of the tables with alterations after it, or None.

    The longest suffix of the tables comes first (7#9 of 7#9b5). An altered ninth (b9,
    #9) replaces the ninth (G13#9 is 7 with the #9 and the 13th, as 13b9 is), #11 the
    11th and b13 the 13th. A trailing sus after a seventh chord moves before its
    alterations (7b9sus = 7sus4 with the b9).
    """
    moved = re.fullmatch(r"(7|9|13)(.+?)sus4?", suffix)
    if moved:
        suffix = f"{moved.group(1)}sus4{moved.group(2)}"
    for cut in range(len(suffix) - 1, 0, -1):
        base, rest = suffix[:cut], suffix[cut:]
        pair = _listed(base)
        if pair and _ALTERATION_RE.fullmatch(rest):
            break
    else:
        return None
    quality, added = pair[0], set(pair[1])
    for text in _ALTERATION_TOKEN.findall(rest):
        tone = _ALTERATIONS[text]
        if tone in (13, 15) and quality in ("9", "m9"):
            quality, added = {"9": "7", "m9": "m7"}[quality], added | {14}
        added -= {14} if tone in (13, 15) else {17} if tone == 18 else {21} if tone == 20 else set()
        fifths = _RAISED_FIFTH if text in ("#5", "+5") else _LOWERED_FIFTH if tone == 6 else {}
        if quality in fifths:
            quality, kept = fifths[quality]
            added |= set(kept)
        else:
            added.add(tone)
    if quality in _NINTH_CHORD and 14 in added:
        quality, added = _NINTH_CHORD[quality], added - {14}
    return quality, tuple(sorted(added))


def _altered_triad(written: str, suffix: str) -> tuple[str, tuple[int, ...]] | None:
    """(quality, added) of a major triad's alterations in parentheses right after the
    root, as ``Chord.name`` writes them: C(b5), A(b9,#11); else None."""
    return _stacked("M" + suffix) if written.lstrip().startswith("(") and _ALTERATION_RE.fullmatch(suffix) else None


def _spelled(suffix: str) -> str:
    """One spelling of a suffix: 7(b9) = 7b9, C° = Co, Maj7 = maj7, and the jazz signs
    Δ and ^ (alone: maj7; before an extension: maj, so Δ9 = maj9; -Δ = minor-major)."""
    for text, same in (("(", ""), (")", ""), (",", ""), (" ", ""), ("°", "o"), ("Maj", "maj"), ("MAJ", "maj")):
        suffix = suffix.replace(text, same)
    for sign in ("Δ", "^"):
        suffix = (suffix[:-1] + "maj7" if suffix.endswith(sign) else suffix).replace(sign, "maj")
    return suffix

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _pitch_class(letter: str, sign: str = "") -> int:
    """The pitch class (0-11) of a note name's ``letter`` (A-G, either case) and ``sign`` ("#", "b" or "")."""
    return (_LETTER_PC[letter.upper()] + {"#": 1, "b": -1, "": 0}[sign]) % 12


# Letters a bass lies above the root, per interval in semitones: b2, b3, b6, b7 and #4 as
# a lead sheet spells them, so E/G# (not E/Ab), Ab/C, C/Bb, C/F#.
_LETTERS_ABOVE = (0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6)


def _bass_name(root: str, bass: int) -> str:
    """The bass pitch class (0-11) spelled by its interval above ``root`` (a note name),
    where that takes one sharp or flat and no E#, B#, Cb or Fb; else as NOTE_NAMES."""
    letters = "CDEFGAB"
    interval = (bass - _pitch_class(root[0], root[1:])) % 12
    letter = letters[(letters.index(root[0]) + _LETTERS_ABOVE[interval]) % 7]
    sign = {0: "", 1: "#", 11: "b"}.get((bass - _LETTER_PC[letter]) % 12)
    name = None if sign is None else letter + sign
    return NOTE_NAMES[bass] if name is None or name in ("E#", "B#", "Cb", "Fb") else name


_NAME_RE = re.compile(r"^\s*([A-Ga-g])([#b]?)(.*?)(?:/([A-Ga-g])([#b]?))?\s*$")


@dataclass(frozen=True, slots=True)
class Chord:
    """A named chord. ``root`` and ``bass`` are pitch classes 0-11 (C=0); ``quality`` a
    key of QUALITIES, the chord as the models hear it; ``added``: tones beyond the
    quality in semitones above the root (the 6 of C6 is 9, the 9 of Cadd9 14), from a
    name in EXTENDED. A recognized chord adds none."""
    root: int
    quality: str
    bass: int
    added: tuple[int, ...] = ()

    @property
    def tones(self) -> frozenset[int]:
        """The chord's pitch classes, 0-11, added tones included."""
        return frozenset((self.root + i) % 12 for i in QUALITIES[self.quality][0] + self.added)

    @property
    def name(self) -> str:
        """A lead-sheet name such as ``Am7``, ``C/E`` or ``G7sus4``."""
        suffix = _EXTENDED_NAME.get((self.quality, self.added)) if self.added else QUALITIES[self.quality][1]
        if suffix is None:  # the tables' name that holds the most added tones, the rest as alterations
            held = [(a, s) for (q, a), s in _EXTENDED_NAME.items() if q == self.quality and set(a) <= set(self.added)]
            within, suffix = max(held, key=lambda h: len(h[0]), default=((), QUALITIES[self.quality][1]))
            altered = [_ALTERATION_TEXT[t] for t in self.added if t not in within]
            # after a bare root a flat or sharp reads as the root's (Ab5 is A-flat's power chord, not A with a b5)
            suffix += f"({','.join(altered)})" if not suffix and altered and altered[0][0] in "b#" else "".join(altered)
        root = "Db" if self.root == 1 and QUALITIES[self.quality][0][1] == 4 else NOTE_NAMES[self.root]
        return root + suffix if self.bass == self.root else f"{root}{suffix}/{_bass_name(root, self.bass)}"

    @property
    def miditok_name(self) -> str:
        """miditok's REMI chord string with root, e.g. ``C:maj`` for a token ``Chord_C:maj``."""
        return f"{MIDITOK_ROOTS[self.root]}:{QUALITIES[self.quality][2]}"

    def transposed(self, semitones: int) -> Chord:
        """The same chord ``semitones`` higher (negative: lower); root and bass mod 12."""
        return Chord((self.root + semitones) % 12, self.quality, (self.bass + semitones) % 12, self.added)

    def voicing(self, low: int = 48) -> list[int]:
        """MIDI pitches of a close voicing: the bass at or above ``low``, then the chord
        tones upwards from the root in the octave above the bass, added tones where
        their interval puts them (a ninth above the octave)."""
        bass = low + (self.bass - low) % 12
        root = bass + (self.root - bass) % 12
        if root == bass:
            root += 12
        return sorted([bass] + [root + i for i in QUALITIES[self.quality][0] + self.added])


# What the recognizer names: every quality, and the added ninths (Cadd9, Cmadd9), which
# a player voices as often as the ninth chords and which the 9 template must not take.
TEMPLATES = [(q, ()) for q in QUALITIES] + [("maj", (14,)), ("min", (14,))]


def _score(pcs: int, bass: int, root: int, quality: str, added: tuple[int, ...] = ()) -> float:
    template = 0
    for i in QUALITIES[quality][0] + added:
        template |= 1 << ((root + i) % 12)
    matched = bin(pcs & template).count("1")
    extra = bin(pcs & ~template).count("1")
    fifth = 1 << ((root + QUALITIES[quality][0][2]) % 12)
    # A plain fifth is often left out (of sevenths, of a major or minor dyad); an altered
    # or suspended chord is defined by all its tones, so nothing of it is optional.
    optional = quality not in ("dim", "aug", "sus2", "sus4", "m7b5", "dim7", "aug7")
    missing_fifth = 0 if (pcs & fifth or not optional) else 1
    missing_other = bin(template & ~pcs).count("1") - missing_fifth
    return (2.0 * matched - 1.5 * missing_other - 0.5 * missing_fifth - 2.0 * extra
            + (0.5 if root == bass else 0.0) - 0.1 * (len(QUALITIES[quality][0]) + len(added)))


@lru_cache(maxsize=65536)
def _recognize(pcs: int, bass: int) -> Chord | None:
    best, best_score = None, float("-inf")
    for root in range(12):
        if not pcs & (1 << root):
            continue  # a chord is named only by a root that sounds
        for quality, added in TEMPLATES:
            score = _score(pcs, bass, root, quality, added)
            if score > best_score + 1e-9:
                best, best_score = Chord(root, quality, bass, added), score
    return best


def recognize(pitches) -> Chord | None:
    """Name the chord of sounding MIDI ``pitches`` (any iterable of 0-127).

    Returns None when fewer than two pitch classes sound (a single note is melody, not a
    chord). The bass is the lowest pitch; the root and quality those of the best-scoring
    of TEMPLATES (an added ninth comes back as ``added`` (14,): Cadd9).
    """
    pitches = list(pitches)
    pcs = 0
    for p in pitches:
        pcs |= 1 << (p % 12)
    if bin(pcs).count("1") < 2:
        return None
    return _recognize(pcs, min(pitches) % 12)


def suffixes() -> list[str]:
    """Every chord suffix that ``parse_chord`` takes (besides none: a major triad), in the
    README's order: the models' qualities with their other spellings, then EXTENDED."""
    return sorted(set(_SUFFIXES) - {""}, key=lambda s: (list(QUALITIES).index(_SUFFIXES[s]), s)) + list(EXTENDED)


def parse_chord(name: str) -> Chord:
    """Parse a lead-sheet chord name: ``Am7``, ``F#m7b5``, ``C/E``, ``Bbmaj7``, and the
    names of EXTENDED (``G7sus4``, ``Cadd9``, ``Bb13``, ``Dm(maj7)``, ``E7(b9)``), with
    ``♭``/``♯`` for b/#, ``°`` for o, ``Δ`` or ``^`` for maj7.

    Raises ValueError naming the text when it is not a chord this module knows, and for
    a power chord (``A5``), which leaves open the third every quality has.
    """
    match = _NAME_RE.match(name.replace("♭", "b").replace("♯", "#"))
    suffix = _spelled(match.group(3)) if match else ""
    if match and suffix == "5":  # a third the name leaves open, which every quality riffd plays has
        root = match.group(1).upper() + match.group(2)
        raise ValueError(f"{name!r} is a power chord, root and fifth: riffd's chords have a third; "
                         f"name it {root} or {root}m (a power chord struck on keys takes the third heard around it)")
    pair = match and (_listed(suffix) or _stacked(suffix) or _altered_triad(match.group(3), suffix))
    if not pair:
        raise ValueError(f"not a chord name: {name!r} (a root A-G, # or b, a suffix such as m, 7, maj7, m7b5, "
                         f"dim, sus4, 6, add9, 7sus4 or 13, alterations such as b9, #11 or b13 after it, "
                         f"then /bass; the README lists every suffix)")
    root = _pitch_class(match.group(1), match.group(2))
    bass = root
    if match.group(4):
        bass = _pitch_class(match.group(4), match.group(5))
    quality, added = pair
    return Chord(root, quality, bass, added)
