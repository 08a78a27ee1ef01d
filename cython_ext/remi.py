# cython: language_level=3, boundscheck=False, initializedcheck=False
"""REMI encoder and decoder: note and chord events <-> token ids, as miditok's REMI does it.

This file is Cython in pure-Python mode. ``setup.py`` compiles it to C (the kernel the
live engine calls on every chord); run by the interpreter it is the kernel's pure-Python
twin, and the tests prove the two agree (``riffd.cython_ext.twin("remi")``).

The order of steps follows miditok 3.x ``MusicTokenizer.preprocess_score`` and
``REMI._add_time_events`` (the test oracle): time signatures filtered and moved to bar
starts, times resampled to ``pos_per_beat`` ticks per beat, velocities and durations
snapped to the vocabulary's bins, notes sorted by (onset, pitch, duration, velocity) with
duplicates dropped, then Bar/TimeSig/Position tokens inserted before each new onset.

Units: ticks at the caller's PPQN in, tokenizer ticks out (``tpq = pos_per_beat *
denominator / 4`` ticks per quarter note, so one tick is one Position).
"""
import cython
import numpy as np

# Token kinds, for decoding (Tables.kind).
OTHER, BAR, POSITION, PITCH, VELOCITY, DURATION, TIMESIG, TEMPO, CHORD = range(9)
_KINDS = {"Bar": BAR, "Position": POSITION, "Pitch": PITCH, "Velocity": VELOCITY,
          "Duration": DURATION, "TimeSig": TIMESIG, "Tempo": TEMPO, "Chord": CHORD}
_ROOTS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class UnsupportedMeter(ValueError):
    """A piece whose meters cannot share one tick grid (e.g. 3/4 then 6/8)."""


