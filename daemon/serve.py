"""`riffd serve`: wire MIDI ports, clock, engine and scheduler, and run until a signal.

Threads: the MIDI input's reader (bridges/midi.py) and the OSC reader (bridges/osc.py),
the engine on the main thread (so SIGINT/SIGTERM land between events; it also applies
OSC commands, daemon/control.py), the scheduler's sending thread, the port watch, and
the OSC phrase worker. Whatever ends the loop, the finally-block sends a panic before the ports close,
so no note is left sounding. The last log line gives the session's counts.
"""
from __future__ import annotations

import faulthandler
import gc
import logging
import queue
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from riffd.bridges.events import Command, NoteOn
from riffd.bridges.midi import MidiInput, MidiOutput
from riffd.bridges.osc import OscBridge
from riffd.bridges.realtime import PRIORITY as RT_PRIORITY, make_realtime, normal_scheduling
from riffd.models.protocol import MelodyModel
from riffd.models.rules import RulesModel
from riffd.presets import Preset

from .clock import InternalClock, MidiClock
from .control import Control
from .engine import ALL_BUT_DRUMS, WARM_S, Engine
from .logs import reason
from .portwatch import PortWatch
from .scheduler import Scheduler

POLL_S = 0.001  # how often the engine looks ahead when no event arrives
log = logging.getLogger("riffd.daemon")


@dataclass
class OscOptions:
    """``riffd serve``'s OSC settings: ``allow`` networks (None: the bridge's default),
    ``reply`` a (host, port) for every reply, ``load(name)`` a model loader for
    /riffd/model and /riffd/generate."""
    port: int
    host: str = "127.0.0.1"
    allow: list | None = None
    reply: tuple[str, int] | None = None
    load: Callable | None = None


def rehearsed(model: MelodyModel, preset: Preset) -> MelodyModel:
    """``model`` after its rehearsal (``MelodyModel.rehearse``: the first chord change then
    costs what later ones do); a model that loaded but fails it is reported in one line
    and the rules model plays instead, as for a model file that cannot be loaded."""
    try:
        model.rehearse(preset)
        return model
    except Exception as exc:
        log.warning("model %s failed before the first chord (%s): the rules model plays", model.name, reason(exc))
        fallback = RulesModel()
        fallback.rehearse(preset)
        return fallback


