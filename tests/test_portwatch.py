"""The port watcher in one room, with ports that stand in for a MIDI driver's."""
import queue
import threading
import time

from riffd.daemon.portwatch import PortWatch


def test_a_port_check_stuck_in_the_driver_does_not_hold_up_the_exit():
    """PortWatch.stop gives up on a check that never returns (a wedged JACK server) and
    says so, so that serve exits (without closing those ports under the stuck call)."""
    release = threading.Event()

    class Wedged:
        virtual, port_name = False, "riffd in"

        def server_gone(self):
            return False

        def sees(self, name):
            release.wait()  # a driver call that does not come back
            return True

    watch = PortWatch(Wedged(), Wedged(), queue.Queue(), period_s=0.01)
    watch.start()
    time.sleep(0.1)  # a check is under way, and stuck
    assert watch.stop(timeout_s=0.3) is False
    release.set()
    healthy = PortWatch(Wedged(), Wedged(), queue.Queue(), period_s=0.01)
    healthy.start()
    assert healthy.stop(timeout_s=3.0) is True


class Port:
    """A port as PortWatch sees it: named, present or not, reopened when it is back."""

    def __init__(self, name, virtual=False):
        self.port_name, self.virtual, self.present, self.suspended = name, virtual, True, False

    def server_gone(self):
        return False

    def sees(self, name):
        return self.present or name == ""

    def suspend(self):
        self.suspended = True

    def reopen(self, fresh_client=False):
        from riffd.bridges.midi import PortError
        if not self.present:
            raise PortError("not back yet")


def drain(events):
    out = []
    while not events.empty():
        out.append(events.get_nowait())
    return out


def test_an_input_that_vanishes_lets_its_keys_up_once():
    """An unplugged keyboard's note-offs never come: All Notes Off on every channel goes
    to the engine once, when the input is found gone, and not at each check after."""
    from riffd.bridges.events import Command, Control
    keyboard, synth, events = Port("Launchkey MIDI 1"), Port("synth in"), queue.Queue()
    watch = PortWatch(keyboard, synth, events)
    watch.check()
    assert drain(events) == []
    keyboard.present = False
    watch.check()
    sent = drain(events)
    assert [(e.channel, e.control, e.value) for e in sent] == [(ch, 123, 0) for ch in range(16)]
    assert all(type(e) is Control for e in sent)
    watch.check()
    assert drain(events) == []  # still gone: said once
    keyboard.present = True
    watch.check()
    assert drain(events) == [] and watch.reconnects == 1  # an input back needs no panic
    synth.present = False
    watch.check()
    assert drain(events) == [] and synth.suspended  # an output gone lets no key up
    synth.present = True
    watch.check()
    assert [type(e) for e in drain(events)] == [Command]  # the panic on the reopened output