def closest_index(bins, values):
    """Index of the nearest bin for each value, ties going to the upper bin, exactly as
    miditok's ``np_get_closest`` (after https://stackoverflow.com/a/46184652).
    ``bins`` ascending; returns an int64 array shaped like ``values``."""
    bins = np.asarray(bins, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(bins, values, side="left")
    lower = np.fabs(values - bins[np.maximum(idx - 1, 0)]) < np.fabs(values - bins[np.minimum(idx, len(bins) - 1)])
    idx[(idx == len(bins)) | lower] -= 1
    return idx


@cython.cclass
class Tables:
    """Lookup arrays built once from ``tokenizer.json`` data (riffd.models.tokens.build_vocab)."""
    P: cython.int
    bar_id: cython.int
    pitch_lo: cython.int
    pitch_hi: cython.int
    n_qualities: cython.int
    dur_max: cython.longlong
    pos_ids: cython.int[:]
    pitch_ids: cython.int[:]
    vel_bin: cython.int[:]
    vel_ids: cython.int[:]
    dur_ticks: cython.longlong[:]
    dur_ids: cython.int[:]
    dur_bin: cython.int[:]
    chord_ids: cython.int[:]
    kind: cython.int[:]
    value: cython.longlong[:]
    value2: cython.int[:]
    ts_ids: dict
    ts_of_id: dict
    tempo_mspq: object
    tempo_ids: list
    default_tempo_id: cython.int
    qualities: list

    def __init__(self, data: dict):
        ids = data["vocab"]
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
        self.chord_ids = np.array([ids[f"Chord_{r}:{q}"] for r in _ROOTS for q in self.qualities], dtype=np.intc)
        self.ts_ids = {(n, d): ids[f"TimeSig_{n}/{d}"] for n, d in data["time_signatures"]}
        self.ts_of_id = {i: ts for ts, i in self.ts_ids.items()}
        self.tempo_mspq = np.array(data["tempo_mspq"], dtype=np.float64)
        self.tempo_ids = [ids[t] for t in data["tempo_tokens"]]
        self.default_tempo_id = ids[data["default_tempo_token"]]
        # Per id: kind and value(s), for the decoder.
        kind = np.zeros(len(ids), dtype=np.intc)
        value = np.zeros(len(ids), dtype=np.int64)
        value2 = np.zeros(len(ids), dtype=np.intc)
        for token, i in ids.items():
            name, _, arg = token.partition("_")
            kind[i] = _KINDS.get(name, OTHER)
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
                value[i], value2[i] = _ROOTS.index(root), self.qualities.index(quality)
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


@cython.cfunc
@cython.inline
def _round_half_up(x: cython.double) -> cython.longlong:
    # symusic's Score.resample rounds times this way (times are never negative here).
    return cython.cast(cython.longlong, x + 0.5)


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
        self._emit(self.t.pitch_ids[pitch])
        self._emit(self.t.vel_ids[vel_bin])
        self._emit(self.t.dur_ids[dur_bin])

    def note(self, tick: cython.longlong, pitch: cython.int, velocity: cython.int, duration: cython.longlong):
        """A note: ``duration`` in tokenizer ticks, ``velocity`` 0-127, snapped to the bins.
        Raises ValueError for a pitch outside the vocabulary's range."""
        if pitch < self.t.pitch_lo or pitch > self.t.pitch_hi:
            raise ValueError(f"pitch {pitch} is outside {self.t.pitch_lo}-{self.t.pitch_hi}")
        self.note_bins(tick, pitch, self.t.vel_bin[min(max(velocity, 0), 127)], self.t.duration_bin(duration))

    def chord(self, tick: cython.longlong, root: cython.int, quality: cython.int):
        """A chord: ``root`` 0-11 (C=0), ``quality`` an index into the vocabulary's qualities."""
        self.token_at(tick, self.t.chord_ids[root * self.t.n_qualities + quality])

    def take(self):
        """The ids emitted since the last ``take`` (int32 array)."""
        out = np.array(self._arr[self.taken:self.n], dtype=np.int32)
        self.taken = self.n
        return out

    def ids(self):
        """Every id emitted so far (int32 array)."""
        return np.array(self._arr[:self.n], dtype=np.int32)


def prepare_meter(t: Tables, time_sigs, ppqn):
    """(tpq, [(tick, num, den)]): miditok's time-signature steps, in tokenizer ticks.

    ``time_sigs``: (tick, numerator, denominator) at ``ppqn``. Unsupported meters are
    dropped, a 4/4 is assumed at tick 0 if none is there, each change is moved to the
    next bar start and repeats are dropped. Raises UnsupportedMeter when the meters
    left have different denominators.
    """
    sigs = sorted(((int(a), int(b), int(c)) for a, b, c in time_sigs if (b, c) in t.ts_ids), key=lambda s: s[0])
    if not sigs or sigs[0][0] != 0:
        sigs.insert(0, (0, 4, 4))
    tpq = int(t.P * max(s[2] for s in sigs) / 4)
    if ppqn != tpq:
        ratio = tpq / ppqn
        sigs = [(int(tick * ratio), num, den) for tick, num, den in sigs]  # truncated, as miditok
    sigs = [list(s) for s in sigs]

    def bar(s):
        return int(tpq * 4 / s[2]) * s[1]

    i, ticks_per_bar, previous = 0, bar(sigs[0]), 0
    while i < len(sigs):
        if i >= 1 and sigs[i][1:] == sigs[i - 1][1:]:
            del sigs[i]
            continue
        if i >= 1 and sigs[i][0] < sigs[i - 1][0]:
            sigs[i][0] = sigs[i - 1][0]
        bars, rest = divmod(sigs[i][0] - previous, ticks_per_bar)
        if rest > 0:
            sigs[i][0] = previous + (bars + 1) * ticks_per_bar
        ticks_per_bar, previous = bar(sigs[i]), sigs[i][0]
        if i >= 1 and sigs[i][0] == sigs[i - 1][0]:
            del sigs[i - 1]
            if i >= 2 and sigs[i - 1][1:] == sigs[i - 2][1:]:
                del sigs[i - 1]
                ticks_per_bar, previous = bar(sigs[i - 2]), sigs[i - 2][0]
                i -= 1
            continue
        i += 1
    if sigs[0][0] != 0:
        sigs.insert(0, [0, 4, 4])
    dens = {s[2] for s in sigs}
    if len(dens) > 1 or int(tpq * 4 / dens.pop()) != t.P:
        raise UnsupportedMeter("meters " + ", ".join(f"{n}/{d}" for _, n, d in sigs) + " do not share one beat unit")
    return tpq, [tuple(s) for s in sigs]


def _resampled(events, ppqn, tpq):
    if ppqn == tpq:
        return [(int(e[0]), *e[1:]) for e in events]
    f = tpq / ppqn
    return [(int(e[0] * f + 0.5), *e[1:]) for e in events]


def prepare_tempos(t: Tables, tempos, ppqn, tpq):
    """[(tick, Tempo id)]: ``tempos`` as (tick, microseconds per quarter) at ``ppqn``,
    snapped to the bins, the last kept where several share a tick, a default at 0."""
    out = []
    for tick, mspq in sorted(_resampled(tempos, ppqn, tpq), key=lambda e: e[0]):
        if out and out[-1][0] == tick:
            out.pop()
        out.append((tick, t.tempo_id(mspq)))
    if not out or out[0][0] != 0:
        out.insert(0, (0, t.default_tempo_id))
    return out


def prepare_chords(t: Tables, chords, ppqn, tpq):
    """[(tick, Chord id)]: ``chords`` as (tick, root 0-11, quality index) at ``ppqn``; the
    last of several at one tick wins, and a chord equal to the one before is dropped."""
    out = []
    for tick, root, quality in sorted(_resampled(chords, ppqn, tpq), key=lambda e: e[0]):
        token = t.chord_ids[root * t.n_qualities + quality]
        if out and out[-1][0] == tick:
            out.pop()
        if not out or out[-1][1] != token:
            out.append((tick, token))
    return out


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


@cython.cclass
class Decoder:
    """Incremental REMI decoder: ``feed`` one id at a time, get an event when one completes.

    Events: ("note", tick, duration, pitch, velocity), ("chord", tick, root, quality
    index), ("timesig", tick, num, den), ("tempo", tick, qpm). Ticks are tokenizer ticks,
    ``pos_per_beat`` per beat. Tokens out of grammar (a Velocity with no Pitch before it,
    say) are skipped, so any id sequence decodes to valid notes.
    """
    t: Tables
    bar: cython.longlong
    tick_at_bar: cython.longlong
    tick: cython.longlong
    ticks_per_bar: cython.longlong
    pitch: cython.int
    velocity: cython.int
    num: cython.int
    den: cython.int

    def __init__(self, tables: Tables):
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


def decode(t: Tables, ids):
    """Every event of an id sequence, in order (see ``Decoder``)."""
    decoder = Decoder(t)
    events = []
    for token in ids:
        event = decoder.feed(int(token))
        if event is not None:
            events.append(event)
    return events
