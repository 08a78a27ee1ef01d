"""`riffd watch DIR`: chord files dropped into ``DIR/inbox/`` come back as melodies.

For each input (a ``.mid`` with a chord track, or a ``.json`` request such as
``{"chords": ["Am", "F", "C", "G"], "bars": 8, "tempo": 140, "meter": "3/4", "preset":
"trance", "seed": 3}``), ``DIR/outbox/`` gets NAME.mid (the input's tracks plus "riffd melody"),
NAME.wav (chords and melody through the synthesizer), NAME.png (a piano roll) and
NAME.json (a report), each written under a temporary name and renamed; the input then
moves to ``DIR/done/``. A bad input moves to ``DIR/failed/`` with NAME.error.json beside
it: the one-line reason and the exit code `riffd render` would give (2: bad input, 1: a
failure of riffd).

Crash safety: an input is claimed by an atomic rename into ``DIR/.riffd/work/`` before
any work, and leaves it only by the rename into done/ or failed/. A restart finishes
every claimed file first; its outputs replace any a killed run left (same names), so
nothing is lost and nothing is done twice. A name already used in done/, failed/ or
outbox/ gets " (2)", " (3)", ... so every done input has exactly one set of outputs. A
name over ``MAX_NAME_BYTES`` is shortened as it is claimed, so that its outputs' names fit.

Work runs in ``jobs`` worker processes (spawned, each loading the model once). A running
watcher starts them all at once and says when they are ready; ``once`` starts them as
files need them.
"""
from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from riffd.bridges.folder import Inbox

from riffd.bridges.atomic import atomic_path
from .logs import reason as one_line

# a claimed name's longest derivative, ".NAME.error.json.XXXXXXXX.part" (atomic_path), is 26
# bytes more, and " (k)" may be added: 200 keeps it within a file system's 255
MAX_NAME_BYTES = 200
READY_TIMEOUT_S = 60.0  # for the workers' start (model loads); then the watcher goes on regardless
_MODEL = None  # the worker process's model, loaded once by _load
_OTHERS: dict = {}  # models that requests' presets named, loaded once each, by name


@dataclass(frozen=True)
class Options:
    """What every job of a watch uses: preset name, model name, seed, and whether a
    melody in a .mid is continued (``continue_melody``). ``model_given``: the model was
    chosen (--model), so a request's preset does not bring its own. ``meter``: (numerator,
    denominator) a .mid is played and written in (render.read_in), or None: its own."""
    preset: str = "pop"
    model: str = "onnx"
    seed: int | None = None
    continue_melody: bool = False
    model_given: bool = True
    meter: tuple[int, int] | None = None


class JobError(Exception):
    """A file that cannot be rendered: ``code`` 2 for bad input, 1 for riffd's failure."""

    def __init__(self, reason: str, code: int = 2):
        super().__init__(reason, code)  # both in args: it crosses from a worker by pickling
        self.reason, self.code = reason, code

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Folders:
    inbox: Path
    outbox: Path
    done: Path
    failed: Path
    work: Path

    @classmethod
    def under(cls, root: str | Path) -> "Folders":
        root = Path(root)
        folders = cls(root / "inbox", root / "outbox", root / "done", root / "failed", root / ".riffd" / "work")
        for path in asdict(folders).values():
            Path(path).mkdir(parents=True, exist_ok=True)
        return folders


