"""``/riffd/generate``'s phrases, rendered in a worker process of their own.

A phrase of 16 bars is 100-250 ms of model work. On a thread of the serve process it
held the GIL against the live engine (and the engine's 1 ms polls slowed it by a sixth);
in a process it shares nothing with the live loop but a core. The worker is spawned
when OSC starts and loads the preset's model at once, so the first phrase does not pay
for start-up; it keeps one model per name, ends when told or when its parent is gone,
and is started again after a crash. A thread of serve waits for its results and sends
them: ``/riffd/phrase``, the bundled ``/riffd/phrase/note`` messages, ``/riffd/done``.
"""
from __future__ import annotations

import math
import os
import pickle
import queue
import re
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Callable

from riffd.bridges.osc import OscBridge
from riffd.models.ending import end_as
from riffd.models.protocol import ChordAt, Context, MelodyModel
from riffd.music.chords import parse_chord
from riffd.presets import Preset

MAX_PHRASE_CHORDS = 256
NO_CHORD = re.compile(r"^N\.?C\.?$", re.IGNORECASE)  # a lead sheet's "no chord": the band stops
RESULT_WAIT_S = 0.5  # how often the sending thread checks that the worker still lives


@dataclass
class PhraseJob:
    """One ``/riffd/generate``: ``chords`` as (beat, Chord) from beat 0, ``bars`` long
    after the ``lead`` bars of ``primer`` (MelodyNotes from beat 0, the melody it goes on from)."""
    id: int
    preset: Preset
    model: str
    chords: list
    bars: int
    seed: int | None
    to: tuple | None
    primer: list = field(default_factory=list)
    lead: int = 0


def progression(names: list[str], bars: int, beats_per_bar: float,
                beat: float = 1.0) -> list[tuple[float, object]]:
    """(beat, Chord or None) for chord ``names``, repeated to fill ``bars``; ``N.C.`` (or
    ``NC``) is None: no chord sounds there, as a lead sheet's break.

    Names alone take one bar each (more names than bars share the phrase evenly; a name
    with spaces is several). Names with bar lines, as a lead sheet writes them
    (``"Am F | C G"``, or ``|`` as a name of its own), take their bars: the chords of a
    bar share it (two in 4/4 take two beats each; three take 2 + 1 + 1, the first the
    longest; counted in ``beat``s, quarter notes long: two in 6/8 with ``felt_beat``'s
    1.5 take a dotted quarter each), and ``%`` repeats the bar before. Raises ValueError
    for an unknown name, an empty bar, names that are only blanks, no chord but N.C., or
    more than ``MAX_PHRASE_CHORDS`` names.
    """
    if any("|" in n for n in names):
        return _some_chord(_lead_sheet(" ".join(names), bars, beats_per_bar, beat))
    names = [word for n in names for word in n.split()]  # "Am F C G" is four names
    if not names:
        raise ValueError("no chord names, only blanks: give names such as Am F C G")
    if len(names) > MAX_PHRASE_CHORDS:
        raise ValueError(f"more than {MAX_PHRASE_CHORDS} chord names")
    chords = [_chord(n) for n in names]
    span = beats_per_bar if len(chords) <= bars else bars * beats_per_bar / len(chords)
    total = bars * beats_per_bar
    return _some_chord([(k * span, chords[k % len(chords)]) for k in range(int(math.ceil(total / span - 1e-9)))])


def model_chords(timeline: list[tuple[float, object]]) -> list[ChordAt]:
    """``progression``'s (beat, Chord or None) as the model hears them: over N.C. the
    melody plays on over the chord before, as over a lead sheet's break."""
    return [ChordAt(b, c) for b, c in timeline if c is not None]


def _chord(name: str):
    return None if NO_CHORD.match(name) else parse_chord(name)


def _some_chord(timeline: list[tuple[float, object]]) -> list[tuple[float, object]]:
    if all(chord is None for _, chord in timeline):
        raise ValueError("no chord to play over: N.C. alone")
    return timeline


def _lead_sheet(text: str, bars: int, beats_per_bar: float, beat: float) -> list[tuple[float, object]]:
    """``progression`` for names with bar lines; bar lines at either end are optional, and
    a double bar or a repeat sign (``||``, ``|:``, ``:|``) is a bar line too."""
    cells = [cell.split() for cell in re.sub(r":?\|+:?", "|", text).split("|")]
    while cells and not cells[0]:
        cells.pop(0)
    while cells and not cells[-1]:
        cells.pop()
    if not cells or sum(len(c) for c in cells) > MAX_PHRASE_CHORDS:
        raise ValueError(f"give 1 to {MAX_PHRASE_CHORDS} chord names between the bar lines")
    parsed: list[list] = []
    for k, cell in enumerate(cells):
        if not cell:
            raise ValueError(f"bar {k + 1} has no chord (% repeats the bar before)")
        if cell == ["%"]:
            if not parsed:
                raise ValueError("% repeats the bar before, and the first bar has none")
            parsed.append(parsed[-1])
        else:
            parsed.append([_chord(n) for n in cell])
    out, units = [], beats_per_bar / beat  # the bar in felt beats
    for bar in range(bars):
        chords, at = parsed[bar % len(parsed)], bar * beats_per_bar
        whole = int(units) // len(chords) if units == int(units) else 0
        spans = ([units - whole * (len(chords) - 1)] + [whole] * (len(chords) - 1) if whole >= 1
                 else [units / len(chords)] * len(chords))
        for chord, span in zip(chords, spans):
            out.append((at, chord))
            at += span * beat
    return out


