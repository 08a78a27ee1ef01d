"""`riffd serve`: wire MIDI ports, clock, engine and scheduler, and run until a signal.

The engine runs on the main thread (so SIGINT/SIGTERM land between events), the
scheduler on its own. Whatever ends the loop, the finally-block sends a panic before
the ports close, so no note is left sounding.
"""
from __future__ import annotations

import queue
import signal
import sys
import threading
import time

from riffd.bridges.events import NoteOn
from riffd.bridges.midi import MidiInput, MidiOutput

from .clock import InternalClock, MidiClock
from .engine import Engine
from riffd.presets import Preset
from .scheduler import Scheduler

POLL_S = 0.002  # how often the engine looks ahead when no event arrives
STRIKE_SETTLE_S = 0.0015  # after a key, wait this long for the chord's other keys
STRIKE_SETTLE_MAX_S = 0.006


def serve(preset: Preset, model, *, mode: str | None = None, midi_api: str = "auto",
          in_port: str | None = None, out_port: str | None = None, clock: str = "internal",
          tempo: float | None = None, channel: int | None = None, seed: int | None = None,
          stop: threading.Event | None = None, log=sys.stderr) -> Engine:
    """Run the live daemon until ``stop`` is set or SIGINT/SIGTERM arrives.

    ``channel`` is 1-16. Raises PortError (before anything runs) for ports that cannot
    be opened. Returns the engine (its ``stats``) after the final panic.
    """
    # Shorter GIL turns let the scheduler thread send on time while the engine generates.
    sys.setswitchinterval(0.0005)
    stop = stop or threading.Event()
    events: queue.Queue = queue.Queue()
    output = MidiOutput(midi_api, out_port)
    try:
        midi_in = MidiInput(events, midi_api, in_port)
    except Exception:
        output.close()
        raise
    the_clock = InternalClock(tempo or preset.tempo) if clock == "internal" else MidiClock()
    scheduler = Scheduler(the_clock, output.send)
    engine = Engine(model, preset, the_clock, scheduler,
                    channel=None if channel is None else channel - 1, mode=mode, seed=seed)

    def on_signal(signum, _frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    scheduler.start()
    print(f"riffd: ready: in {midi_in.port_name!r}, out {output.port_name!r} ({midi_api}); "
          f"preset {preset.name}, model {model.name}, mode {engine.mode}, clock {clock}"
          f"{'' if clock == 'midi' else f' {the_clock.tempo:g} BPM'}. Ctrl-C stops.", file=log, flush=True)
    try:
        while not stop.is_set():
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                event = None
            # Take the whole burst (a chord's keys arrive as separate messages) before
            # acting, so one chord gives one re-plan, not one per key.
            settle_until = time.monotonic() + STRIKE_SETTLE_MAX_S
            while event is not None:
                engine.handle(event)
                wait = STRIKE_SETTLE_S if isinstance(event, NoteOn) else 0.0
                wait = max(0.0, min(wait, settle_until - time.monotonic()))
                try:
                    event = events.get(timeout=wait) if wait else events.get_nowait()
                except queue.Empty:
                    event = None
            engine.poll(time.monotonic())
            scheduler.wake()
    finally:
        scheduler.panic()
        scheduler.stop()
        midi_in.close()
        output.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"riffd: stopped after panic; {dict(engine.stats)}", file=log, flush=True)
    return engine
