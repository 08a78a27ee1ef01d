"""The OSC bridge: UDP datagrams in, riffd's events out, and replies back (python-osc).

Translation only: a reader thread parses each datagram with python-osc, checks every
message against the command table (bridges/osctable.py: address, argument types, bounds) and
puts one event per message on the engine's queue, stamped with its arrival time
(monotonic s); bundle time tags are ignored (everything is "now"). A datagram that
does not parse, a wrong type, an unknown address or a size over the bounds is answered
with ``/riffd/error <address> <reason>`` and skipped. Senders outside ``allow`` are
dropped and counted. Replies go to ``reply_to`` if given, else to the sender.

Bounds: a datagram up to ``MAX_DATAGRAM`` bytes, bundles nested ``MAX_BUNDLE_DEPTH``
deep, ``MAX_MESSAGES`` messages each; replies are packed into bundles of at most
``SAFE_DATAGRAM`` bytes (below Ethernet's 1,500-byte MTU less IP and UDP headers, so
no reply is fragmented; RFC 8085 section 3.2).
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
import time
from typing import Callable, Iterable

from pythonosc import osc_bundle_builder, osc_message_builder, osc_packet

from .osctable import OscInputError, check, translate
from .realtime import make_realtime

SAFE_DATAGRAM = 1400
MAX_DATAGRAM = 65507   # the largest UDP payload over IPv4
MAX_BUNDLE_DEPTH = 4
MAX_MESSAGES = 64
RECEIVE_BUFFER = 1 << 20  # bytes asked for the socket (the kernel may cap it: net.core.rmem_max)
log = logging.getLogger("riffd.bridges")


def bundle_depth(data: bytes, limit: int) -> int:
    """How deep bundles nest in ``data`` (0: a message), counting at most ``limit`` + 1;
    python-osc parses nesting by recursion, so depth is checked before parsing."""
    stack, depth = [(data, 1)], 0
    while stack:
        chunk, level = stack.pop()
        if not chunk.startswith(b"#bundle\0"):
            continue
        depth = max(depth, level)
        if depth > limit:
            return depth
        i = 16
        while i + 4 <= len(chunk):
            size = struct.unpack(">i", chunk[i:i + 4])[0]
            if size <= 0:
                break
            stack.append((chunk[i + 4:i + 4 + size], level + 1))
            i += 4 + size
    return depth


def build(path: str, args: Iterable) -> bytes:
    """One OSC message: ints as int32, floats as float32, strings as strings."""
    builder = osc_message_builder.OscMessageBuilder(address=path)
    for value in args:
        kind = "s" if isinstance(value, str) else "i" if isinstance(value, int) else "f"
        builder.add_arg(value, kind)
    return builder.build().dgram


def pack(messages: list[bytes], limit: int = SAFE_DATAGRAM) -> list[bytes]:
    """Bundles of ``messages`` in order, each datagram at most ``limit`` bytes (a message
    too big for a bundle goes alone)."""
    out, current, size = [], [], 16
    for message in messages:
        if current and size + 4 + len(message) > limit:
            out.append(_bundle(current))
            current, size = [], 16
        current.append(message)
        size += 4 + len(message)
    if current:
        out.append(_bundle(current) if len(current) > 1 else current[0])
    return out


def _bundle(messages: list[bytes]) -> bytes:
    from pythonosc.osc_message import OscMessage
    builder = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
    for message in messages:
        builder.add_content(OscMessage(message))
    return builder.build().dgram


def parse_networks(specs: Iterable[str]) -> list:
    """Addresses or networks ("127.0.0.1", "192.168.1.0/24"); raises ValueError."""
    return [ipaddress.ip_network(s.strip(), strict=False) for s in specs if s.strip()]


def widen_receive_buffer(sock: socket.socket) -> None:
    """Ask for ``RECEIVE_BUFFER`` bytes of receive buffer on ``sock``, room for a burst of
    datagrams; where the system refuses, its default (about 200 KB on Linux) stays."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:
        pass


