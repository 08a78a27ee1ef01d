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
