"""Chord recognition: a set of sounding pitches named as root, quality and bass.

One recognizer serves live capture, batch rendering and the dataset, so a chord means
the same everywhere. It scores every root and quality template against the pitch-class
set (template matching in the manner of Pardo & Birmingham, "Algorithms for Chordal
Analysis", Computer Music Journal 26(2), 2002), so inversions and spread voicings are
named by their root, not by their lowest note.
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
    "o7": "dim7", "aug7": "aug7", "+7": "aug7", "9": "9", "m9": "m9", "min9": "m9",
}
_NAME_RE = re.compile(r"^\s*([A-Ga-g])([#b]?)(.*?)(?:/([A-Ga-g])([#b]?))?\s*$")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True, slots=True)
class Chord:
    """A named chord. ``root`` and ``bass`` are pitch classes 0-11 (C=0); ``quality`` a
    key of QUALITIES."""
    root: int
    quality: str
    bass: int

    @property
    def tones(self) -> frozenset[int]:
        """The chord's pitch classes, 0-11."""
        return frozenset((self.root + i) % 12 for i in QUALITIES[self.quality][0])

    @property
    def name(self) -> str:
        """A lead-sheet name such as ``Am7`` or ``C/E``."""
        text = NOTE_NAMES[self.root] + QUALITIES[self.quality][1]
        return text if self.bass == self.root else f"{text}/{NOTE_NAMES[self.bass]}"

    @property
    def miditok_name(self) -> str:
        """miditok's REMI chord string with root, e.g. ``C:maj`` for a token ``Chord_C:maj``."""
        return f"{MIDITOK_ROOTS[self.root]}:{QUALITIES[self.quality][2]}"

    def voicing(self, low: int = 48) -> list[int]:
        """MIDI pitches of a close voicing: the bass at or above ``low``, then the chord
        tones upwards from the root in the octave above the bass."""
        bass = low + (self.bass - low) % 12
        root = bass + (self.root - bass) % 12
        if root == bass:
            root += 12
        return [bass] + [root + i for i in QUALITIES[self.quality][0]]


def _score(pcs: int, bass: int, root: int, quality: str) -> float:
    template = 0
    for i in QUALITIES[quality][0]:
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
            + (0.5 if root == bass else 0.0) - 0.1 * len(QUALITIES[quality][0]))


@lru_cache(maxsize=65536)
def _recognize(pcs: int, bass: int) -> Chord | None:
    best, best_score = None, float("-inf")
    for root in range(12):
        if not pcs & (1 << root):
            continue  # a chord is named only by a root that sounds
        for quality in QUALITIES:
            score = _score(pcs, bass, root, quality)
            if score > best_score + 1e-9:
                best, best_score = Chord(root, quality, bass), score
    return best


def recognize(pitches) -> Chord | None:
    """Name the chord of sounding MIDI ``pitches`` (any iterable of 0-127).

    Returns None when fewer than two pitch classes sound (a single note is melody, not a
    chord). The bass is the lowest pitch; the root is the best-scoring template root.
    """
    pitches = list(pitches)
    pcs = 0
    for p in pitches:
        pcs |= 1 << (p % 12)
    if bin(pcs).count("1") < 2:
        return None
    return _recognize(pcs, min(pitches) % 12)


def parse_chord(name: str) -> Chord:
    """Parse a lead-sheet chord name (``Am7``, ``F#m7b5``, ``C/E``, ``Bbmaj7``).

    Raises ValueError naming the text when it is not a chord this module knows.
    """
    match = _NAME_RE.match(name)
    if not match or match.group(3) not in _SUFFIXES:
        raise ValueError(f"not a chord name: {name!r} (known qualities: "
                         f"{', '.join(sorted(set(_SUFFIXES) - {''}))})")
    root = (_LETTER_PC[match.group(1).upper()] + {"#": 1, "b": -1, "": 0}[match.group(2)]) % 12
    bass = root
    if match.group(4):
        bass = (_LETTER_PC[match.group(4).upper()] + {"#": 1, "b": -1, "": 0}[match.group(5)]) % 12
    return Chord(root, _SUFFIXES[match.group(3)], bass)
