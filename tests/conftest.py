"""Shared fixtures and helpers: the riffd command line in a subprocess, a real JACK
server, a corpus cache that is never $HOME, and a check that no test leaks a thread
(after watchdog's tests/conftest.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from riffd.bridges.jackrig import jack_server


WORKER_TMP = pytest.StashKey[str]()  # a pytest-xdist worker's own TMPDIR

RIFFD = [sys.executable, "-c", "from riffd.daemon.cli import main; main()"]


def run_riffd(*args, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run ``riffd ARGS`` in a subprocess of this interpreter; output captured as text."""
    return subprocess.run([*RIFFD, *args], capture_output=True, text=True, timeout=timeout, **kw)


TRIADS = {"C": (48, 52, 55), "Am": (45, 48, 52), "F": (41, 45, 48), "G": (43, 47, 50)}
PROGRESSION = ["C", "Am", "F", "G"] * 2


def piano_with_its_tune():
    """A pianist's 8 bars in one part: (left hand, a triad of PROGRESSION a bar; right
    hand, a tune in eighths an octave and more above, passing notes among them; the
    tune's pitches), MelodyNotes in beats."""
    from riffd.models.protocol import MelodyNote
    left = [MelodyNote(bar * 4, 4.0, p, 70) for bar, name in enumerate(PROGRESSION) for p in TRIADS[name]]
    tune = [72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 69, 71, 72, 74, 76, 72,
            69, 71, 72, 74, 76, 74, 72, 69, 71, 72, 74, 76, 74, 72, 71, 67] * 2
    return left, [MelodyNote(i / 2, 0.5, p, 90) for i, p in enumerate(tune)], tune


def waltz_chords(path, written_meter: bool = True) -> None:
    """A waltz's block chords at ``path``: 16 bars of three beats (C C G7 G7 Am F G7 C,
    twice), a track "Keys" at 480 PPQN, under the 4/4 a sequencer writes by default
    (``written_meter``), or under no time signature."""
    import mido
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    voicings = {"C": (48, 52, 55), "G7": (43, 53, 59), "F": (41, 45, 48), "Am": (45, 48, 52)}
    bars = ["C", "C", "G7", "G7", "Am", "F", "G7", "C"] * 2
    keys = [MelodyNote(bar * 3, 3.0, p, 70) for bar, name in enumerate(bars) for p in voicings[name]]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    if written_meter:
        midi.tracks.append(mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)]))
    midi.tracks.append(melody_track(keys, 480, 0, name="Keys"))
    midi.save(path)


def struck_bars(notes, bar_ticks: int, bars: int) -> float:
    """The share of ``bars`` bars of ``bar_ticks`` whose first tick a note of ``notes``
    (TrackNotes) starts on."""
    onsets = {n.start for n in notes}
    return sum(bar * bar_ticks in onsets for bar in range(bars)) / bars


def pedalled_arpeggios(path) -> None:
    """A pianist's file at ``path``: PIANO plays each bar of PROGRESSION as broken chords
    in eighths (bass, fifth, third, fifth), one key at a time, the sustain pedal down just
    after each bar line and up just before the next; MELODY plays the chord's tones in
    quarters two octaves up."""
    import mido
    events = []  # (tick, message)
    for bar, name in enumerate(PROGRESSION):
        at, (root, third, fifth) = bar * 1920, TRIADS[name]
        for k, pitch in enumerate([root - 12, fifth, third, fifth] * 2):
            events += [(at + k * 240, mido.Message("note_on", note=pitch, velocity=70)),
                       (at + k * 240 + 200, mido.Message("note_off", note=pitch))]
        events += [(at + 20, mido.Message("control_change", control=64, value=127)),
                   (at + 1900, mido.Message("control_change", control=64, value=0))]
    piano, now = mido.MidiTrack([mido.MetaMessage("track_name", name="PIANO")]), 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        piano.append(message.copy(time=tick - now))
        now = tick
    melody = mido.MidiTrack([mido.MetaMessage("track_name", name="MELODY")])
    for bar, name in enumerate(PROGRESSION):
        for k in range(4):
            pitch = TRIADS[name][k % 3] + 24
            melody += [mido.Message("note_on", channel=1, note=pitch, velocity=80, time=0 if bar + k == 0 else 80),
                       mido.Message("note_off", channel=1, note=pitch, time=400)]
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks += [mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]), piano, melody]
    midi.save(path)


def in_thread(fn):
    """``fn()`` called on a new thread; its result."""
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def realtime_allowed() -> bool:
    """Whether this system lets this user's threads run at SCHED_FIFO, at the priority of
    riffd's readers (root with CAP_SYS_NICE, or an rtprio limit): tried with the os call
    on a throwaway thread."""
    from riffd.bridges.realtime import PRIORITY

    def attempt():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY + 1))
            return True
        except (AttributeError, OSError):
            return False
    return in_thread(attempt)


def pytest_configure(config):
    """Generated corpus files go to RIFFD_CACHE, else to pytest's cache folder in the
    checkout: tests never read or write $HOME. Subprocesses inherit the setting.

    Under pytest-xdist (``make test`` runs a worker a core) each worker gets its own
    TMPDIR: music21 pickles each score it parses into tempfile.gettempdir(), and two
    workers parsing one corpus file at once could read each other's half-written pickle."""
    if not os.environ.get("RIFFD_CACHE"):
        cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
        os.environ["RIFFD_CACHE"] = str(cache.mkdir("riffd") if cache else tempfile.mkdtemp(prefix="riffd-"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        config.stash[WORKER_TMP] = os.environ["TMPDIR"] = tempfile.mkdtemp(prefix=f"riffd-{worker}-")
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def pytest_unconfigure(config):
    if WORKER_TMP in config.stash:
        shutil.rmtree(config.stash[WORKER_TMP], ignore_errors=True)


LINUX_ONLY = {
    "jack": "JACK dummy-server tests run on Linux, where make test installs jackd2",
    "openblas": "MLX's reference BLAS is swapped for OpenBLAS on Linux only",
    "cyclictest": "cyclictest (rt-tests) measures the machine on Linux, where make test installs it",
}


def pytest_collection_modifyitems(config, items):
    """Tests of parts that exist only on Linux (jackd2 from apt, OpenBLAS for MLX's CPU
    wheel) skip elsewhere with the reason; on Linux they run, and fail loudly if the
    part is missing."""
    if sys.platform.startswith("linux"):
        return
    for item in items:
        for mark, reason in LINUX_ONLY.items():
            if item.get_closest_marker(mark):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def no_thread_leaks():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture(scope="session")
def jack():
    """A `jackd -d dummy` server of our own name for the session; yields its name."""
    with jack_server(f"riffd-test-{os.getpid()}", period=128) as name:
        yield name


@pytest.fixture(scope="session")
def chorale_piece():
    """Bach chorale BWV 269 from the music21 corpus, as a Piece."""
    from riffd.models.training.corpus import chorale, corpus_root
    return chorale(next((corpus_root() / "bach").glob("bwv269.*")))
