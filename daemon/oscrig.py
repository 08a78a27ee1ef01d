"""What the OSC benchmark and tests share: `riffd serve` on OSC alone as a subprocess,
and a UDP socket that collects every datagram it sends back, parsed by python-osc."""
from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from pythonosc import osc_packet
from pythonosc.udp_client import SimpleUDPClient

from riffd.bridges.osc import widen_receive_buffer

from .liverig import RIFFD



def free_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

# Linux's SO_TIMESTAMPNS (asm-generic/socket.h: 35), which Python's socket module does not
# name: the kernel's receive time of each datagram, as a timespec in ancillary data.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)


class Inbox:
    """A UDP socket on 127.0.0.1 (``port``) collecting every datagram: ``datagrams`` as
    (size in bytes, [(address, params)]) and ``arrivals`` as (monotonic s, address, params).

    An arrival's time is when the kernel took the datagram in (SO_TIMESTAMPNS, Linux),
    so that this process's own wake-up is not counted against riffd; ``read_at`` holds,
    index for index, when this thread read it (the only time where there is no such
    timestamp)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        widen_receive_buffer(self.sock)  # a burst of replies (one /riffd/error per bad datagram)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.stamped = SO_TIMESTAMPNS is not None
        if self.stamped:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.port = self.sock.getsockname()[1]
        self.read_at: list[float] = []
        self.datagrams: list[tuple[int, list]] = []
        self.arrivals: list[tuple[float, str, list]] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osc-inbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary = self.sock.recvmsg(70000, 64)[:2] if self.stamped else (self.sock.recv(70000), ())
            except socket.timeout:
                continue
            read = t = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("@ll", value[:struct.calcsize("@ll")])  # a timespec, CLOCK_REALTIME
                    t = sec + nsec * 1e-9 + (read - time.time())  # moved onto the monotonic clock
            messages = [(m.message.address, list(m.message.params)) for m in osc_packet.OscPacket(data).messages]
            with self.lock:
                self.datagrams.append((len(data), messages))
                self.arrivals += [(t, a, p) for a, p in messages]
                self.read_at += [read] * len(messages)

    def messages(self, address: str | None = None) -> list[tuple[str, list]]:
        with self.lock:
            return [(a, p) for _, a, p in self.arrivals if address is None or a == address]

    def wait(self, address: str, count: int = 1, timeout: float = 5.0, since: int = 0) -> list:
        """Messages to ``address`` after the first ``since``, once ``count`` are there (or
        the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(address)[since:]
            if len(found) >= count:
                return found
            time.sleep(0.002)
        return self.messages(address)[since:]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time (s) of process ``pid`` so far, from Linux's
    /proc/PID/stat (fields 14 and 15, in clock ticks); None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serve_osc(log: Path, *args, ready_timeout: float = 60.0):
    """`riffd serve --midi-api none` on a free OSC port with ``args``, replying to an
    Inbox; yields (python-osc client, inbox, port, process). Raises RuntimeError if it
    does not start; on leaving, stops it with SIGTERM."""
    inbox, port = Inbox(), free_port()
    with open(log, "w") as err:
        proc = subprocess.Popen([*RIFFD, "serve", "--midi-api", "none", "--osc-port", str(port),
                                 "--osc-reply", f"127.0.0.1:{inbox.port}", *args], stderr=err)
    try:
        deadline = time.monotonic() + ready_timeout
        while "ready" not in Path(log).read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"riffd serve did not start: {Path(log).read_text()[-800:]}")
            time.sleep(0.05)
        yield SimpleUDPClient("127.0.0.1", port), inbox, port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        inbox.close()
