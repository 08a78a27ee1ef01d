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
