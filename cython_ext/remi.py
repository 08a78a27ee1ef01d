# cython: language_level=3, boundscheck=False, initializedcheck=False
"""REMI encoder: note and chord events -> token ids, as miditok's REMI does it.

Cython in pure-Python mode: ``setup.py`` compiles it; run by the interpreter it is its own
pure-Python twin (``riffd.cython_ext.twin("remi")``), and the tests prove the two agree.
One encoder serves both jobs: ``encode`` writes a whole piece for the dataset, and
``Stream``'s token-level calls write the neural model's live stream with rollback, so the
model hears live the stream it was trained on. Steps follow miditok 3.x
``preprocess_score`` and ``REMI._add_time_events`` (the test oracle): meters, tempos and
chords prepared (``remi_prepare``), times resampled to ``pos_per_beat`` ticks per beat,
velocities and durations snapped to bins, notes sorted by (onset, pitch, duration,
velocity) without duplicates, Bar/TimeSig/Position tokens before each new onset. Ticks
at the caller's PPQN in; tokenizer ticks (one per Position) out. Decoding: ``remi_decode``.
"""
import cython
import numpy as np

from .remi_prepare import UnsupportedMeter, closest_index, prepare_chords, prepare_meter, prepare_tempos  # noqa: F401

# Token kinds, for decoding (Tables.kind).
OTHER, BAR, POSITION, PITCH, VELOCITY, DURATION, TIMESIG, TEMPO, CHORD = range(9)
KINDS = {"Bar": BAR, "Position": POSITION, "Pitch": PITCH, "Velocity": VELOCITY,
         "Duration": DURATION, "TimeSig": TIMESIG, "Tempo": TEMPO, "Chord": CHORD}


@cython.cfunc
@cython.inline
def _round_half_up(x: cython.double) -> cython.longlong:
    # symusic's Score.resample rounds times this way (times are never negative here).
    return cython.cast(cython.longlong, x + 0.5)