def serve(preset: Preset, model, *, mode: str | None = None, midi_api: str = "auto",
          in_port: str | None = None, out_port: str | None = None, clock: str = "internal",
          tempo: float | None = None, channel: int | None = None, seed: int | None = None,
          in_channels=None, stop: threading.Event | None = None, watch_s: float = 1.0,
          osc: OscOptions | None = None, warm_ms: float = WARM_S * 1000,
          rt_priority: int | None = None, model_follows_preset: bool = False,
          end_call_cc: int | None = None, kept: dict | None = None) -> Engine:
    """Run the live daemon until ``stop`` is set or SIGINT/SIGTERM arrives.

    ``channel`` is 1-16; ``in_channels`` the input channels (1-16) that count, by
    default all but 10 (drums); ``watch_s`` how often the ports are checked (s);
    ``midi_api`` "none" opens no MIDI port (OSC only). Raises PortError (before anything
    runs) for ports that cannot be opened, OSError for an OSC port that cannot be bound.
    ``warm_ms``: while playing, a warm-up model call this often (ms; 0: never), see
    ``MelodyModel.warm``. ``rt_priority``: the SCHED_FIFO priority of the engine's thread
    (the MIDI and OSC readers and the sending thread get one more; 0: normal scheduling;
    riffd.bridges.realtime), used where the system grants it; None: ``RT_PRIORITY`` with
    MIDI ports, 0 on OSC alone (no driver's deadline to keep, and its median reaction was
    higher with them in each of 8 A/B pairs: docs/measured.md). ``model_follows_preset``:
    ``model`` is the preset's, so /riffd/preset brings the new preset's model too.
    ``end_call_cc``: the controller (0-119) whose press ends a call (daemon/turns.py).
    ``kept``: the preset values the command line set ("meter", "call_bars"), which
    /riffd/preset keeps (daemon/control.py); with Link the meter is always kept.
    Returns the engine (its ``stats``) after the final panic.
    """
    # Shorter GIL turns let the scheduler thread send on time while the engine generates.
    sys.setswitchinterval(0.0005)
    if rt_priority is None:
        rt_priority = RT_PRIORITY if midi_api != "none" else 0
    stop = stop or threading.Event()
    events: queue.Queue = queue.Queue()
    output = midi_in = bridge = None
    try:
        if midi_api != "none":
            output = MidiOutput(midi_api, out_port)
            midi_in = MidiInput(events, midi_api, in_port, rt_priority=rt_priority and rt_priority + 1)
        if osc is not None:
            bridge = OscBridge(events, osc.host, osc.port, osc.allow, osc.reply,
                               rt_priority=rt_priority and rt_priority + 1)
    except Exception:
        for port in (midi_in, output):
            if port is not None:
                port.close()
        raise
    if clock == "link":
        from .linkclock import LinkClock
        the_clock = LinkClock(tempo or preset.tempo, preset.beats_per_bar)
    else:
        the_clock = InternalClock(tempo or preset.tempo) if clock == "internal" else MidiClock()
    started = Counter()

    def on_note(kind, note, t):
        if kind == "on":
            started["notes"] += 1
            if bridge is not None:  # live notes to OSC as flat tuples makenote takes
                ms = (the_clock.time_at(note.end) - the_clock.time_at(note.start)) * 1000.0
                bridge.send("/riffd/note", [note.pitch, note.velocity, max(1, round(ms))])

    model = rehearsed(model, preset)
    keys = ALL_BUT_DRUMS if in_channels is None else {c - 1 for c in in_channels}

    def keys_waiting() -> bool:
        if midi_in is not None:  # a key still in RtMidi's queue counts too
            midi_in.read_now()
        return keys_in(events, keys)

    scheduler = Scheduler(the_clock, output.send if output else (lambda message: None), on_note=on_note,
                          keys_waiting=keys_waiting)
    engine = Engine(model, preset, the_clock, scheduler,
                    channel=None if channel is None else channel - 1, mode=mode, seed=seed, in_channels=keys,
                    input_waiting=lambda: not events.empty(),
                    early_onsets=output is not None,  # OSC's notes carry their length: they wait for it
                    # OSC alone: an answer is sent before planning goes on (docs/measured.md, "An
                    # answer leaves first"); over MIDI that sounded answers a re-plan cuts (flams)
                    send_first=output is None, warm_s=warm_ms / 1000.0, end_call_cc=end_call_cc)
    control = None if bridge is None else Control(
        engine, bridge, events, clock, osc.load or _no_loader, lambda: started["notes"],
        propose_tempo=the_clock.set_tempo if clock == "link" else None, follows_preset=model_follows_preset,
        # the Link session's quantum is the bar serve started with (daemon/linkclock.py)
        kept={**(kept or {}), **({"meter": list(preset.meter)} if clock == "link" else {})})
    watch = PortWatch(midi_in, output, events, period_s=watch_s) if midi_in else None

    def on_signal(signum, _frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        if hasattr(signal, "SIGQUIT"):  # kill -QUIT: every thread's stack on stderr, and riffd plays on
            faulthandler.register(signal.SIGQUIT, all_threads=True, chain=False)
    # Everything loaded so far lives as long as the session: move it out of the garbage
    # collector's reach, so a full collection (20 ms over the ~30,000 objects of a loaded
    # model) never stalls an answer (gc.freeze, CPython 3.7+).
    gc.collect()
    gc.freeze()
    scheduler.start(rt_priority and rt_priority + 1)
    if watch:
        watch.start()
    # last: threads and worker processes started from here on begin as normal ones
    realtime = make_realtime(rt_priority)
    where = (f"in {midi_in.port_name!r}, out {output.port_name!r} ({midi_api})" if midi_in else "no MIDI ports")
    if bridge:
        where += f"; OSC on {bridge.address[0]}:{bridge.address[1]}"
    log.info("ready: %s; preset %s, model %s, mode %s, meter %d/%d, clock %s%s. Ctrl-C stops.", where, preset.name,
             model.name, engine.mode, *preset.meter, clock, "" if clock == "midi" else f" {the_clock.tempo:g} BPM")
    if rt_priority > 0 and not realtime:
        log.info("realtime scheduling not granted (an rtprio limit, as the audio group's, allows it): "
                 "riffd runs at normal priority")
    if clock == "link":
        log.info("Link: %d other peer(s) in the session, quantum %g beats", the_clock.peers, the_clock.quantum)
    try:
        while not stop.is_set():
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                event = None
            while event is not None:  # the whole burst first: a chord's keys come together
                if control is not None and isinstance(event, Command) and event.name != "panic":
                    control.handle(event)
                else:
                    engine.handle(event)
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    event = None
            engine.poll(time.monotonic())
    finally:
        if realtime:
            normal_scheduling()  # the caller's thread goes on as it came (a test's, say)
        scheduler.panic()  # first: nothing below (a port check hung in the driver, say) may delay it
        scheduler.stop()
        stuck = watch is not None and not watch.stop()
        for part in (control, bridge, midi_in, output, the_clock if clock == "link" else None):
            if part is not None and not (stuck and part in (midi_in, output)):
                part.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous and hasattr(signal, "SIGQUIT"):
            faulthandler.unregister(signal.SIGQUIT)
        stats = session_stats(engine, scheduler, midi_in, watch, bridge)
        stats["realtime"] = [name for name, part in (("engine", realtime), ("scheduler", scheduler.realtime),
                                                      ("midi_in", getattr(midi_in, "realtime", False)),
                                                      ("osc_in", getattr(bridge, "realtime", False))) if part]
        log.info("stopped after panic; %s", stats)
    return engine


def _no_loader(name: str):
    raise ValueError(f"this riffd cannot load models ({name!r})")


def keys_in(events: queue.Queue, channels) -> bool:
    """Whether a note-on on one of ``channels`` (0-15) waits in ``events`` for the engine
    (the sending thread asks before it lets a note go that such a key may replace)."""
    with events.mutex:
        return any(type(e) is NoteOn and e.channel in channels for e in events.queue)


def session_stats(engine: Engine, scheduler: Scheduler, midi_in: MidiInput | None, watch: PortWatch | None,
                  bridge: OscBridge | None = None) -> dict:
    """The session's counts: the engine's stats, clock ticks received and inferred as
    lost, messages sent and failed, note-ons that waited for unread keys, reconnects, how
    late the input reader woke (ms: the longest the GIL was held elsewhere), OSC datagrams
    received, dropped and refused, and a transformer's model calls that had to finish a
    KV-cache refill first."""
    stats = dict(engine.stats)
    if isinstance(engine.clock, MidiClock):
        stats["clock_ticks_inferred"] = engine.clock.inferred
    stats.update(sent=scheduler.stats["sent"], send_errors=scheduler.stats["send_errors"],
                 waited_for_keys=scheduler.stats["waited_for_keys"])
    if midi_in is not None:
        stats.update(midi_messages_in=midi_in.received, reconnects=watch.reconnects,
                     reader_late_ms_p99=midi_in.lateness.percentile(99),
                     reader_late_ms_max=round(midi_in.lateness.max_ms, 2))
    if bridge is not None:
        stats.update({f"osc_{k}": v for k, v in bridge.counts.items()})
    if hasattr(engine.model, "window"):  # a transformer: calls that waited for a refill
        stats["refill_waits"] = engine.model.window.waits
    return stats
