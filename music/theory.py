"""Music-theory helpers every room may use: chord families and scales, metric strength,
register, swing and the velocity rule.

Chord-scale choices follow common jazz-pedagogy pairings (e.g. Levine, "The Jazz Theory
Book", 1995, ch. 2-3): dominant chords take mixolydian, half-diminished locrian,
diminished the whole-half scale, augmented the whole-tone scale.
"""
from __future__ import annotations

from .chords import Chord

# Intervals above the chord root.
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "major_blues": (0, 2, 3, 4, 7, 9),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "whole_half": (0, 2, 3, 5, 6, 8, 9, 11),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}
def chord_family(chord: Chord | None) -> str:
    """maj, dom, min, dim, or none for no chord: the families that share a scale and a
    melodic behaviour (dom: 7, 9, aug7; min: min, m7, m9; dim: dim, dim7, m7b5)."""
    if chord is None:
        return "none"
    q = chord.quality
    if q in ("min", "m7", "m9"):
        return "min"
    if q in ("dim", "dim7", "m7b5"):
        return "dim"
    return "dom" if q in ("7", "9", "aug7") else "maj"


def velocity(base: int, strength_: int, jitter: int = 0) -> int:
    """Note-on velocity (1-127): the preset's ``base`` plus a metric accent by
    ``strength_`` (see ``strength``; 3 downbeat 0, 2 beat -4, 1 half beat -8, 0 other +4)
    plus ``jitter``. One rule for every model, so a neural model's forced Velocity tokens
    and a fallback's notes sound alike."""
    return int(min(127, max(1, base + (4, -8, -4, 0)[strength_] + jitter)))


MF = 80  # mezzo-forte: the velocity MuseScore writes for mf (its p is 49, its f 96)


def follow_level(velocity: int, level: float | None, amount: float) -> int:
    """``velocity`` (1-127) moved by ``amount`` (0-1, a preset's velocity_follow) of the
    player's ``level`` (the mean velocity of the last chord struck) minus ``MF``: a player
    at mf hears the preset's velocity, one at p (about 50) a melody that much softer.
    ``level`` None (no chord heard): unchanged."""
    if level is None or amount <= 0:
        return velocity
    return int(min(127, max(1, round(velocity + amount * (level - MF)))))


def chord_scale(chord: Chord | None, preference: str) -> frozenset[int]:
    """Pitch classes (0-11) of the scale to play over ``chord`` given the preset's scale
    preference (a name in riffd.presets.SCALES); chord tones always belong."""
    if chord is None:
        return frozenset(range(12))
    q = chord.quality
    if q in ("dim", "dim7"):
        name = "whole_half"
    elif q == "m7b5":
        name = "locrian"
    elif q in ("aug", "aug7"):
        name = "whole_tone"
    elif chord_family(chord) == "min":
        name = {"pentatonic": "minor_pentatonic", "blues": "blues", "dorian": "dorian",
                "harmonic_minor": "harmonic_minor"}.get(preference, "dorian" if q != "min" else "minor")
    else:
        dominant = chord_family(chord) == "dom" or q.startswith("sus")
        name = {"pentatonic": "major_pentatonic", "blues": "major_blues",
                "minor": "mixolydian" if dominant else "major"}.get(
            preference, "mixolydian" if dominant else "major")
    pcs = {(chord.root + i) % 12 for i in SCALES[name]}
    return frozenset(pcs | chord.tones)


def felt_beat(meter) -> float:
    """The beat a listener feels in ``meter`` (numerator, denominator), in quarter notes:
    three of the meter's notes in compound meters (a dotted quarter in 6/8, 9/8, 12/8),
    else a quarter (so 2/2 keeps 2 + 1 + 1 for three chords)."""
    num, den = meter
    return 12 / den if den >= 8 and num % 3 == 0 and num > 3 else 1.0


def strength(beat: float, beats_per_bar: float) -> int:
    """Metric strength of a position: 3 downbeat, 2 beat, 1 half beat, 0 otherwise."""
    if abs(beat - round(beat)) < 1e-6:
        return 3 if abs(beat / beats_per_bar - round(beat / beats_per_bar)) < 1e-6 else 2
    return 1 if abs(beat * 2 - round(beat * 2)) < 1e-6 else 0


def pitches_in(pcs, low: int, high: int) -> list[int]:
    """All MIDI pitches in ``low..high`` whose pitch class is in ``pcs``."""
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def swing_offset(beat: float, grid: int, swing: float) -> float:
    """Delay (beats) of a note at ``beat``: every second step of a grid of ``grid`` steps
    per beat moves late by ``swing`` of a step (0.33 gives triplet swing on eighths)."""
    if grid < 2:
        return 0.0
    step = 1.0 / grid
    return swing * step if round(beat / step) % 2 == 1 else 0.0


def fifth_quality(root: int, heard) -> str | None:
    """The quality ("maj" or "min") that a bare fifth (a power chord) on pitch class
    ``root`` takes from the music around it, or None where nothing decides. ``heard``: 12
    weights, one a pitch class (C=0), how much each has sounded lately. The third that
    weighs more; where neither has sounded, the third that most of the major scales (key
    signatures) holding the most of ``heard``'s weight and ``root`` have, "maj" on an even
    split (or where no such scale holds ``root``): A5 G5 F5 G5 is Am G F G, as the riff's
    C and F say, not A G F G as when a fifth kept the quality before. None with nothing
    heard."""
    minor, major = heard[(root + 3) % 12], heard[(root + 4) % 12]
    if abs(minor - major) > 1e-9:
        return "min" if minor > major else "maj"
    scale = SCALES["major"]
    fits = [sum(heard[(tonic + d) % 12] for d in scale) for tonic in range(12)]
    if max(fits) <= 0:
        return None
    keys = [tonic for tonic in range(12) if fits[tonic] > max(fits) - 1e-9 and (root - tonic) % 12 in scale]
    minors = sum((root - tonic + 4) % 12 not in scale for tonic in keys)
    return "min" if 2 * minors > len(keys) else "maj"
