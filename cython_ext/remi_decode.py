# cython: language_level=3, boundscheck=False
"""REMI decoder: token ids back to note, chord, meter and tempo events (incrementally).
Reads the readonly lookup arrays of a remi.Tables."""
import cython

from .remi import BAR, CHORD, DURATION, PITCH, POSITION, TEMPO, TIMESIG, VELOCITY


@cython.cclass
class Decoder:
    """Incremental REMI decoder: ``feed`` one id at a time, get an event when one completes.

    Events: ("note", tick, duration, pitch, velocity), ("chord", tick, root, quality
    index), ("timesig", tick, num, den), ("tempo", tick, qpm). Ticks are tokenizer ticks,
    ``pos_per_beat`` per beat. Tokens out of grammar (a Velocity with no Pitch before it,
    say) are skipped, so any id sequence decodes to valid notes.
    """
    t: object
    bar: cython.longlong
    tick_at_bar: cython.longlong
    tick: cython.longlong
    ticks_per_bar: cython.longlong
    pitch: cython.int
    velocity: cython.int
    num: cython.int
    den: cython.int

    def __init__(self, tables):
        self.t = tables
        self.bar = -1
        self.tick_at_bar = 0
        self.tick = 0
        self.num, self.den = 4, 4
        self.ticks_per_bar = 4 * tables.P
        self.pitch = -1
        self.velocity = -1

    @cython.ccall
    @cython.wraparound(False)  # every index here is >= 0
    def feed(self, token: cython.int):
        kind: cython.int = self.t.kind[token]
        if kind == PITCH:
            self.pitch, self.velocity = self.t.value[token], -1
            return None
        if kind == VELOCITY and self.pitch >= 0:
            self.velocity = self.t.value[token]
            return None
        if kind == DURATION and self.pitch >= 0 and self.velocity >= 0:
            note = ("note", self.tick, self.t.value[token], self.pitch, self.velocity)
            self.pitch = -1
            return note
        self.pitch = -1
        if kind == BAR:
            if self.bar >= 0:
                self.tick_at_bar += self.ticks_per_bar
            self.bar += 1
            self.tick = self.tick_at_bar
        elif kind == POSITION:
            self.tick = self.tick_at_bar + self.t.value[token]
        elif kind == TIMESIG:
            self.num, self.den = self.t.value[token], self.t.value2[token]
            self.ticks_per_bar = self.num * self.t.P
            return ("timesig", self.tick, self.num, self.den)
        elif kind == TEMPO:
            return ("tempo", self.tick, self.t.value[token] / 100.0)
        elif kind == CHORD:
            return ("chord", self.tick, self.t.value[token], self.t.value2[token])
        return None


def decode(t, ids):
    """Every event of an id sequence, in order (see ``Decoder``)."""
    decoder = Decoder(t)
    events = []
    for token in ids:
        event = decoder.feed(int(token))
        if event is not None:
            events.append(event)
    return events
