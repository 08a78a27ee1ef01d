"""The markov model: a variable-order Markov model of melody given chord.

After Pachet's Continuator ("The Continuator: Musical Interaction with Style", Journal of
New Music Research 32(3), 2003): every prefix of the last ``max_order`` notes indexes
what followed it in the corpus, and generation uses the longest prefix seen at least
``min_count`` times. A note is (interval from the previous note in semitones, inter-onset
interval in sixteenths); prefixes also hold the onset's place in the beat. The chord
enters as a second expert: how often each pitch class relative to the chord root sounds
over that chord family on strong and weak positions (a product of experts).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


from .density import gap_bias, tilt_now
from .protocol import MelodyModel, MelodyNote
from riffd.music.theory import chord_family, strength, swing_offset
from riffd.music.theory import velocity as note_velocity

DEFAULT_PATH = Path(__file__).parent / "checkpoints" / "markov" / "model.json"
SIXTEENTH = 0.25  # beats


def onset_phase(beat: float) -> int:
    """The sixteenth of the beat an onset at ``beat`` (beats) falls on: 0-3."""
    return int(round((beat % 1.0) / SIXTEENTH)) % 4


class MarkovTable:
    """Counts learned from melodies: ``transitions[prefix][symbol]`` and
    ``chord_fit[family, strong][pc relative to root]``."""

    def __init__(self, max_order: int = 4, min_count: int = 2):
        self.max_order, self.min_count = max_order, min_count
        self.transitions: dict[str, Counter] = defaultdict(Counter)
        self.chord_fit: dict[str, list[float]] = {}
        self.notes_seen = 0

    @staticmethod
    def _key(phase: int, history: list[tuple[int, int]]) -> str:
        return f"{phase}|" + ";".join(f"{i},{d}" for i, d in history)

    def add_melody(self, notes: list[MelodyNote], chord_at) -> None:
        """Learn from one monophonic melody; ``chord_at(beat)`` gives its chords."""
        fit = defaultdict(lambda: np.ones(12))  # add-one smoothing
        for fam_key, counts in self.chord_fit.items():
            fit[fam_key] = np.array(counts)
        symbols: list[tuple[int, int]] = []
        for prev, note, nxt in zip(notes, notes[1:], notes[2:] + [None]):
            interval = note.pitch - prev.pitch
            ioi = (nxt.start - note.start) if nxt else note.duration
            ioi16 = int(round(ioi / SIXTEENTH))
            if abs(interval) > 12 or not 1 <= ioi16 <= 16:
                symbols = []  # a leap or a long gap ends the phrase
                continue
            symbol = (interval, ioi16)
            phase = onset_phase(note.start)
            for k in range(0, min(self.max_order, len(symbols)) + 1):
                self.transitions[self._key(phase, symbols[len(symbols) - k:])][symbol] += 1
            symbols.append(symbol)
            chord = chord_at(note.start)
            if chord is not None:
                strong = strength(note.start, 4.0) >= 2
                fit[f"{chord_family(chord)}|{int(strong)}"][(note.pitch - chord.root) % 12] += 1
            self.notes_seen += 1
        self.chord_fit = {k: [float(x) for x in v] for k, v in fit.items()}

    def distribution(self, phase: int, history: list[tuple[int, int]]) -> Counter:
        """What follows the longest known prefix of ``history`` (at least min_count)."""
        for k in range(min(self.max_order, len(history)), -1, -1):
            counts = self.transitions.get(self._key(phase, history[len(history) - k:]))
            if counts and sum(counts.values()) >= (self.min_count if k else 1):
                return counts
        return Counter({(0, 4): 1})

    def fit(self, family: str, strong: bool) -> np.ndarray:
        """Probabilities over the 12 pitch classes relative to the chord root."""
        counts = np.array(self.chord_fit.get(f"{family}|{int(strong)}", [1.0] * 12))
        return counts / counts.sum()

    def save(self, path: str | Path, meta: dict | None = None) -> None:
        data = {"max_order": self.max_order, "min_count": self.min_count,
                "notes_seen": self.notes_seen, "meta": meta or {},
                "chord_fit": self.chord_fit,
                "transitions": {k: [[i, d, c] for (i, d), c in sorted(v.items())]
                                for k, v in sorted(self.transitions.items())}}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "MarkovTable":
        """Raises FileNotFoundError or ValueError (a file that is not a table)."""
        try:
            data = json.loads(Path(path).read_text())
            table = cls(data["max_order"], data["min_count"])
            table.notes_seen = data["notes_seen"]
            table.chord_fit = data["chord_fit"]
            for key, rows in data["transitions"].items():
                table.transitions[key] = Counter({(i, d): c for i, d, c in rows})
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a riffd markov table ({exc})") from None
        return table


_DEFAULT_TABLE: MarkovTable | None = None


class MarkovModel(MelodyModel):
    name = "markov"

    def __init__(self, table: MarkovTable | None = None):
        global _DEFAULT_TABLE
        if table is None:
            _DEFAULT_TABLE = _DEFAULT_TABLE or MarkovTable.load(DEFAULT_PATH)
            table = _DEFAULT_TABLE
        self.table = table

    def _history(self) -> tuple[list[tuple[int, int]], int | None]:
        m = self.table.max_order + 1  # the lists' tails only: a live session's lists only grow
        notes = (self.player_notes[-m:] + self.generated[-m:])[-m:]
        hist = [(b.pitch - a.pitch, int(round((b.start - a.start) / SIXTEENTH)))
                for a, b in zip(notes, notes[1:])]
        hist = [(i, min(max(d, 1), 16)) for i, d in hist]
        return hist, (notes[-1].pitch if notes else None)

    def _next_notes(self) -> list[MelodyNote]:
        p = self.preset
        pos = self.cursor
        chord = self.chord_at(pos)
        low, high = p.register
        hist, prev = self._history()
        if prev is None:
            prev = (low + high) // 2
        counts = self.table.distribution(onset_phase(pos), hist)
        symbols = list(counts)
        weights = np.array([counts[s] for s in symbols], dtype=float) ** (1.0 / p.temperature)
        pitches = np.array([prev + i for i, _ in symbols])
        strong = strength(pos, p.beats_per_bar) >= 2
        if chord is not None:
            fit = self.table.fit(chord_family(chord), strong)
            weights *= fit[(pitches - chord.root) % 12]
            # a chord change is always answered with one of its tones
            if self.changes_at(pos) or (strong and self.rng.random() < p.chord_tone_bias):
                weights *= np.isin(pitches % 12, list(chord.tones))
        weights *= (pitches >= low) & (pitches <= high)
        if nats := tilt_now(self, self._chord_beats[0] if self._chord_beats else pos):  # density_follow
            weights *= np.exp(gap_bias(np.array([d for _, d in symbols]) * SIXTEENTH, nats))
        if weights.sum() <= 0:  # nothing fits: the nearest chord (or scale) tone in register
            pool = [q for q in range(low, high + 1) if chord is None or q % 12 in chord.tones]
            pitch = min(pool, key=lambda q: abs(q - prev))
            ioi = symbols[int(np.argmax([counts[s] for s in symbols]))][1] * SIXTEENTH
        else:
            choice = int(self.rng.choice(len(symbols), p=weights / weights.sum()))
            pitch, ioi = int(pitches[choice]), symbols[choice][1] * SIXTEENTH
        end = pos + ioi
        change = self.next_change(pos)
        if change is not None and change < end:
            end = change  # a chord change starts a note of its own
        self.cursor = end
        if chord is None:
            return []
        swing = swing_offset(pos, p.grid, p.swing)
        velocity = note_velocity(p.velocity, strength(pos, p.beats_per_bar), int(self.rng.integers(-4, 5)))
        return [MelodyNote(pos + swing, max(SIXTEENTH / 2, (end - pos - swing) * 0.92), pitch, velocity)]


MODEL = MarkovModel
