import pytest

from riffd.daemon.clock import InternalClock
from riffd.daemon.scheduler import Note, Scheduler


def make():
    clock = InternalClock(60.0)   # one beat per second: beats read as seconds
    clock.start(0.0)
    sent = []
    return Scheduler(clock, sent.append, now=lambda: 0.0), sent


def note_ons(sent):
    return [m for m in sent if m[0] & 0xF0 == 0x90]


def test_notes_sent_in_time_order_and_ledger_balanced():
    s, sent = make()
    s.add(Note(1.0, 2.0, 60, 90, 1))
    s.add(Note(0.5, 1.5, 64, 90, 1))
    assert s.run_due(0.4) == pytest.approx(0.1) and sent == []
    s.run_due(1.0)
    assert sent == [[0x91, 64, 90], [0x91, 60, 90]]
    assert {n.pitch for n in s.sounding()} == {60, 64}
    s.run_due(3.0)
    assert sent[2:] == [[0x81, 64, 0], [0x81, 60, 0]] and not s.sounding()


def test_restrike_ends_the_sounding_note_first():
    s, sent = make()
    s.add(Note(0.0, 2.0, 60, 90, 0))
    s.add(Note(1.0, 3.0, 60, 80, 0))
    s.run_due(1.0)
    assert sent == [[0x90, 60, 90], [0x80, 60, 0], [0x90, 60, 80]]
    s.run_due(2.0)                   # the first note's own off must not cut the second
    assert sent[-1] == [0x90, 60, 80] and len(s.sounding()) == 1
    s.run_due(3.0)
    assert sent[-1] == [0x80, 60, 0] and not s.sounding()


def test_cancel_from_drops_only_unstarted_notes():
    s, sent = make()
    s.add(Note(0.0, 4.0, 60, 90, 0))
    s.add(Note(2.0, 3.0, 62, 90, 0))
    s.add(Note(3.0, 4.0, 64, 90, 0))
    s.run_due(0.0)
    assert s.cancel_from(2.0) == 2
    s.run_due(10.0)
    assert [m[1] for m in note_ons(sent)] == [60]
    assert sent[-1] == [0x80, 60, 0]


def test_cut_keeps_what_is_asked():
    s, sent = make()
    s.add(Note(0.0, 4.0, 60, 90, 0))
    s.add(Note(0.0, 4.0, 67, 90, 0))
    s.run_due(0.0)
    assert s.cut(keep=lambda n: n.pitch == 60) == 1
    assert sent[-1] == [0x80, 67, 0]
    assert [n.pitch for n in s.sounding()] == [60]


def test_panic_silences_every_channel_used():
    s, sent = make()
    s.add(Note(0.0, 4.0, 60, 90, 0))
    s.add(Note(0.0, 4.0, 72, 90, 5))
    s.add(Note(2.0, 4.0, 74, 90, 5))
    s.run_due(0.5)
    sent.clear()
    s.panic()
    assert sorted(m for m in sent if m[0] & 0xF0 == 0x80) == [[0x80, 60, 0], [0x85, 72, 0]]
    for ch in (0, 5):
        assert [0xB0 | ch, 123, 0] in sent and [0xB0 | ch, 64, 0] in sent
    sent.clear()
    s.run_due(10.0)
    assert sent == [] and s.pending() == 0


def test_thread_sends_and_stops():
    import time
    clock = InternalClock(600.0)
    clock.start(time.monotonic())
    sent = []
    s = Scheduler(clock, sent.append)
    s.start()
    s.add(Note(clock.beat_at(time.monotonic()) + 0.1, clock.beat_at(time.monotonic()) + 0.2, 60, 90, 0))
    deadline = time.monotonic() + 2
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.stop()
    assert sent == [[0x90, 60, 90], [0x80, 60, 0]]


def test_send_due_returns_once_the_sending_thread_has_sent_what_is_due():
    import threading
    import time
    clock = InternalClock(120.0)
    clock.start(time.monotonic())
    sent, gate = [], threading.Event()

    def send(message):
        gate.wait(5.0)  # a driver that takes its time
        sent.append((message, time.monotonic()))
    s = Scheduler(clock, send)
    s.start()
    try:
        now = clock.beat_at(time.monotonic())
        s.add(Note(now, now + 10.0, 60, 90, 0))   # a reaction: due at once
        s.add(Note(now + 8.0, now + 10.0, 64, 90, 0))  # planned ahead: not waited for
        assert not s.send_due(0.05)  # the send is held: the wait ends at the timeout
        gate.set()
        assert s.send_due(1.0)
        returned = time.monotonic()
        assert [m for m, _ in sent] == [[0x90, 60, 90]] and sent[0][1] <= returned
        assert s.send_due(0.05)  # nothing due: at once
    finally:
        gate.set()
        s.panic()
        s.stop()