def write_json(data: dict, path: Path) -> None:
    """``data`` as JSON at ``path``, written under a temporary name and renamed."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)


def fitting_name(name: str) -> str:
    """``name`` with its stem cut (at a character) to ``MAX_NAME_BYTES`` of UTF-8 in all."""
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 16:  # no extension riffd reads: cut the whole name
        stem, ext = name, ""
    room = MAX_NAME_BYTES - len(ext.encode())
    return name if len(name.encode()) <= MAX_NAME_BYTES else stem.encode()[:room].decode(errors="ignore") + ext


def unique_name(name: str, folders: Folders) -> str:
    """``name`` (``fitting_name``), or "stem (k).ext" if a file of that name or stem is
    already claimed, done, failed or has outputs."""
    name = fitting_name(name)
    stem, ext = os.path.splitext(name)
    k, candidate = 1, name
    while (any((d / candidate).exists() for d in (folders.work, folders.done, folders.failed))
           or (folders.outbox / f"{os.path.splitext(candidate)[0]}.mid").exists()):
        k += 1
        candidate = f"{stem} ({k}){ext}"
    return candidate


def claim(path: Path, folders: Folders) -> Path | None:
    """Move ``path`` into work/ by one rename; None if it is gone (another watcher took it)."""
    target = folders.work / unique_name(path.name, folders)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


# -- in the worker process -------------------------------------------------------------
def _load(model_name: str, started=None) -> None:
    """The worker's initializer: load the model, import what a job uses (matplotlib,
    the synthesizer: 0.3-0.4 s that the first file would pay otherwise), then release
    ``started`` (a multiprocessing semaphore) if given."""
    global _MODEL
    from .audio import render_parts
    from .pianoroll import warm
    from .render import render_song  # noqa: F401
    _MODEL = _loaded(model_name)
    render_parts([])
    warm()
    if started is not None:
        started.release()


def _loaded(name: str):
    """The model ``name``: a shipped neural model that cannot load falls back to rules."""
    from riffd.models import is_shipped_neural, load_model, load_or_fallback
    return load_or_fallback(name, warn=lambda m: None) if is_shipped_neural(name) else load_model(name)


def _model_for(name: str):
    """A request's preset's model, ``name``: the worker's own, or another loaded once."""
    if _MODEL is not None and name == _MODEL.name:
        return _MODEL
    if name not in _OTHERS:
        _OTHERS[name] = _loaded(name)
    return _OTHERS[name]


def _nothing() -> None:
    """A task that makes the pool start a worker (it starts them on demand)."""


def process(work: str, outbox: str, options: Options) -> dict:
    """Render one claimed file into ``outbox``; returns its report. Raises JobError."""
    from riffd.bridges.midifile import MidiInputError
    from riffd.presets import PresetError, load_preset

    from .render import read_in, render_song
    from .request import RequestError, played, read_request
    path, out = Path(work), Path(outbox)
    stem, t0 = path.stem, time.perf_counter()
    try:
        preset, seed, model, chords = load_preset(options.preset), options.seed, _MODEL, None
        if path.suffix.lower() == ".json":
            request = read_request(path)
            preset, seed, song, chords = played(request, options.preset, seed)
            if "preset" in request and not options.model_given:  # as `render --preset` plays it
                try:
                    model = _model_for(preset.model)
                except ValueError as exc:  # a preset file's model that is none: bad input, as render says
                    raise JobError(str(exc)) from None
        elif path.suffix.lower() in (".mid", ".midi", ".smf"):
            song = read_in(path, options.meter)
        else:
            raise JobError("not a .mid or .json file")
        report = render_song(song, out / f"{stem}.mid", preset, model, seed, source=path.name,
                             wav=out / f"{stem}.wav", png=out / f"{stem}.png",
                             continue_melody=options.continue_melody, chords=chords)
    except JobError:
        raise
    except (MidiInputError, PresetError, RequestError) as exc:
        raise JobError(str(exc).replace(str(path), path.name)) from None
    except Exception as exc:  # riffd's own failure: exit code 1, as render gives
        raise JobError(f"{type(exc).__name__}: {exc}", code=1) from None
    result = {"input": path.name, "model": model.name, "preset": preset.name, "seed": seed,
              "notes": len(report.notes), "chord_changes": len(report.chords),
              # where the chords came from: a chord track, or parts in one voice each named per beat
              "chord_track": report.chord_track, "chord_voices": list(report.voices),
              "chords_from": report.source(),  # "track 1", or a one-track file's "channel 1"
              "chords": [[b, n] for b, n in report.chords[:512]],
              "rests": [[round(a, 3), round(b, 3)] for a, b in report.rests],  # beats the chords fell silent
              "chord_tone_share": round(report.chord_tone_share, 3),
              "outputs": [f"{stem}.mid", f"{stem}.wav", f"{stem}.png", f"{stem}.json"],
              "render_ms": round(1000 * (time.perf_counter() - t0), 1)}
    write_json(result, out / f"{stem}.json")
    return result


