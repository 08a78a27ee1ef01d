"""Chord capture: held keys plus the sustain pedal, named as chords, one strike at a time.

Keys are gathered into a strike first: a strike opens with a key and closes when its
window (``window_s`` after the first key, the preset's ``strike_window_ms``) is over, or,
once it holds ``min_strike`` pitch classes, after no key has come for ``max(settle_s,
2 x the widest gap between its keys)`` (a DAW's block chord arrives at once and closes
after ``settle_s``; a hand's rolled chord waits for its slower keys). Short of
``min_strike`` pitch classes, a strike whose keys keep coming, each within a window of
the one before (a strum's first strings, a slow roll's first keys), stays open past its
window, up to ``ROLL_WINDOWS`` windows: a strum of F after Am is F, never first the
bare fifth of its low strings as Fm. Only then is it named, so one strike is one chord
change and one re-plan, and an Am struck A-E-C is never "A major" on the way.

A strike of at least ``min_strike`` pitch classes names the chord by itself, so a legato
change (new keys down before the old ones are up) or a pedalled change is not blurred by
the previous chord; a smaller strike (a new bass note under held keys) is named with
everything sounding. A strike whose first key comes within a window of the last key of
the strike before (a strum or roll longer than one window) is named with that strike's
keys still sounding: one gesture, one chord, its bass the lowest string; if that changes
nothing, it is no outcome at all (no second strike, no melody key), and if it keeps the
chord's tones and moves only its bass (an up-strum: F/A from its top strings, then F),
the change says ``rebass`` (the engine's answer stands). A name is given only where it
is sure: a bare fifth (a power chord) takes the third that the keys struck lately say
(``heard``; a riff's A5 G5 F5 G5 is Am G F G once its C and F have sounded), else the
previous chord's quality, on its root; a second, a tritone or a cluster keeps the
previous chord. A lone key that changes no chord is
melody, and so is a key or two (its top one the tune's) an octave or more over the bass
the chord was struck with (a right hand's tune over a held chord: C, then D5, stays C; B
flat 3 under the pedal makes it C7). Releasing keys never changes the chord: silence
keeps the last one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from riffd.bridges.events import ALL_NOTES_OFF_CC, PEDAL_CCS, pedal_down
from riffd.music.chords import Chord, recognize
from riffd.music.theory import fifth_quality

ALL_SOUND_OFF_CC = 120  # the player's panic: keys, pedal and chord are forgotten
ALL_NOTES_OFF_CCS = range(ALL_NOTES_OFF_CC, 128)  # omni and mono/poly mode changes imply it
# (MIDI 1.0 Detailed Specification, "Channel Mode Messages")
SETTLE_S = 0.001  # a block chord's keys come in one driver period, read at once
MELODY_OVER = 12  # semitones: a lone key this far over the chord's bass is the right hand's melody
ROLL_WINDOWS = 3  # a strike of fewer than min_strike pitch classes stays open this many windows at most
HEARD_DECAY = 0.85  # per strike, of what the keys struck before weigh in naming a bare fifth (a half-life of 4)
OOM_BEATS = 1.5  # an oom-pah's bass, struck alone, names the chord after it from this far (beats)


@dataclass(frozen=True, slots=True)
class ChordChange:
    """A new chord. ``t``: monotonic seconds of the strike's first key; ``strike``: the
    strike's id; ``pitches``: the MIDI pitches it was named from."""
    t: float
    chord: Chord
    pitches: tuple[int, ...]
    strike: int
    rebass: bool = False  # a strum's later strings changed only the bass of the chord its first named
    since: float | None = None  # an oom-pah's: when its bass was struck alone (ChordCapture.over_bass)


@dataclass(frozen=True, slots=True)
class Restrike:
    """A strike of the chord already sounding: no change, but the player's beat. ``t`` in
    seconds of its first key."""
    t: float


@dataclass(frozen=True, slots=True)
class Agreed:
    """The open strike's keys so far (``min_strike`` pitch classes or more) name the chord
    already sounding: most likely a restrike, so what waited for it may go. The strike
    stays open; its close still says Restrike or ChordChange. ``t``: seconds of the key."""
    t: float


@dataclass(frozen=True, slots=True)
class MelodyKey:
    """A lone key that changed no chord: the player's melody. ``t`` in seconds."""
    t: float
    pitch: int
    velocity: int


def is_cluster(pcs: set[int]) -> bool:
    """Three or more pitch classes packed within a major third (4 semitones, circularly):
    C-D-E, C-C#-D. No chord template names them surely."""
    if len(pcs) < 3:
        return False
    ordered = sorted(pcs)
    gaps = [(ordered[(i + 1) % len(ordered)] - p) % 12 for i, p in enumerate(ordered)]
    return 12 - max(gaps) <= 4