class OscBridge:
    """A UDP socket on ``host``:``port`` (port 0: any free one, see ``address``) that
    puts events on ``queue`` and sends replies.

    ``allow``: networks that may talk to riffd (default: loopback only when ``host`` is
    a loopback address, else everyone). ``reply_to``: (host, port) for every reply.
    ``counts``: datagrams received, dropped (not allowed) and errors answered. The
    reader runs at SCHED_FIFO ``rt_priority`` where granted (``realtime``). Raises
    OSError when the port cannot be bound.
    """

    def __init__(self, queue, host: str = "127.0.0.1", port: int = 9000, allow=None,
                 reply_to: tuple[str, int] | None = None, now: Callable[[], float] = time.monotonic,
                 rt_priority: int = 0):
        self.queue, self.reply_to, self._now = queue, reply_to, now
        self.rt_priority, self.realtime = rt_priority, False  # SCHED_FIFO for the reader (bridges/realtime.py)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        widen_receive_buffer(self.sock)  # for a burst while the reader waits for the GIL
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()[:2]
        if allow is None:
            try:
                loopback = ipaddress.ip_address(self.address[0]).is_loopback
            except ValueError:
                loopback = False
            allow = parse_networks(["127.0.0.0/8", "::1/128"]) if loopback else None
        self.allow = allow
        self.counts = {"received": 0, "dropped": 0, "errors": 0}
        self.last_sender: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="riffd-osc-in", daemon=True)
        self._thread.start()

    def allowed(self, host: str) -> bool:
        if self.allow is None:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.allow)

    def _read(self) -> None:
        self.realtime = make_realtime(self.rt_priority)
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                self.take(data, source[:2])
            except Exception as exc:  # never let one datagram stop the reader
                log.error("OSC datagram from %s failed (%s: %s)", source, type(exc).__name__, exc)

    def take(self, data: bytes, source: tuple[str, int]) -> int:
        """Translate one datagram from ``source``; returns how many events it queued."""
        self.counts["received"] += 1
        if not self.allowed(source[0]):
            self.counts["dropped"] += 1
            return 0
        self.last_sender = source
        t = self._now()
        if len(data) > MAX_DATAGRAM:
            return self._error(source, "", f"datagram over {MAX_DATAGRAM} bytes")
        if bundle_depth(data, MAX_BUNDLE_DEPTH) > MAX_BUNDLE_DEPTH:
            return self._error(source, "", f"bundles nested over {MAX_BUNDLE_DEPTH} deep")
        try:
            messages = osc_packet.OscPacket(data).messages
        except Exception as exc:  # python-osc raises ParseError, or struct/Index/Unicode errors
            return self._error(source, "", f"not an OSC packet ({type(exc).__name__})")
        if len(messages) > MAX_MESSAGES:
            return self._error(source, "", f"{len(messages)} messages in one datagram (at most {MAX_MESSAGES})")
        queued = 0
        for timed in messages:
            message = timed.message
            try:
                args = check(message.address, message.params)
            except OscInputError as exc:
                self._error(source, exc.address, str(exc))
                continue
            self.queue.put(translate(message.address, args, t, source))
            queued += 1
        return queued

    def _error(self, source, address: str, reason: str) -> int:
        self.counts["errors"] += 1
        if self.counts["errors"] <= 10 or self.counts["errors"] % 1000 == 0:
            log.warning("OSC from %s:%s: %s %s (errors so far: %d)", source[0], source[1], address or "(packet)",
                        reason, self.counts["errors"])
        self.send("/riffd/error", [address, reason], source)
        return 0

    def destination(self, source=None) -> tuple[str, int] | None:
        """Where a reply goes: ``reply_to``, else ``source``, else the last sender."""
        return self.reply_to or source or self.last_sender

    def send(self, path: str, args: Iterable, to=None) -> bool:
        """Send one message; False if there is nowhere to send it or the send failed."""
        return self.send_datagrams([build(path, args)], to)

    def send_many(self, messages: list[tuple[str, Iterable]], to=None) -> bool:
        """Send messages in order, bundled into datagrams of at most SAFE_DATAGRAM bytes."""
        return self.send_datagrams(pack([build(p, a) for p, a in messages]), to)

    def send_datagrams(self, datagrams: list[bytes], to=None) -> bool:
        target = self.destination(to)
        if target is None:
            return False
        try:
            for datagram in datagrams:
                self.sock.sendto(datagram, target)
        except OSError as exc:  # the receiver is gone (ICMP port unreachable): not riffd's fault
            log.debug("OSC reply to %s failed: %s", target, exc)
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self.sock.close()
