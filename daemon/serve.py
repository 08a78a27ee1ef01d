"""`riffd serve`: wire MIDI ports, clock, engine and scheduler, and run until a signal.

Threads: the MIDI input's reader (bridges/midi.py), the engine on the main thread (so
SIGINT/SIGTERM land between events), the scheduler's sending thread, and the port
watch. Whatever ends the loop, the finally-block sends a panic before the ports close,
so no note is left sounding. The last log line gives the session's counts.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time

from riffd.bridges.midi import MidiInput, MidiOutput
from riffd.presets import Preset

from .clock import InternalClock, MidiClock
from .engine import ALL_BUT_DRUMS, Engine
from .portwatch import PortWatch
from .scheduler import Scheduler

POLL_S = 0.001  # how often the engine looks ahead when no event arrives
log = logging.getLogger("riffd.daemon")


def serve(preset: Preset, model, *, mode: str | None = None, midi_api: str = "auto",
          in_port: str | None = None, out_port: str | None = None, clock: str = "internal",
          tempo: float | None = None, channel: int | None = None, seed: int | None = None,
          in_channels=None, stop: threading.Event | None = None, watch_s: float = 1.0) -> Engine:
    """Run the live daemon until ``stop`` is set or SIGINT/SIGTERM arrives.

    ``channel`` is 1-16; ``in_channels`` the input channels (1-16) that count, by
    default all but 10 (drums); ``watch_s`` how often the ports are checked (s). Raises
    PortError (before anything runs) for ports that cannot be opened. Returns the
    engine (its ``stats``) after the final panic.
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
                    channel=None if channel is None else channel - 1, mode=mode, seed=seed,
                    in_channels=ALL_BUT_DRUMS if in_channels is None else {c - 1 for c in in_channels},
                    input_waiting=lambda: not events.empty())
    watch = PortWatch(midi_in, output, events, period_s=watch_s)

    def on_signal(signum, _frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    scheduler.start()
    watch.start()
    log.info("ready: in %r, out %r (%s); preset %s, model %s, mode %s, clock %s%s. Ctrl-C stops.",
             midi_in.port_name, output.port_name, midi_api, preset.name, model.name, engine.mode, clock,
             "" if clock == "midi" else f" {the_clock.tempo:g} BPM")
    try:
        while not stop.is_set():
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                event = None
            while event is not None:  # the whole burst first: a chord's keys come together
                engine.handle(event)
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    event = None
            engine.poll(time.monotonic())
    finally:
        watch.stop()
        scheduler.panic()
        scheduler.stop()
        midi_in.close()
        output.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stats = session_stats(engine, scheduler, midi_in, watch)
        log.info("stopped after panic; %s", stats)
    return engine


def session_stats(engine: Engine, scheduler: Scheduler, midi_in: MidiInput, watch: PortWatch) -> dict:
    """The session's counts: the engine's stats, clock ticks received and inferred as
    lost, messages sent and failed, reconnects, and how late the input reader woke (ms:
    the longest the GIL was held elsewhere)."""
    stats = dict(engine.stats)
    if isinstance(engine.clock, MidiClock):
        stats["clock_ticks_inferred"] = engine.clock.inferred
    stats.update(midi_messages_in=midi_in.received, sent=scheduler.stats["sent"],
                 send_errors=scheduler.stats["send_errors"], reconnects=watch.reconnects,
                 reader_late_ms_p99=midi_in.lateness.percentile(99),
                 reader_late_ms_max=round(midi_in.lateness.max_ms, 2))
    return stats