def name_chord(pitches, previous: Chord | None, heard=None) -> Chord | None:
    """The chord of ``pitches`` (MIDI numbers) when the naming is sure; else ``previous``.

    Two pitch classes: a third or a sixth is named by its template (C-E: C, A-C: Am); a
    fifth (or fourth), a power chord, is its root with the third the music around it
    says (``heard``, 12 pitch-class weights: music.theory.fifth_quality), else with
    ``previous``'s quality (major without one); a second or a tritone keeps
    ``previous``. A cluster keeps ``previous``.
    """
    pitches = list(pitches)
    pcs = {p % 12 for p in pitches}
    if len(pcs) < 2 or is_cluster(pcs):
        return previous
    if len(pcs) == 2:
        low, high = sorted(pcs)
        interval = high - low
        if interval in (1, 2, 6, 10, 11):
            return previous
        if interval in (5, 7):
            root = low if interval == 7 else high
            quality = (fifth_quality(root, heard) if heard is not None else None) or (
                previous.quality if previous else "maj")
            bass = min(pitches) % 12
            return Chord(root, quality, bass)
    return recognize(pitches) or previous


class ChordCapture:
    """Tracks keys and pedal of one player. ``note_on`` and ``poll`` return the outcome
    of a strike that closed (a ChordChange, a Restrike or a MelodyKey), an open strike's
    Agreed, or None.

    Times ``t`` and ``now`` are seconds (or any one unit, such as beats, used
    throughout); ``window_s`` and ``settle_s`` are in that unit.
    """

    def __init__(self, window_s: float = 0.03, min_strike: int = 3, settle_s: float = SETTLE_S):
        self.window_s, self.min_strike, self.settle_s = window_s, min_strike, settle_s
        self._down: dict[int, set[int]] = {}  # keys down: pitch -> the channels that hold it
        self.sustained: set[int] = set()   # keys up but held by the pedal
        self.pedal = False
        self.chord: Chord | None = None
        self._strike: list[tuple[float, int, int]] = []  # (t, pitch, velocity) of the open strike
        self._strike_id = 0
        self._agreed = False  # the open strike has been said to agree (Agreed)
        self._gesture: tuple[float, list[int]] = (float("-inf"), [])  # the last strike's last key: (t, its keys)
        self._chord_keys: list[int] = []  # the keys the sounding chord was last struck with
        self._lone: MelodyKey | None = None  # the last key struck alone (an oom-pah's bass, maybe)
        self.level: float | None = None  # the mean velocity of the last strike of two keys or more
        self.heard = [0.0] * 12  # per pitch class, the keys struck lately (HEARD_DECAY): a bare fifth's third

    @property
    def held(self) -> set[int]:
        """Pitches of the keys down, on any channel."""
        return set(self._down)

    @property
    def sounding(self) -> set[int]:
        """Pitches sounding now: keys down plus pedal-held ones."""
        return self.held | self.sustained

    @property
    def open_strike(self) -> bool:
        """Whether keys are being gathered."""
        return bool(self._strike)

    @property
    def strike_start(self) -> float | None:
        """Time of the open strike's first key, or None."""
        return self._strike[0][0] if self._strike else None

    @property
    def longest_s(self) -> float:
        """The longest a strike stays open (a slow roll's): ``ROLL_WINDOWS`` windows."""
        return ROLL_WINDOWS * self.window_s

    def closes_at(self) -> float | None:
        """When the open strike closes if no key comes, or None."""
        if not self._strike:
            return None
        times = [t for t, _, _ in self._strike]
        end = times[0] + self.window_s
        if len({p % 12 for _, p, _ in self._strike}) < self.min_strike:
            # a key or two may be the start of a rolled chord or a strum: wait while keys keep coming
            return min(times[0] + self.longest_s, max(end, times[-1] + self.window_s))
        widest = max((b - a for a, b in zip(times, times[1:])), default=0.0)
        return min(end, times[-1] + max(self.settle_s, 2.0 * widest))

    def note_on(self, pitch: int, t: float, velocity: int = 64, channel: int = 0):
        """A key at ``t`` on MIDI ``channel`` (0-15). Returns the outcome of the previous
        strike if this key is outside its window, else None (the key joins the open
        strike), or Agreed once the open strike's keys name the chord already sounding."""
        outcome = None
        if self._strike and t > self.closes_at():
            outcome = self._close()
        self.sustained.discard(pitch)
        self._down.setdefault(pitch, set()).add(channel)
        self._strike.append((t, pitch, velocity))
        if outcome is None and not self._agreed and self.chord is not None:
            keys = [p for _, p, _ in self._strike]
            if len({p % 12 for p in keys}) >= self.min_strike and name_chord(keys, self.chord) == self.chord:
                self._agreed = True  # said once per strike
                return Agreed(t)
        return outcome

    def poll(self, now: float):
        """Close the open strike if its time is over; returns its outcome or None."""
        if self._strike and now >= self.closes_at():
            return self._close()
        return None

    def close(self):
        """Close the open strike now (its keys are all in: a chord sent whole); returns
        its outcome or None."""
        return self._close() if self._strike else None

    def _close(self):
        strike, self._strike, self._agreed = self._strike, [], False
        self._strike_id += 1
        keys = [p for _, p, _ in strike]
        goes_on = strike[0][0] - self._gesture[0] <= self.window_s  # a strum's later strings: its first's chord
        if goes_on:
            keys += [p for p in self._gesture[1] if p in self.sounding and p not in keys]
        self._gesture = (strike[-1][0], keys)
        pcs = {p % 12 for p in keys}
        self.heard = [w * HEARD_DECAY for w in self.heard]  # a tune's keys say the key too
        for pc in pcs:
            self.heard[pc] += 1.0
        if (not goes_on and self._chord_keys and len(pcs) < self.min_strike
                and min(keys) - min(self._chord_keys) >= MELODY_OVER):
            return MelodyKey(*max(strike, key=lambda k: k[1]))  # a tune over the chord never renames it
        if len(pcs) >= self.min_strike:
            pitches = keys
        else:
            pitches = sorted(self.sounding | set(keys))
        chord = name_chord(pitches, self.chord, self.heard)
        if len(strike) > 1:  # a chord's keys, not a tune's: how loud the player plays
            self.level = sum(v for _, _, v in strike) / len(strike)
        if len(strike) > 1 or chord != self.chord:
            self._chord_keys = pitches
        if chord is not None and chord != self.chord:
            rebass = goes_on and self.chord is not None and chord.tones == self.chord.tones
            self.chord = chord
            return ChordChange(strike[0][0], chord, tuple(sorted(pitches)), self._strike_id, rebass)
        if goes_on:  # the same gesture: neither a strike of the player's beat nor a melody key
            return None
        if len(strike) == 1:
            self._lone = MelodyKey(*strike[0])
            return self._lone
        return Restrike(strike[0][0])

    def over_bass(self, change: ChordChange, within: float) -> ChordChange:
        """``change`` named with the key struck alone up to ``within`` before it (the
        capture's unit), where that key lies under its keys and is the root of them all (an
        oom-pah's bass: G, then B D F is G7, not Bdim; C, then E G is C, not Em), with
        ``since`` its time; else ``change``. A passing bass (B, then C E G) renames nothing."""
        lone, self._lone = self._lone, None
        if lone is None or not 0 <= change.t - lone.t <= within or lone.pitch >= min(change.pitches):
            return change
        under = recognize([lone.pitch, *change.pitches])
        if under is None or under.root != lone.pitch % 12:
            return change
        return replace(change, chord=under, pitches=(lone.pitch, *change.pitches), since=lone.t)

    def note_off(self, pitch: int, channel: int = 0) -> None:
        """A key let go on ``channel``. The pitch sounds on while another channel holds
        it (a DAW's piano and pad layered on one chord); a note-off on a channel that does
        not hold it lets it go on every channel, so that no key is left held."""
        channels = self._down.get(pitch)
        if channels is None:
            return
        if channel in channels:
            channels.discard(channel)
        else:  # a note-off from a channel that never struck it: let it go everywhere
            channels.clear()
        if not channels:
            del self._down[pitch]
            if self.pedal:
                self.sustained.add(pitch)

    def control(self, control: int, value: int, channel: int | None = None) -> None:
        """CC64 >= 64 holds released keys; below 64, or CC121 (Reset All Controllers), lets
        them go. CC123 (All Notes Off, a DAW's stop or a controller's panic) and CC124-127
        release every key of ``channel`` (None: of every channel) as its note-off would:
        the pedal, if down, still holds them. CC120 (All Sound Off) forgets keys, pedal
        and chord (``reset``)."""
        if control == ALL_SOUND_OFF_CC:
            self.reset()
        elif control in ALL_NOTES_OFF_CCS:
            for pitch, channels in list(self._down.items()):
                for held_on in [c for c in channels if channel is None or c == channel]:
                    self.note_off(pitch, held_on)
        elif control in PEDAL_CCS:
            self.pedal = pedal_down(control, value)
            if not self.pedal:
                self.sustained.clear()

    def forget_chord(self) -> None:
        """Forget the last chord (keys and pedal stay): the next strike is a change."""
        self.chord, self._chord_keys = None, []

    def reset(self) -> None:
        """Forget keys, pedal, chord and any open strike (after a panic or a song restart)."""
        self._down.clear()
        self.sustained.clear()
        self.pedal = False
        self.chord, self._chord_keys, self._lone = None, [], None
        self._strike, self._agreed, self._gesture = [], False, (float("-inf"), [])


def snap_to_beat(beat: float, tolerance: float, grid: float = 0.25) -> float:
    """Where a chord struck at position ``beat`` counts.

    Struck up to ``tolerance`` beats before a beat, or up to ``tolerance`` after one, it
    counts on that beat; elsewhere on the nearest ``grid`` step (a sixteenth by default).
    """
    nearest = round(beat)
    if abs(beat - nearest) <= tolerance:
        return float(nearest)
    return round(beat / grid) * grid
