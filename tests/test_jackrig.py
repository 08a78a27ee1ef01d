"""The JACK test rig itself: a recorder closed while notes flood into it never crashes
the process (RtMidi's cancelCallback does not wait for a callback already running)."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.jack

FLOOD = r"""
import time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="riffd-test-flood")
out.open_virtual_port("flood")
while True:
    for _ in range(20):
        out.send_message([0x90, 60, 90])
    time.sleep(0.0005)
"""

CLOSER = r"""
import sys, time, rtmidi
from riffd.bridges.jackrig import close_midi_in, wait_for_port
got = []
for _ in range(int(sys.argv[1])):
    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="riffd-test-closer")
    midi_in.open_port(wait_for_port(midi_in, "flood"))
    midi_in.set_callback(lambda message, _=None: got.append(message[0]))
    time.sleep(0.01)
    close_midi_in(midi_in)
    close_midi_in(midi_in)  # a second close is a no-op
    [object() for _ in range(1000)]  # allocations that meet a freed callback tuple
print(len(got))
"""


def test_closing_a_flooded_recorder_never_crashes(jack):
    """With cancel_callback, close_port and delete in a row instead, the same loop segfaulted
    (twice in two tries) or hung; with cancel_callback, 50 ms and then the close, it
    segfaulted once in a fresh clone's `make test` (the callback's data read as NULL)."""
    flood = subprocess.Popen([sys.executable, "-c", FLOOD], stderr=subprocess.DEVNULL)
    try:
        run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CLOSER, "250"],
                             capture_output=True, text=True, timeout=150)
    finally:
        flood.kill()
        flood.wait()
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.strip()) > 1000  # the flood did reach the callbacks