def test_send_due_without_a_thread_sends_from_the_caller():
    s, sent = make()
    s.add(Note(0.0, 1.0, 60, 90, 0))
    s.add(Note(0.5, 1.0, 62, 90, 0))
    assert s.send_due() and sent == [[0x90, 60, 90]]


def test_stamps_keep_arrival_times_however_late_the_reader_reads():
    from riffd.bridges.midi import Stamper
    stamper = Stamper()
    # three messages 10 ms apart; the reader reads the first at once, the others 40 ms late
    assert stamper.stamp(0.0, 5.000) == pytest.approx(5.000)
    assert stamper.stamp(0.010, 5.050) == pytest.approx(5.010)
    assert stamper.stamp(0.010, 5.050) == pytest.approx(5.020)
    # a read with less delay than any before moves the offset (stamps never lie in the future)
    assert stamper.stamp(0.010, 5.029) == pytest.approx(5.029)


def test_one_sending_thread_keeps_ledger_order_and_survives_a_failed_send():
    import threading
    import time

    clock = InternalClock(600.0)         # ten beats a second
    clock.start(time.monotonic())
    sent, senders, fail = [], set(), [True]

    def send(message):
        senders.add(threading.current_thread().name)
        if fail[0] and message[0] & 0xF0 == 0x90:
            fail[0] = False
            raise OSError("port vanished")
        sent.append(message)

    s = Scheduler(clock, send)
    s.start()
    try:
        for i in range(20):
            s.add(Note(0.5 + i * 0.2, 0.6 + i * 0.2, 60 + i % 3, 90, 0))
        time.sleep(0.3)
        s.cut()                          # from this thread: the note-offs still leave from the sender
        time.sleep(0.5)
        s.panic()
        assert s.flush()
    finally:
        s.stop()
    assert senders == {"riffd-scheduler"}
    assert s.stats["send_errors"] == 1 and s.stats["sent"] == len(sent)
    sounding = set()
    for m in sent:                       # never an off before its on, never an on twice
        if m[0] & 0xF0 == 0x90:
            assert m[1] not in sounding
            sounding.add(m[1])
        elif m[0] & 0xF0 == 0x80:
            sounding.discard(m[1])
    assert not sounding and [0xB0, 123, 0] in sent


def test_end_by_releases_the_note_before_at_the_next_onset():
    """One voice: a sounding note and a planned one that outlast the next onset end
    there, note-off before note-on; other channels and earlier notes are left alone."""
    s, sent = make()
    s.add(Note(0.0, 3.0, 60, 90, 0))
    s.add(Note(0.0, 3.0, 48, 90, 5))      # another channel (the player's chords)
    s.run_due(0.0)
    assert s.end_by(1.0, 0) == 1
    s.add(Note(1.0, 4.0, 64, 90, 0))
    assert s.end_by(2.0, 0) == 1          # a planned note, not yet sounding
    s.add(Note(2.0, 2.5, 67, 90, 0))
    s.run_due(1.0)
    assert sent[2:] == [[0x80, 60, 0], [0x90, 64, 90]]
    s.run_due(2.0)
    assert sent[4:] == [[0x80, 64, 0], [0x90, 67, 90]]
    s.run_due(10.0)
    assert sent[6:] == [[0x80, 67, 0], [0x85, 48, 0]] and not s.sounding()
    assert s.end_by(20.0, 0) == 0


def test_a_provisional_note_sounds_at_once_and_is_announced_with_its_real_end():
    """A note whose length is not chosen yet: note-on when due, note-off at the end that
    set_end gives (not the placeholder's); on_note hears of it only then. One cut before
    its end is known is never announced, on or off."""
    clock = InternalClock(60.0)
    clock.start(0.0)
    sent, heard = [], []
    s = Scheduler(clock, sent.append, now=lambda: 0.0, on_note=lambda kind, n, t: heard.append((kind, n.pitch, n.end)))
    nid = s.add(Note(1.0, 1.25, 60, 90, 0), provisional=True)
    s.run_due(1.0)
    assert sent == [[0x90, 60, 90]] and heard == []
    s.set_end(nid, 2.0)
    assert heard == [("on", 60, 2.0)]
    s.run_due(1.5)
    assert sent == [[0x90, 60, 90]]              # the placeholder end (1.25) is gone
    s.run_due(2.0)
    assert sent[-1] == [0x80, 60, 0] and heard[-1] == ("off", 60, 2.0)
    other = s.add(Note(3.0, 3.25, 62, 90, 0), provisional=True)
    s.run_due(3.0)
    s.cut()
    s.set_end(other, 4.0)                        # too late: it is over, and stays unheard
    s.run_due(5.0)
    assert sent[-2:] == [[0x90, 62, 90], [0x80, 62, 0]] and len(heard) == 2 and not s.sounding()