# -- in the watching process ---------------------------------------------------------------
def watch(root: str | Path, options: Options, jobs: int | None = None, once: bool = False,
          stop: threading.Event | None = None, echo=print, settle_s: float = 0.3) -> int:
    """Watch ``root`` until ``stop`` is set (or, with ``once``, until the inbox and the
    claimed files are done). Returns 1 if ``once`` and anything failed, else 0; one
    progress line per file goes to ``echo``."""
    folders = Folders.under(root)
    stop = stop or threading.Event()
    jobs = jobs or os.cpu_count() or 1
    inbox = Inbox(folders.inbox, settle_s=settle_s, observe=not once)
    failures = 0
    context = get_context("spawn")  # a clean interpreter per worker: no threads forked
    started = context.Semaphore(0)

    starting: list = []

    def start_pool() -> ProcessPoolExecutor:
        fresh = ProcessPoolExecutor(jobs, mp_context=context, initializer=_load, initargs=(options.model, started))
        if not once:  # a running watcher starts every worker now, so the first files wait for none
            starting[:] = [fresh.submit(_nothing) for _ in range(jobs)]
        return fresh

    pool = start_pool()
    if not once:
        ready, deadline = 0, time.monotonic() + READY_TIMEOUT_S
        while ready < jobs and not stop.is_set() and time.monotonic() < deadline:
            ready += started.acquire(timeout=0.1)
            if any(f.done() and f.exception() for f in starting):
                break  # a worker could not start: the first file will say why
        echo(f"riffd watch: {ready} of {jobs} workers ready")
    running: dict = {}

    def submit(work: Path) -> None:
        running[pool.submit(process, str(work), str(folders.outbox), options)] = (work, time.monotonic())

    for folder in (folders.outbox, folders.work):  # temporaries of a run that was killed
        for stale in folder.glob(".*"):
            stale.unlink(missing_ok=True)
    try:
        for work in sorted(folders.work.iterdir()):  # claimed by a run that did not finish
            if work.is_file() and not work.name.startswith("."):
                submit(work)
        while not stop.is_set():
            for path in inbox.ready():
                work = claim(path, folders)
                if work is not None:
                    submit(work)
            if running:
                finished, _ = wait(list(running), timeout=0.1, return_when=FIRST_COMPLETED)
            else:
                finished = set()
                if once and inbox.waiting() == 0:
                    break
                time.sleep(0.05)
            for future in finished:
                work, began = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): riffd's failure
                    failures += _fail(work, folders, JobError("a worker process died", code=1), echo)
                    pending = [other for other, _ in running.values()]
                    running.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = start_pool()
                    for other in pending:
                        submit(other)
                    break
                except JobError as exc:
                    failures += _fail(work, folders, exc, echo)
                else:
                    os.replace(work, folders.done / work.name)
                    plural = "" if result["chord_changes"] == 1 else "s"
                    echo(f"riffd watch: {work.name}: {result['notes']} notes over {result['chord_changes']} "
                         f"chord change{plural} -> outbox/{work.stem}.mid .wav .png .json "
                         f"({1000 * (time.monotonic() - began):.0f} ms)")
    finally:
        inbox.close()
        pool.shutdown(wait=True, cancel_futures=True)
    return 1 if once and failures else 0


def _fail(work: Path, folders: Folders, exc: JobError, echo) -> int:
    reason = one_line(exc)
    try:
        write_json({"file": work.name, "error": reason, "exit_code": exc.code},
                   folders.failed / f"{work.name}.error.json")
    except OSError as err:  # a full disk, say: the watcher goes on, the reason goes to the log
        echo(f"riffd watch: {work.name}: the error report was not written ({err})")
    os.replace(work, folders.failed / work.name)
    echo(f"riffd watch: {work.name}: failed (exit {exc.code}): {reason}")
    return 1
