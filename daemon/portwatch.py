"""Watches riffd's MIDI ports: a port that vanishes (a device unplugged, a JACK client
gone, the JACK server restarted) is logged, reopened by name once it is back, and a
panic follows on the reopened output. The keys a vanished input held are let up: their
note-offs will never come.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from riffd.bridges.events import ALL_NOTES_OFF_CC, Command, Control
from riffd.bridges.midi import MidiInput, MidiOutput, PortError

log = logging.getLogger("riffd.daemon")


class PortWatch:
    """Checks the ports every ``period_s`` seconds on its own thread.

    A virtual port is seen through the other riffd client (riffd's output client lists
    'riffd in'); a named port through its own client. When the JACK server stopped or
    restarted (bridges.midi.jack_server_stamp), or neither client sees anything, the
    clients are made anew once a server is there. After a reopen, a
    ``Command("panic")`` goes on ``events`` for the engine. ``reconnects`` counts them.
    When the input vanishes, All Notes Off (CC123) on every channel goes on ``events``:
    keys held on the unplugged keyboard are up, and the accompaniment rests as after
    their note-offs (daemon/capture.py).
    """

    def __init__(self, midi_in: MidiInput, midi_out: MidiOutput, events: queue.Queue, period_s: float = 1.0):
        self.midi_in, self.midi_out, self.events, self.period_s = midi_in, midi_out, events, period_s
        self.reconnects = 0
        self._lost: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riffd-ports", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop watching; False if a check stuck in the MIDI driver (a wedged JACK
        server) was left behind after ``timeout_s`` (a daemon thread): its ports must
        then not be closed under it, and riffd exits without closing them."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the port check did not finish within %g s; exiting without closing the ports",
                            timeout_s)
                return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.check()
            except Exception as exc:  # a watcher fault must not end the watching
                log.error("port check failed: %s", exc)

    def _alive(self, port, other) -> bool:
        return not port.server_gone() and (other if port.virtual else port).sees(port.port_name)

    def check(self) -> None:
        """One round: note vanished ports, reopen those that are back."""
        ports = {"input": (self.midi_in, self.midi_out), "output": (self.midi_out, self.midi_in)}
        # a port once lost stays lost until reopened: its name coming back is no connection
        dead = [d for d, (port, other) in ports.items() if d in self._lost or not self._alive(port, other)]
        for direction in dead:
            if direction == "output":
                self.midi_out.suspend()
            if direction not in self._lost:
                self._lost.add(direction)
                log.warning("MIDI %s port %r is gone; reconnecting when it is back", direction,
                            ports[direction][0].port_name)
                if direction == "input":
                    now = time.monotonic()
                    for channel in range(16):
                        self.events.put(Control(now, channel, ALL_NOTES_OFF_CC, 0))
        if not dead:
            return
        # the server restarted, or a dead client lists nothing, not even riffd's own port
        fresh = self.midi_in.server_gone() or self.midi_out.server_gone() or \
            (not self.midi_in.sees("") and not self.midi_out.sees(""))
        for direction in dead:
            port = ports[direction][0]
            try:
                port.reopen(fresh_client=fresh)
            except PortError as exc:
                log.debug("MIDI %s not back yet: %s", direction, exc)
                continue
            self._lost.discard(direction)
            self.reconnects += 1
            log.info("MIDI %s port %r reconnected", direction, port.port_name)
            if direction == "output":
                self.events.put(Command(time.monotonic(), "panic"))