def played(chords: list[tuple[float, object]], tempo: float, bars: int, beats_per_bar: float):
    """(beat, Chord) from chords sent live at times (s): spaced by ``tempo``, snapped to
    beats, starting at beat 0, repeated to fill ``bars`` bars."""
    t0 = chords[0][0]
    timeline = []
    for t, chord in chords:
        beat = round((t - t0) * tempo / 60.0)
        if timeline and timeline[-1][0] >= beat:
            timeline[-1] = (timeline[-1][0], chord)
        else:
            timeline.append((float(beat), chord))
    total = bars * beats_per_bar
    span = max(beats_per_bar, math.ceil((timeline[-1][0] + 1) / beats_per_bar) * beats_per_bar)
    out, offset = [], 0.0
    while offset < total:
        out += [(offset + b, c) for b, c in timeline if offset + b < total]
        offset += span
    return out


def render_phrase(model: MelodyModel, job: PhraseJob) -> list[tuple[int, int, float, float]]:
    """The notes of ``job`` as (pitch, velocity, start beat, duration beats; beats from the
    phrase's first bar line), one voice, ended on its last chord as the preset's ``ending``
    says (models/ending.py), from a fresh start of ``model`` after the primer's bars, with
    the primer as the melody it goes on from (heard by the transformer, and brought back
    by the form as a file's melody under ``render --continue``)."""
    preset = job.preset
    start = job.lead * preset.beats_per_bar
    end, chords = start + job.bars * preset.beats_per_bar, model_chords(job.chords)
    model.start(Context(preset, seed=job.seed, start_beat=start, chords=chords, notes=list(job.primer)))
    notes = end_as(model.generate(end), chords, end, preset)
    return [(n.pitch, n.velocity, round(n.start - start, 4), round(n.duration, 4)) for n in notes]


def phrase_process(load: Callable[[str], MelodyModel], requests, results, parent: int) -> None:
    """The worker process's loop: a model name (load it now) or a PhraseJob in, (job id,
    notes or an error line) out; None, or a parent gone, ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: serve ends us
    models: dict[str, MelodyModel] = {}
    while True:
        try:
            job = requests.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if job is None:
            return
        job = pickle.loads(job) if isinstance(job, bytes) else job
        name = job if isinstance(job, str) else job.model
        try:
            model = models.get(name) or models.setdefault(name, load(name))
            if not isinstance(job, str):
                results.put((job.id, render_phrase(model, job)))
        except Exception as exc:  # a bad model name, a model fault: answered, the worker goes on
            if not isinstance(job, str):
                results.put((job.id, f"{type(exc).__name__}: {exc}".splitlines()[0]))


class PhraseError(RuntimeError):
    """A phrase the worker could not render; the message is the line for /riffd/error."""


class PhraseWorker:
    """Renders PhraseJobs put on ``jobs`` in a worker process and sends them through
    ``osc``. ``load(name)`` (a module-level function: it crosses to the worker by
    pickling) returns a MelodyModel; ``warm`` is a model name to load at once."""

    def __init__(self, osc: OscBridge, load: Callable[[str], MelodyModel], warm: str | None = None):
        self.osc, self.load = osc, load
        self.jobs: queue.Queue = queue.Queue()
        self._ctx = get_context("spawn")
        self._process = None
        self._start(warm)
        self._thread = threading.Thread(target=self._run, name="riffd-phrases", daemon=True)
        self._thread.start()

    def _start(self, warm: str | None = None) -> None:
        self._requests, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._process = self._ctx.Process(target=phrase_process, name="riffd-phrases", daemon=True,
                                          args=(self.load, self._requests, self._results, os.getpid()))
        self._process.start()
        if warm:
            self._requests.put(warm)

    @property
    def pid(self) -> int | None:
        """The worker process's id (None before it starts)."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.render(job)
            except Exception as exc:  # a bad model or preset, a dead worker: answer, keep serving
                reason = str(exc) if isinstance(exc, PhraseError) else f"{type(exc).__name__}: {exc}"
                self.osc.send("/riffd/error", ["/riffd/generate", reason], job.to)

    def render(self, job: PhraseJob) -> list:
        """Have the worker generate ``job``, then send it. Raises PhraseError with the
        worker's error line, or when the worker dies on it (it is started again for the
        next job)."""
        request = pickle.dumps(job)  # here, so that what cannot cross raises here
        if not self._process.is_alive():
            self._start()
        self._requests.put(request)
        while True:
            try:
                job_id, notes = self._results.get(timeout=RESULT_WAIT_S)
            except queue.Empty:
                if not self._process.is_alive():
                    self._start()
                    raise PhraseError("the phrase worker stopped; it is started again") from None
                continue
            if job_id == job.id:
                break
        if isinstance(notes, str):
            raise PhraseError(notes)
        messages = [("/riffd/phrase", [job.id, len(notes)])]
        messages += [("/riffd/phrase/note", [job.id, *note]) for note in notes]
        self.osc.send_many(messages, job.to)
        self.osc.send("/riffd/done", [job.id], job.to)
        return notes

    def close(self) -> None:
        """Stop the sending thread and the worker process (killed if it does not end)."""
        self.jobs.put(None)
        self._thread.join(timeout=5.0)
        if self._process is not None and self._process.is_alive():
            self._requests.put(None)
            self._process.join(timeout=2.0)
            if self._process.is_alive():
                self._process.kill()
        # the queues' semaphores are unlinked when they are collected: serve ends in os._exit,
        # and semaphores left for the resource tracker are warned about on stderr
        if not self._thread.is_alive():  # else a render still holds them
            for q in (self._requests, self._results):
                q.close()
            self._requests = self._results = None
