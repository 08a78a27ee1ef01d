"""The scheduler: note events in beats, sent at the clock's times, with a ledger.

A heap of note-on/note-off events in beats; one thread turns them into times through
the clock and sends them on a monotonic clock (Condition.wait, never sleep). The ledger
records every sounding (port, channel, pitch), so a re-planned or stopped melody never
leaves a note hanging; panic sends note-offs, CC123 (all notes off) and CC64=0 on every
channel used.

Every message leaves from that one thread, in the order the ledger decided it: a cut or
a panic on another thread only queues its note-offs in the outbox, so a note-off can
never overtake its note-on. A failed send is logged and counted; the thread goes on.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Callable

from riffd.bridges.realtime import make_realtime

log = logging.getLogger("riffd.daemon")
# The longest a planning thread waits for a reaction to be sent (send_due): the send
# takes about 0.2 ms; this bounds what a stalled sending thread can cost the plan.
SEND_WAIT_S = 0.005
# How often a note-on that waits for keys still to be read looks again (s).
KEY_RECHECK_S = 0.0005


@dataclass(frozen=True, slots=True)
class Note:
    """A melody note to play: ``start`` and ``end`` in beats, ``channel`` 0-15."""
    start: float
    end: float
    pitch: int
    velocity: int
    channel: int


class Scheduler:
    """Sends scheduled notes through ``send(message: list[int])``.

    ``clock`` has ``running``, ``time_at(beat)`` and ``beat_at(t)``; ``now`` returns
    monotonic seconds (replaceable in tests). Call ``start()`` for the sending thread,
    or ``run_due(now)`` to send what is due by hand (then messages leave from the
    caller's thread, still in ledger order). ``keys_waiting()`` tells whether keys have
    come in that the engine has yet to handle (see ``add``'s ``wait_for_keys``). ``stats``
    counts ``sent``, ``send_errors`` and ``waited_for_keys`` (note-ons that waited).
    ``loudness(velocity)`` gives each note-on's velocity (1-127) as it is sent: the engine's
    follows the player's last strike, so a note planned before that strike plays at its level.
    """

    def __init__(self, clock, send: Callable[[list[int]], None], now=time.monotonic,
                 port: str = "out", on_note: Callable[[str, Note, float], None] | None = None,
                 keys_waiting: Callable[[], bool] = lambda: False):
        self.clock, self._send, self._now, self.port = clock, send, now, port
        self._on_note, self._keys_waiting = on_note, keys_waiting
        self._until: dict[int, float] = {}  # id -> beat its note-on may wait to, for unread keys
        self._waited: set[int] = set()      # ids whose note-on has waited (counted once)
        self._heap: list[tuple[float, int, int, str, Note]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._ledger: dict[tuple[str, int, int], int] = {}  # key -> id of the sounding note
        self._notes: dict[int, Note] = {}                   # id -> note, pending or sounding
        self._used_channels: set[int] = set()
        self._provisional: set[int] = set()  # ids whose end set_end has yet to give
        self._outbox: deque[list[int]] = deque()  # decided, not yet sent, in order
        self._busy = False                         # the thread is sending a batch
        self.stats: Counter = Counter()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.rt_priority, self.realtime = 0, False
        self.loudness: Callable[[int], int] = lambda velocity: velocity

    # -- planning (any thread) ------------------------------------------------------
    def add(self, note: Note, provisional: bool = False, wait_for_keys: float | None = None) -> int:
        """Schedule ``note``; returns its id. A note ending at or before its start is
        ignored. ``provisional``: its end is a placeholder until ``set_end`` (a note that
        starts before the model has chosen its length); ``on_note`` hears of its start
        only then, with the real end. ``wait_for_keys`` (beats): while ``keys_waiting()``,
        the note-on waits, up to that beat, for the engine to handle them (a key stamped
        in time but read late may strike the chord change that replaces this note)."""
        if note.end <= note.start:
            return 0
        with self._cond:
            nid = next(self._ids)
            self._notes[nid] = note
            if provisional:
                self._provisional.add(nid)
            if wait_for_keys is not None and note.start < wait_for_keys < note.end:
                self._until[nid] = wait_for_keys
            # note-offs sort before note-ons at the same beat, so a repeat re-strikes
            heapq.heappush(self._heap, (note.start, 1, next(self._seq), "on", nid))
            heapq.heappush(self._heap, (note.end, 0, next(self._seq), "off", nid))
            self._cond.notify()
            return nid

    def set_end(self, nid: int, end: float) -> None:
        """Note ``nid`` (sounding or not) ends at ``end`` (beats) instead; a provisional
        note is announced to ``on_note`` now if it already sounds. A note already over
        or forgotten is left alone."""
        with self._cond:
            note = self._notes.get(nid)
            announce = nid in self._provisional and nid in self._ledger.values()
            self._provisional.discard(nid)
            if note is None:
                return
            self._move_offs({nid: max(end, note.start + 1e-6)})
            if announce and self._on_note:
                self._on_note("on", self._notes[nid], self._now())

    def holds(self, nid: int) -> bool:
        """True while note ``nid`` is pending or sounding."""
        with self._cond:
            return nid in self._notes

    def end_by(self, beat: float, channel: int) -> int:
        """Notes on ``channel`` that would still sound at ``beat`` end there instead (a
        melody is one voice: the next note's onset releases the note before, whose
        note-off then sorts before that note-on); returns how many."""
        with self._cond:
            longer = [nid for nid, n in self._notes.items()
                      if n.channel == channel and n.start < beat - 1e-9 and n.end > beat + 1e-9]
            if longer:
                self._move_offs({nid: beat for nid in longer})
            return len(longer)

    def _move_offs(self, ends: dict[int, float]) -> None:
        """Notes ``ends`` (id -> beat) end there instead: their note-off events move (lock held)."""
        self._heap = [e for e in self._heap if not (e[3] == "off" and e[4] in ends)]
        for nid, end in ends.items():
            self._notes[nid] = replace(self._notes[nid], end=end)
            self._heap.append((end, 0, next(self._seq), "off", nid))
        heapq.heapify(self._heap)
        self._cond.notify()

    def cancel_from(self, beat: float) -> int:
        """Forget every note not yet started that starts at or after ``beat``; returns how many."""
        with self._cond:
            sounding = set(self._ledger.values())
            dropped = {nid for nid, n in self._notes.items()
                       if n.start >= beat and nid not in sounding}
            self._forget(dropped)
            return len(dropped)

    def move_pending(self, low: float, high: float, to: float) -> int:
        """Notes not yet started whose start is within ``low``..``high`` (beats) start at
        ``to`` instead, keeping their end, or their length if they would end by ``to``;
        returns how many."""
        with self._cond:
            sounding = set(self._ledger.values())
            moved = {nid: n for nid, n in self._notes.items()
                     if low - 1e-9 <= n.start <= high + 1e-9 and nid not in sounding}
            self._forget(set(moved))
        for note in moved.values():
            end = note.end if note.end > to else to + (note.end - note.start)
            self.add(Note(to, end, note.pitch, note.velocity, note.channel))
        return len(moved)

    def cut(self, keep: Callable[[Note], bool] = lambda n: False) -> int:
        """Send note-off now for every sounding note where ``keep(note)`` is false."""
        with self._cond:
            cut = {nid for nid in self._ledger.values() if not keep(self._notes[nid])}
            for nid in cut:
                self._note_off(nid)
            self._forget(cut)
        self._deliver_here()
        return len(cut)

    def _forget(self, ids: set[int]) -> None:
        """Drop the heap events and records of notes ``ids`` (lock held)."""
        if ids:
            self._heap = [e for e in self._heap if e[4] not in ids]
            heapq.heapify(self._heap)
            for nid in ids:
                self._notes.pop(nid, None)
                self._provisional.discard(nid)
                self._unwait(nid)

    def sounding(self) -> list[Note]:
        """The notes sounding now (a copy)."""
        with self._cond:
            return [self._notes[nid] for nid in self._ledger.values()]

    def pending(self) -> int:
        """How many events wait in the heap."""
        with self._cond:
            return len(self._heap)

    def panic(self) -> None:
        """Drop every plan; note-off for every sounding note; then CC123 and CC64=0 on
        every channel ever used."""
        with self._cond:
            self._heap.clear()
            for nid in list(self._ledger.values()):
                self._note_off(nid)
            self._notes.clear()
            self._provisional.clear()
            self._until.clear()
            self._waited.clear()
            for ch in sorted(self._used_channels):
                self._emit([0xB0 | ch, 123, 0])
                self._emit([0xB0 | ch, 64, 0])
        self._deliver_here()

    # -- sending ------------------------------------------------------------------
    def _emit(self, message: list[int]) -> None:
        """Queue one message for the sending thread (lock held)."""
        self._outbox.append(message)
        self._cond.notify()

    def _deliver(self, batch: list[list[int]]) -> None:
        for message in batch:
            try:
                self._send(message)
                self.stats["sent"] += 1
            except Exception as exc:  # a vanished port: log, count, keep the ledger going
                if not self.stats["send_errors"]:
                    log.error("sending MIDI failed: %s (later failures are only counted)", exc)
                self.stats["send_errors"] += 1

    def _deliver_here(self) -> None:
        """Without a sending thread, send the outbox from the caller's thread."""
        if self._thread is None:
            with self._cond:
                batch = list(self._outbox)
                self._outbox.clear()
            self._deliver(batch)

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until everything decided so far has been sent; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._outbox or self._busy) and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.notify()
                self._cond.wait(min(left, 0.01))
        self._deliver_here()
        return True

    def send_due(self, timeout: float = SEND_WAIT_S) -> bool:
        """Wait until the sending thread has sent every event due now (False after
        ``timeout`` s). The planning thread calls it after queueing a reaction: waiting here
        hands the GIL over, where going on would make the sender wait for it, up to a
        switch interval at every hand-over (sys.setswitchinterval)."""
        if self._thread is None:
            self.run_due()
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._outbox or self._busy or self._head_due(self._now()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def hand_over(self, wait: bool) -> None:
        """After queueing a reaction: with ``wait``, ``send_due``; else one yield of the
        GIL (time.sleep(0)), so that the sending thread can take it at once."""
        if wait:
            self.send_due()
        else:
            time.sleep(0)

    def _note_off(self, nid: int) -> None:
        note = self._notes.get(nid)
        if note is None:
            return
        key = (self.port, note.channel, note.pitch)
        if self._ledger.get(key) == nid:
            del self._ledger[key]
            self._emit([0x80 | note.channel, note.pitch, 0])
            if self._on_note and nid not in self._provisional:  # never announced, never ended
                self._on_note("off", note, self._now())

    def _dispatch(self, kind: str, nid: int) -> None:
        note = self._notes.get(nid)
        if note is None:
            return
        if kind == "off":
            self._note_off(nid)
            self._notes.pop(nid, None)
            self._provisional.discard(nid)
            self._unwait(nid)
            return
        key = (self.port, note.channel, note.pitch)
        if key in self._ledger:
            self._note_off(self._ledger[key])  # re-strike: end the old one first
        self._ledger[key] = nid
        self._used_channels.add(note.channel)
        if (velocity := self.loudness(note.velocity)) != note.velocity:
            self._notes[nid] = note = replace(note, velocity=velocity)  # as sent: on_note (OSC) tells this one
        self._emit([0x90 | note.channel, note.pitch, note.velocity])
        if self._on_note and nid not in self._provisional:
            self._on_note("on", note, self._now())

    def run_due(self, now: float | None = None) -> float | None:
        """Send every event due by ``now``; returns seconds until the next, or None."""
        wait = self._decide_due(now)
        self._deliver_here()
        return wait

    def _decide_due(self, now: float | None = None) -> float | None:
        with self._cond:
            now = self._now() if now is None else now
            while (due := self._head_time()) is not None and due <= now:
                _, _, _, kind, nid = heapq.heappop(self._heap)
                if kind != "on" or not self._wait_for_keys(nid, now):
                    self._dispatch(kind, nid)
            return None if due is None else due - now

    def _unwait(self, nid: int) -> None:
        self._until.pop(nid, None)
        self._waited.discard(nid)

    def _wait_for_keys(self, nid: int, now: float) -> bool:
        """Whether note ``nid``'s due note-on waits for unread keys: then it is due again
        ``KEY_RECHECK_S`` later, never past its ``wait_for_keys`` beat (lock held)."""
        until, note = self._until.get(nid), self._notes.get(nid)
        if until is None or note is None or not self._keys_waiting():
            self._unwait(nid)
            return False
        beat = min(until, note.end - 1e-3, self.clock.beat_at(now + KEY_RECHECK_S))
        if self.clock.time_at(beat) <= now:
            self._unwait(nid)
            return False
        if nid not in self._waited:
            self._waited.add(nid)
            self.stats["waited_for_keys"] += 1
        self._notes[nid] = replace(note, start=beat)
        heapq.heappush(self._heap, (beat, 1, next(self._seq), "on", nid))
        return True

    def _head_time(self) -> float | None:
        """When (monotonic s) the first queued event is due; None with none, or while the clock stops."""
        return self.clock.time_at(self._heap[0][0]) if self._heap and self.clock.running else None

    def _head_due(self, now: float) -> bool:
        """Whether the first queued event is due at ``now`` (s); never while the clock stops."""
        return (due := self._head_time()) is not None and due <= now

    def _run(self) -> None:
        self.realtime = make_realtime(self.rt_priority)
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()  # flush() waits for an empty outbox
                if self._stopping and not self._outbox:
                    return
                try:
                    wait = self._decide_due()
                except Exception as exc:  # the thread that holds the note-offs must not die
                    log.error("scheduling failed (%s: %s); going on", type(exc).__name__, exc)
                    self.stats["faults"] += 1
                    wait = 0.01
                if not self._outbox:
                    # clock-driven times move with the tempo: re-check at least every 50 ms
                    self._cond.wait(0.05 if wait is None else min(wait, 0.05))
                    continue
                batch = list(self._outbox)
                self._outbox.clear()
                self._busy = True
            self._deliver(batch)  # outside the lock: planning never waits for the driver

    def start(self, rt_priority: int = 0) -> None:
        """Start the sending thread, at SCHED_FIFO ``rt_priority`` where granted
        (``realtime``; riffd.bridges.realtime)."""
        self.rt_priority = rt_priority
        self._thread = threading.Thread(target=self._run, name="riffd-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Re-check due times now (after the clock moved)."""
        with self._cond:
            self._cond.notify()

    def stop(self) -> None:
        """Send what is queued, then stop and join the sending thread (call panic()
        first to silence)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join()
            self._thread = None
        self._deliver_here()