@cython.cclass
class Tables:
    """Lookup arrays built once from ``tokenizer.json`` data (riffd.models.tokens.build_vocab)."""
    # readonly: remi_prepare, remi_decode and riffd.models read these from Python
    P = cython.declare(cython.int, visibility="readonly")
    bar_id = cython.declare(cython.int, visibility="readonly")
    n_qualities = cython.declare(cython.int, visibility="readonly")
    default_tempo_id = cython.declare(cython.int, visibility="readonly")
    pos_ids = cython.declare(cython.int[:], visibility="readonly")
    pitch_ids = cython.declare(cython.int[:], visibility="readonly")
    vel_ids = cython.declare(cython.int[:], visibility="readonly")
    vel_bin = cython.declare(cython.int[:], visibility="readonly")
    dur_ids = cython.declare(cython.int[:], visibility="readonly")
    dur_ticks = cython.declare(cython.longlong[:], visibility="readonly")
    chord_ids = cython.declare(cython.int[:], visibility="readonly")
    kind = cython.declare(cython.int[:], visibility="readonly")
    value = cython.declare(cython.longlong[:], visibility="readonly")
    value2 = cython.declare(cython.int[:], visibility="readonly")
    ts_ids = cython.declare(dict, visibility="readonly")
    tempo_mspq = cython.declare(object, visibility="readonly")
    tempo_ids = cython.declare(list, visibility="readonly")
    pitch_lo: cython.int
    pitch_hi: cython.int
    dur_max: cython.longlong
    dur_bin: cython.int[:]
    qualities: list
    roots: tuple

    def __init__(self, data: dict, roots: tuple):
        """``data``: tokenizer.json's dict; ``roots``: the 12 root names of its Chord
        tokens, C first (riffd.music.chords.MIDITOK_ROOTS)."""
        ids = data["vocab"]
        self.roots = tuple(roots)
        self.P = data["pos_per_beat"]
        self.bar_id = ids["Bar_None"]
        n_pos = sum(1 for t in ids if t.startswith("Position_"))
        self.pos_ids = np.array([ids[f"Position_{i}"] for i in range(n_pos)], dtype=np.intc)
        self.pitch_lo, self.pitch_hi = data["pitch_range"]
        self.pitch_ids = np.array([ids.get(f"Pitch_{p}", -1) for p in range(128)], dtype=np.intc)
        vels = data["velocities"]
        self.vel_bin = closest_index(vels, np.arange(128)).astype(np.intc)
        self.vel_ids = np.array([ids[f"Velocity_{v}"] for v in vels], dtype=np.intc)
        durs = data["durations"]
        ticks = np.array([(b * r + p) * self.P // r for b, p, r in durs], dtype=np.int64)
        self.dur_ticks = ticks
        self.dur_ids = np.array([ids["Duration_%d.%d.%d" % tuple(d)] for d in durs], dtype=np.intc)
        self.dur_max = int(ticks[-1])
        self.dur_bin = closest_index(ticks, np.arange(self.dur_max + 1)).astype(np.intc)
        self.qualities = list(data["chord_qualities"])
        self.n_qualities = len(self.qualities)
        self.chord_ids = np.array([ids[f"Chord_{r}:{q}"] for r in self.roots for q in self.qualities], dtype=np.intc)
        self.ts_ids = {(n, d): ids[f"TimeSig_{n}/{d}"] for n, d in data["time_signatures"]}
        self.tempo_mspq = np.array(data["tempo_mspq"], dtype=np.float64)
        self.tempo_ids = [ids[t] for t in data["tempo_tokens"]]
        self.default_tempo_id = ids[data["default_tempo_token"]]
        # Per id: kind and value(s), for the decoder.
        kind = np.zeros(len(ids), dtype=np.intc)
        value = np.zeros(len(ids), dtype=np.int64)
        value2 = np.zeros(len(ids), dtype=np.intc)
        for token, i in ids.items():
            name, _, arg = token.partition("_")
            kind[i] = KINDS.get(name, OTHER)
            if name in ("Position", "Pitch", "Velocity"):
                value[i] = int(arg)
            elif name == "Duration":
                b, p, r = map(int, arg.split("."))
                value[i] = (b * r + p) * self.P // r
            elif name == "TimeSig":
                num, den = map(int, arg.split("/"))
                value[i], value2[i] = num, den
            elif name == "Tempo":
                value[i] = round(float(arg) * 100)  # qpm x 100
            elif name == "Chord":
                root, quality = arg.split(":")
                value[i], value2[i] = self.roots.index(root), self.qualities.index(quality)
        self.kind, self.value, self.value2 = kind, value, value2

    @cython.ccall
    def duration_bin(self, ticks: cython.longlong) -> cython.int:
        """Index of the Duration bin nearest ``ticks`` (tokenizer ticks)."""
        if ticks > self.dur_max:
            return len(self.dur_ids) - 1
        return self.dur_bin[max(ticks, 0)]

    def tempo_id(self, mspq) -> int:
        """Tempo token id for a tempo in microseconds per quarter note."""
        return self.tempo_ids[int(closest_index(self.tempo_mspq, [mspq])[0])]

    def chord_id(self, root: int, quality: int) -> int:
        """Chord token id: ``root`` 0-11 (C=0), ``quality`` an index into the qualities."""
        return self.chord_ids[root * self.n_qualities + quality]


@cython.cclass
class Stream:
    """Incremental REMI encoder: feed events in time order, get the new token ids.

    Ticks are tokenizer ticks (``tpq`` per quarter note). The first event must be
    ``time_signature(0, ...)``. Raises ValueError for an event earlier than the bar
    being written.
    """
    t: Tables
    tpq: cython.longlong
    buf: cython.int[:]
    _arr: object
    n: cython.Py_ssize_t
    taken: cython.Py_ssize_t
    current_bar: cython.longlong
    bar_at_ts: cython.longlong
    tick_at_ts: cython.longlong
    tick_at_bar: cython.longlong
    previous_tick: cython.longlong
    ts_id: cython.int
    ticks_per_bar: cython.longlong
    ticks_per_pos: cython.longlong

    def __init__(self, tables: Tables, tpq: cython.longlong, num: cython.int = 4, den: cython.int = 4,
                 capacity: cython.Py_ssize_t = 256):
        self.t = tables
        self.tpq = tpq
        self._arr = np.empty(max(capacity, 16), dtype=np.intc)
        self.buf = self._arr
        self.n = 0
        self.taken = 0
        self.current_bar = -1
        self.bar_at_ts = 0
        self.tick_at_ts = 0
        self.tick_at_bar = 0
        self.previous_tick = -1
        self._set_meter(num, den)

    @cython.cfunc
    def _set_meter(self, num: cython.int, den: cython.int):
        tpb: cython.longlong = self.tpq if den == 4 else cython.cast(cython.longlong, self.tpq * (4.0 / den))
        self.ts_id = self.t.ts_ids[(num, den)]
        self.ticks_per_bar = tpb * num
        self.ticks_per_pos = tpb // self.t.P

    @cython.cfunc
    @cython.wraparound(False)  # every index here is >= 0
    def _emit(self, token: cython.int):
        if self.n == self.buf.shape[0]:
            grown = np.empty(2 * self.n, dtype=np.intc)
            grown[:self.n] = self._arr[:self.n]
            self._arr = grown
            self.buf = grown
        self.buf[self.n] = token
        self.n += 1

    @cython.cfunc
    @cython.wraparound(False)  # every index here is >= 0
    def _advance(self, tick: cython.longlong, is_ts: cython.bint):
        """Bar (+TimeSig) tokens up to ``tick``, then its Position (REMI._add_time_events)."""
        i: cython.longlong
        new_bars: cython.longlong
        if tick == self.previous_tick:
            return
        if tick < self.tick_at_bar:
            raise ValueError(f"event at tick {tick} comes before the current bar (tick {self.tick_at_bar})")
        new_bars = self.bar_at_ts + (tick - self.tick_at_ts) // self.ticks_per_bar - self.current_bar
        for i in range(new_bars):
            self.current_bar += 1
            self.tick_at_bar = self.tick_at_ts + (self.current_bar - self.bar_at_ts) * self.ticks_per_bar
            self._emit(self.t.bar_id)
            if not (is_ts and i + 1 == new_bars):
                self._emit(self.ts_id)
        if not is_ts:
            self._emit(self.t.pos_ids[(tick - self.tick_at_bar) // self.ticks_per_pos])
        self.previous_tick = tick

    @cython.ccall
    def time_signature(self, tick: cython.longlong, num: cython.int, den: cython.int):
        """A meter from ``tick`` on (a bar start). Raises KeyError if not in the vocabulary."""
        self._advance(tick, True)
        self.bar_at_ts += (tick - self.tick_at_ts) // self.ticks_per_bar
        self.tick_at_ts = tick
        self._set_meter(num, den)
        self.previous_tick -= 1  # the next event at this tick still gets its Position
        self._emit(self.ts_id)

    @cython.ccall
    def token_at(self, tick: cython.longlong, token: cython.int):
        """A Tempo or Chord token (by id) at ``tick``."""
        self._advance(tick, False)
        self._emit(token)

    @cython.ccall
    @cython.wraparound(False)  # every index here is >= 0
    def note_bins(self, tick: cython.longlong, pitch: cython.int, vel_bin: cython.int, dur_bin: cython.int):
        """A note whose velocity and duration are already bin indices."""
        self._advance(tick, False)
        self.pitch_velocity(pitch, vel_bin)
        self.duration(dur_bin)

    @cython.ccall
    def position(self, tick: cython.longlong):
        """Bar (+TimeSig) tokens up to ``tick``'s bar, then its Position (none if the
        stream is already at ``tick``): the start of an event, token by token."""
        self._advance(tick, False)

    @cython.ccall
    def bar(self):
        """Close the bar being written: Bar and TimeSig of the next one (an empty bar, or
        the bar a model chose to move on to)."""
        self.current_bar += 1
        self.tick_at_bar = self.tick_at_ts + (self.current_bar - self.bar_at_ts) * self.ticks_per_bar
        self._emit(self.t.bar_id)
        self._emit(self.ts_id)

    @cython.ccall
    @cython.wraparound(False)  # every index here is >= 0
    def pitch_velocity(self, pitch: cython.int, vel_bin: cython.int):
        """The Pitch and Velocity tokens of a note at the current position."""
        self._emit(self.t.pitch_ids[pitch])
        self._emit(self.t.vel_ids[vel_bin])

    @cython.ccall
    @cython.wraparound(False)  # every index here is >= 0
    def duration(self, dur_bin: cython.int):
        """The Duration token that ends a note begun by ``pitch_velocity``."""
        self._emit(self.t.dur_ids[dur_bin])

    def state(self) -> tuple:
        """Everything needed to come back to this point (``restore``)."""
        return (self.n, self.current_bar, self.bar_at_ts, self.tick_at_ts, self.tick_at_bar,
                self.previous_tick, self.ts_id, self.ticks_per_bar, self.ticks_per_pos)

    def restore(self, state: tuple):
        """Go back to a ``state()``: the ids emitted after it are forgotten (a rollback)."""
        (self.n, self.current_bar, self.bar_at_ts, self.tick_at_ts, self.tick_at_bar,
         self.previous_tick, self.ts_id, self.ticks_per_bar, self.ticks_per_pos) = state
        self.taken = min(self.taken, self.n)

    def note(self, tick: cython.longlong, pitch: cython.int, velocity: cython.int, duration: cython.longlong):
        """A note: ``duration`` in tokenizer ticks, ``velocity`` 0-127, snapped to the bins.
        Raises ValueError for a pitch outside the vocabulary's range."""
        if pitch < self.t.pitch_lo or pitch > self.t.pitch_hi:
            raise ValueError(f"pitch {pitch} is outside {self.t.pitch_lo}-{self.t.pitch_hi}")
        self.note_bins(tick, pitch, self.t.vel_bin[min(max(velocity, 0), 127)], self.t.duration_bin(duration))

    def chord(self, tick: cython.longlong, root: cython.int, quality: cython.int):
        """A chord: ``root`` 0-11 (C=0), ``quality`` an index into the vocabulary's qualities."""
        self.token_at(tick, self.t.chord_id(root, quality))

    def take(self):
        """The ids emitted since the last ``take`` (int32 array)."""
        out = np.array(self._arr[self.taken:self.n], dtype=np.int32)
        self.taken = self.n
        return out

    def ids(self):
        """Every id emitted so far (int32 array)."""
        return np.array(self._arr[:self.n], dtype=np.int32)


@cython.wraparound(False)  # every index here is >= 0
def prepare_notes(t: Tables, onsets: cython.longlong[:], durations: cython.longlong[:],
                  pitches: cython.longlong[:], velocities: cython.longlong[:],
                  ppqn: cython.longlong, tpq: cython.longlong):
    """Sorted int64 keys of the notes at tokenizer resolution, duplicates not yet removed.

    A key packs (tick, pitch, duration bin, velocity bin) so that one sort orders the
    notes as miditok does; ``unpack`` gives them back.
    """
    n: cython.Py_ssize_t = onsets.shape[0]
    i: cython.Py_ssize_t
    m: cython.Py_ssize_t = 0
    p: cython.longlong
    on: cython.longlong
    d: cython.longlong
    v: cython.longlong
    f: cython.double = tpq / ppqn
    resample: cython.bint = ppqn != tpq
    keys_arr = np.empty(n, dtype=np.int64)
    keys: cython.longlong[:] = keys_arr
    for i in range(n):
        p = pitches[i]
        if p < t.pitch_lo or p > t.pitch_hi:
            continue
        on = onsets[i]
        d = durations[i]
        if resample:
            on = _round_half_up(on * f)
            d = max(1, _round_half_up(d * f))
        v = min(max(velocities[i], 0), 127)
        keys[m] = ((on * 128 + p) * 128 + t.duration_bin(d)) * 16 + t.vel_bin[v]
        m += 1
    keys_arr = keys_arr[:m]
    keys_arr.sort()
    return keys_arr


def encode(t: Tables, onsets, durations, pitches, velocities, ppqn, time_sigs=(), tempos=(), chords=()):
    """Token ids (int32 array) of one REMI stream.

    ``onsets``, ``durations`` (ticks at ``ppqn``), ``pitches``, ``velocities``: int64
    arrays of the melody notes. ``time_sigs``: (tick, num, den); ``tempos``: (tick,
    microseconds per quarter); ``chords``: (tick, root 0-11, quality index). At one tick
    the order is TimeSig, Tempo, Chord, notes, as miditok sorts them. Raises
    UnsupportedMeter.
    """
    tpq, sigs = prepare_meter(t, time_sigs, ppqn)
    keys_arr = prepare_notes(t, onsets, durations, pitches, velocities, ppqn, tpq)
    tempo_events = prepare_tempos(t, tempos, ppqn, tpq)
    chord_events = prepare_chords(t, chords, ppqn, tpq)
    stream = Stream(t, tpq, sigs[0][1], sigs[0][2], capacity=4 * len(keys_arr) + 64)
    _merge(stream, sigs, tempo_events, chord_events, keys_arr)
    return stream.ids()


@cython.cfunc
@cython.wraparound(False)  # every index here is >= 0
def _merge(stream: Stream, sigs: list, tempo_events: list, chord_events: list, keys_arr):
    keys: cython.longlong[:] = keys_arr
    n: cython.Py_ssize_t = keys.shape[0]
    i: cython.Py_ssize_t = 0
    a: cython.Py_ssize_t = 0
    b: cython.Py_ssize_t = 0
    c: cython.Py_ssize_t = 0
    key: cython.longlong
    tick: cython.longlong
    pitch: cython.int
    last_tick: cython.longlong = -1
    last_pitch: cython.int = -1
    big: cython.longlong = 1 << 62
    t_sig: cython.longlong
    t_tempo: cython.longlong
    t_chord: cython.longlong
    t_note: cython.longlong
    while True:
        t_sig = sigs[a][0] if a < len(sigs) else big
        t_tempo = tempo_events[b][0] if b < len(tempo_events) else big
        t_chord = chord_events[c][0] if c < len(chord_events) else big
        t_note = (keys[i] >> 18) if i < n else big
        if t_sig == big and t_tempo == big and t_chord == big and t_note == big:
            break
        if t_sig <= t_tempo and t_sig <= t_chord and t_sig <= t_note:
            stream.time_signature(t_sig, sigs[a][1], sigs[a][2])
            a += 1
        elif t_tempo <= t_chord and t_tempo <= t_note:
            stream.token_at(t_tempo, tempo_events[b][1])
            b += 1
        elif t_chord <= t_note:
            stream.token_at(t_chord, chord_events[c][1])
            c += 1
        else:
            key = keys[i]
            i += 1
            tick = key >> 18
            pitch = (key >> 11) & 127
            if tick == last_tick and pitch == last_pitch:
                continue  # same onset and pitch: miditok keeps the first
            last_tick, last_pitch = tick, pitch
            stream.note_bins(tick, pitch, key & 15, (key >> 4) & 127)


def unpack(keys_arr):
    """(ticks, pitches, duration bins, velocity bins) of ``prepare_notes`` keys, duplicates
    (same tick and pitch) removed as the encoder removes them."""
    keys = np.asarray(keys_arr, dtype=np.int64)
    ticks, pitches = keys >> 18, (keys >> 11) & 127
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = (ticks[1:] != ticks[:-1]) | (pitches[1:] != pitches[:-1])
    return ticks[keep], pitches[keep], ((keys >> 4) & 127)[keep], (keys & 15)[keep]
