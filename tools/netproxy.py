"""A loopback TCP proxy that adds latency, caps bandwidth and injects faults.

For benchmarks and tests: put it between a client and a server on 127.0.0.1 and the client
sees a network with a round-trip time, a bandwidth, and connections that can be cut (reset) or
stalled (a partition: nothing arrives any more, the sockets stay open).

    with Proxy("127.0.0.1", 22, delay_ms=40) as proxy:     # 80 ms round-trip time
        subprocess.run(["ssh", "-p", str(proxy.port), ...])
        print(proxy.stats.round_trips, proxy.stats.bytes_c2s, proxy.stats.bytes_s2c)

The model, per connection and per direction (client->server "c2s", server->client "s2c"):

* latency: a byte read from one side at time t is written to the other at t + delay (plus its
  transmission time when the bandwidth is capped). Data is pipelined: a stream of chunks keeps
  its throughput, only shifted by the delay.
* bandwidth: a link of ``bandwidth_bytes_per_s`` per direction; a chunk occupies the link for
  size / bandwidth seconds after the previous one left it.
* window: the proxy holds at most ``window_bytes`` per direction (read but not yet written);
  beyond that it stops reading, so a fast sender is slowed down as TCP would slow it.
* TCP's handshake: with a delay, the upstream connection is opened 3 one-way delays after the
  client connected, when a real server would accept it; so connecting costs the client one
  round trip before the server's first byte reaches it, as on a real network.
* round trips: each time the flow of a connection turns from c2s to s2c (the proxy read data
  from the server after the last data it read came from the client); summed over connections.
  This counts request/response turns; a streaming upload that the server acknowledges while
  it flows (SSH window adjustments) counts a turn for every acknowledgement too.

Faults (each per connection; the counters and clocks start when the client connects):

* ``cut_after_bytes=N``: once N bytes went in ``cut_direction`` ("c2s", "s2c" or "any":
  either direction), both sockets are reset (RST); bytes after the N-th are not forwarded.
* ``cut_at_seconds=S``: the connection is reset S seconds after the client connected.
* ``faulty_connections=K``: only the first K connections get the faults above; later ones
  (a client reconnecting after a cut) pass untouched. None (the default): every connection.
* ``stall_after_bytes=N``: once N bytes went in ``stall_direction``, nothing more is forwarded
  either way, but both sockets stay open (the proxy reads and drops what arrives) until the
  proxy closes or ``cut()`` is called.

``cut()`` resets every open connection now; ``stall()`` partitions every open connection now.
New connections are still accepted after either.

Stdlib only. One thread runs a selector loop for the listening socket and every connection;
``close()`` (or leaving the ``with`` block) stops it and closes every socket.

Command line, for manual use (prints the port it listens on, then runs until Ctrl-C):

    python tools/netproxy.py --listen 0 --upstream 127.0.0.1:22 --delay-ms 40
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import errno
import heapq
import itertools
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Literal

__all__ = ["Direction", "Proxy", "ProxyError", "ProxyStats", "main"]

Direction = Literal["c2s", "s2c", "any"]
DIRECTIONS: tuple[Direction, ...] = ("c2s", "s2c", "any")

READ_SIZE = 65536
DEFAULT_WINDOW = 4 * 1024 * 1024
CONNECT_TIMEOUT = 10.0


class ProxyError(RuntimeError):
    """The proxy could not start, or was used wrongly."""


@dataclasses.dataclass(frozen=True)
class ProxyStats:
    """What went through the proxy (a snapshot). Bytes count what was forwarded."""

    connections: int = 0  # accepted since start (or the last reset_stats)
    active: int = 0  # open right now
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    round_trips: int = 0  # c2s -> s2c turns, summed over connections
    cuts: int = 0  # connections reset by a fault or cut()
    stalls: int = 0  # connections partitioned by a fault or stall()
    dropped_bytes: int = 0  # read from a stalled or cut connection and thrown away
    upstream_failures: int = 0  # connections whose upstream could not be reached


# --------------------------------------------------------------------------- internals

_EOF = object()  # queued after the last chunk of a direction: shut the destination's write side
_RST = object()  # queued when a side reset its connection: reset the other side too


class _Pipe:
    """One direction of a connection: what was read from ``src`` and is due for ``dst``."""

    def __init__(self, name: Literal["c2s", "s2c"]) -> None:
        self.name = name
        self.counter = f"bytes_{name}"
        self.queue: collections.deque[tuple[float, bytes | object]] = collections.deque()
        self.out = bytearray()  # due, not yet accepted by dst
        self.queued = 0  # bytes in queue + out
        self.link_free = 0.0  # when the capped link is free again
        self.last_due = 0.0  # due times never go backwards
        self.read_eof = False  # src said EOF (or failed)
        self.shut = False  # dst's write side was shut down
        self.passed = 0  # bytes read and accepted for forwarding
        self.armed: float | None = None  # due time of the pending wake-up for the queue's head


class _Conn:
    def __init__(self, cid: int, client: socket.socket, accepted: float) -> None:
        self.id = cid
        self.client = client
        self.upstream: socket.socket | None = None
        self.accepted = accepted
        self.connect_at = accepted  # when the upstream connection is started
        self.connecting = False
        self.connected = False
        self.c2s = _Pipe("c2s")
        self.s2c = _Pipe("s2c")
        self.last_dir: str | None = None
        self.stalled = False
        self.cut_pending_at: float | None = None  # a cut scheduled behind the last good bytes
        self.masks: dict[str, int] = {"client": 0, "upstream": 0}  # what each socket waits for
        self.faulty = True  # the configured faults apply to this connection
        self.closed = False

    def src_dst(self, pipe: _Pipe) -> tuple[socket.socket | None, socket.socket | None]:
        if pipe.name == "c2s":
            return self.client, self.upstream
        return self.upstream, self.client


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream_host:upstream_port``. See the module doc."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        delay_ms: float = 0,
        bandwidth_bytes_per_s: float | None = None,
        cut_after_bytes: int | None = None,
        cut_direction: Direction = "c2s",
        cut_at_seconds: float | None = None,
        stall_after_bytes: int | None = None,
        stall_direction: Direction = "c2s",
        window_bytes: int = DEFAULT_WINDOW,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        handshake: bool = True,
        faulty_connections: int | None = None,
    ) -> None:
        if delay_ms < 0:
            raise ProxyError("delay_ms must be >= 0")
        if bandwidth_bytes_per_s is not None and bandwidth_bytes_per_s <= 0:
            raise ProxyError("bandwidth_bytes_per_s must be > 0")
        for name, value in (
            ("cut_after_bytes", cut_after_bytes),
            ("stall_after_bytes", stall_after_bytes),
        ):
            if value is not None and value < 0:
                raise ProxyError(f"{name} must be >= 0")
        for name, direction in (
            ("cut_direction", cut_direction),
            ("stall_direction", stall_direction),
        ):
            if direction not in DIRECTIONS:
                raise ProxyError(f"{name} must be one of {', '.join(DIRECTIONS)}")
        if faulty_connections is not None and faulty_connections < 0:
            raise ProxyError("faulty_connections must be >= 0")
        if window_bytes < 1:
            raise ProxyError("window_bytes must be >= 1")
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay_ms / 1000.0
        self.bandwidth = bandwidth_bytes_per_s
        self.cut_after_bytes = cut_after_bytes
        self.cut_direction: Direction = cut_direction
        self.cut_at_seconds = cut_at_seconds
        self.stall_after_bytes = stall_after_bytes
        self.stall_direction: Direction = stall_direction
        self.handshake = handshake
        self.faulty_connections = faulty_connections
        # A capped link needs no more in flight than its bandwidth-delay product (plus slack).
        if bandwidth_bytes_per_s is not None:
            bdp = int(bandwidth_bytes_per_s * (2 * self.delay + 0.05))
            window_bytes = min(window_bytes, max(bdp, 16384))
        self.window = window_bytes
        # Split reads so a capped link delivers smoothly (about 5 ms of data per slice).
        self.slice = READ_SIZE
        if bandwidth_bytes_per_s is not None:
            self.slice = int(min(READ_SIZE, max(512, bandwidth_bytes_per_s * 0.005)))

        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()  # ProxyStats fields
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._timers: list[tuple[float, int, int]] = []  # (when, seq, conn id): wake-ups
        self._timer_seq = itertools.count()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._closed = False

        self._selector = selectors.DefaultSelector()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((listen_host, listen_port))
            self._listener.listen(128)
            self._listener.settimeout(0.0)
        except OSError as e:
            self._listener.close()
            self._selector.close()
            raise ProxyError(f"cannot listen on {listen_host}:{listen_port}: {e}") from e
        self.host: str = listen_host
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.settimeout(0.0)
        self._wake_w.settimeout(0.0)
        self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    # -- public API

    def start(self) -> Proxy:
        """Start forwarding (``with Proxy(...)`` does it). Returns self."""
        if self._closed:
            raise ProxyError("the proxy was closed")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"netproxy:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop: close the listening socket and every connection, join the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._call(self._shutdown)
            self._thread.join(timeout=10)
            if self._thread.is_alive():  # pragma: no cover - a bug, not a condition
                raise ProxyError("the proxy thread did not stop")
            self._thread = None
        else:
            self._shutdown()
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        with contextlib.suppress(Exception):
            self._selector.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect."""
        return self.host, self.port

    @property
    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(**self._counts, active=len(self._conns))

    def reset_stats(self) -> ProxyStats:
        """Return the counters and start them again from zero (open connections keep going)."""
        with self._lock:
            before = ProxyStats(**self._counts, active=len(self._conns))
            self._counts = collections.Counter()
        return before

    def cut(self) -> None:
        """Reset every open connection now (both sides get a RST)."""
        self._call(self._cut_all, wait=True)

    def stall(self) -> None:
        """Partition every open connection now: nothing more is forwarded, sockets stay open."""
        self._call(self._stall_all, wait=True)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no connection is open; True when that happened within ``timeout``.

        Connections the kernel completed but the proxy has not accepted yet are accepted
        first, so they are waited for (and counted) too.
        """
        deadline = time.monotonic() + timeout
        self._call(self._accept, wait=True)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    return True
            time.sleep(0.01)
        return False

    # -- plumbing between threads

    def _call(self, fn: Callable[[], None], *, wait: bool = False) -> None:
        """Run ``fn`` on the proxy thread (or here when it is not running)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            fn()
            return
        done = threading.Event()

        def command() -> None:
            try:
                fn()
            finally:
                done.set()

        self._commands.append(command)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if wait:
            done.wait(timeout=10)

    def _add(self, name: str, delta: int = 1) -> None:
        with self._lock:
            self._counts[name] += delta

    # -- the loop

    def _run(self) -> None:
        try:
            while not self._closing:
                timeout = self._next_timeout()
                events = self._selector.select(timeout)
                for key, mask in events:
                    self._dispatch(key.data, mask)
                while self._commands:
                    self._commands.popleft()()
                self._service_all()
        except BaseException:  # pragma: no cover - a bug: leave nothing open behind it
            self._shutdown()
            raise

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        while self._timers:
            when, _, cid = self._timers[0]
            if cid not in self._conns:
                heapq.heappop(self._timers)
                continue
            return max(0.0, when - now)
        return None

    def _timer(self, when: float, conn: _Conn) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), conn.id))

    def _dispatch(self, tag: object, mask: int) -> None:
        if tag == "listen":
            self._accept()
        elif tag == "wake":
            with contextlib.suppress(OSError):
                self._wake_r.recv(4096)
        elif isinstance(tag, tuple):
            cid, role = tag
            conn = self._conns.get(cid)
            if conn is None:
                return
            if role == "upstream" and conn.connecting and mask & selectors.EVENT_WRITE:
                self._finish_connect(conn)
            if conn.closed:
                return
            if mask & selectors.EVENT_READ:
                pipe = conn.c2s if role == "client" else conn.s2c
                self._read(conn, pipe)
            if not conn.closed and mask & selectors.EVENT_WRITE:
                pipe = conn.s2c if role == "client" else conn.c2s
                self._write(conn, pipe)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            client.settimeout(0.0)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            now = time.monotonic()
            conn = _Conn(next(self._ids), client, now)
            conn.faulty = self.faulty_connections is None or conn.id <= self.faulty_connections
            conn.connect_at = now + (3 * self.delay if self.handshake else 0.0)
            with self._lock:
                self._conns[conn.id] = conn
                self._counts["connections"] += 1
            if self.cut_at_seconds is not None and conn.faulty:
                self._timer(now + self.cut_at_seconds, conn)
            if conn.connect_at > now:
                self._timer(conn.connect_at, conn)
            else:
                self._start_connect(conn)
            self._update_interest(conn)

    def _start_connect(self, conn: _Conn) -> None:
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.settimeout(0.0)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.upstream = up
        conn.connecting = True
        err = up.connect_ex(self.upstream)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self._add("upstream_failures")
            self._close_conn(conn, reset=True)
            return
        self._timer(time.monotonic() + CONNECT_TIMEOUT, conn)
        if err == 0:
            self._finish_connect(conn)

    def _finish_connect(self, conn: _Conn) -> None:
        assert conn.upstream is not None
        err = conn.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        conn.connecting = False
        if err != 0:
            self._add("upstream_failures")
            self._close_conn(conn, reset=True)
            return
        conn.connected = True
        now = time.monotonic()
        for pipe in (conn.c2s, conn.s2c):  # what the client sent meanwhile may be due already
            self._write(conn, pipe)
            if conn.closed:
                return
            self._arm(conn, pipe, now)
        self._update_interest(conn)

    # -- reading, scheduling, writing

    def _read(self, conn: _Conn, pipe: _Pipe) -> None:
        src, _ = conn.src_dst(pipe)
        if src is None or pipe.read_eof:
            return
        try:
            data: bytes | None = src.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = None  # reset by the peer: pass the reset on
        now = time.monotonic()
        if conn.stalled or conn.cut_pending_at is not None:
            self._drop(conn, pipe, data)
        elif not data:
            self._end(conn, pipe, now, reset=data is None)
        else:
            self._forward(conn, pipe, data, now)
        self._update_interest(conn)

    def _drop(self, conn: _Conn, pipe: _Pipe, data: bytes | None) -> None:
        """A partitioned (or doomed) connection: what arrives is lost, a close too."""
        if data:
            self._add("dropped_bytes", len(data))
            return
        pipe.read_eof = True
        if conn.c2s.read_eof and conn.s2c.read_eof:
            self._close_conn(conn, reset=False)

    def _end(self, conn: _Conn, pipe: _Pipe, now: float, *, reset: bool) -> None:
        """The source closed (or reset): pass that on after the data before it."""
        pipe.read_eof = True
        due = max(now + self.delay, pipe.last_due)
        pipe.queue.append((due, _RST if reset else _EOF))
        pipe.last_due = due
        self._write(conn, pipe)
        self._arm(conn, pipe, now)

    def _forward(self, conn: _Conn, pipe: _Pipe, data: bytes, now: float) -> None:
        """Schedule ``data`` for the other side; faults decide how much of it passes."""
        passing, fault = self._apply_limits(conn, pipe, len(data))
        if passing < len(data):
            self._add("dropped_bytes", len(data) - passing)
        data = data[:passing]
        if data:
            if pipe.name == "s2c" and conn.last_dir == "c2s":
                self._add("round_trips")
            conn.last_dir = pipe.name
            pipe.passed += len(data)
            self._add(pipe.counter, len(data))
            self._enqueue(pipe, data, now)
            self._write(conn, pipe)
            if conn.closed:
                return
            self._arm(conn, pipe, now)
        if fault == "cut":
            when = max(now + self.delay, pipe.last_due)
            conn.cut_pending_at = when
            self._timer(when, conn)
        elif fault == "stall":
            self._stall(conn)

    def _apply_limits(self, conn: _Conn, pipe: _Pipe, size: int) -> tuple[int, str | None]:
        """How many of ``size`` new bytes pass, and which fault (if any) they trigger."""
        passing, fault = size, None
        if not conn.faulty:
            return passing, fault
        for limit, direction, kind in (
            (self.cut_after_bytes, self.cut_direction, "cut"),
            (self.stall_after_bytes, self.stall_direction, "stall"),
        ):
            if limit is None:
                continue
            if direction == "any":
                done = conn.c2s.passed + conn.s2c.passed
            elif direction == pipe.name:
                done = pipe.passed
            else:
                continue
            room = max(0, limit - done)
            if room <= passing and (room < passing or fault is None):
                passing, fault = room, kind
        return passing, fault

    def _enqueue(self, pipe: _Pipe, data: bytes, now: float) -> None:
        for start in range(0, len(data), self.slice):
            piece = data[start : start + self.slice]
            if self.bandwidth is not None:
                begin = max(now, pipe.link_free)
                pipe.link_free = begin + len(piece) / self.bandwidth
                due = pipe.link_free + self.delay
            else:
                due = now + self.delay
            due = max(due, pipe.last_due)
            pipe.last_due = due
            pipe.queue.append((due, piece))
            pipe.queued += len(piece)

    def _arm(self, conn: _Conn, pipe: _Pipe, now: float) -> None:
        """Make sure a wake-up is pending for the head of ``pipe``'s queue."""
        if not pipe.queue:
            return
        due = pipe.queue[0][0]
        if due <= now:
            return  # due already: written as soon as the destination takes it
        if pipe.armed is None or pipe.armed <= now or due < pipe.armed:
            pipe.armed = due
            self._timer(due, conn)

    def _service_all(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, cid = heapq.heappop(self._timers)
            conn = self._conns.get(cid)
            if conn is None or conn.closed:
                continue
            self._service(conn, now)

    def _service(self, conn: _Conn, now: float) -> None:
        cut_at = self.cut_at_seconds
        if cut_at is not None and conn.faulty and now >= conn.accepted + cut_at:
            self._cut(conn)
            return
        if conn.cut_pending_at is not None and now >= conn.cut_pending_at:
            # the bytes before the cut are due by now: flush what the sockets take, then reset
            for pipe in (conn.c2s, conn.s2c):
                self._move_due(pipe, now)
                self._write(conn, pipe)
            if not conn.closed:
                self._cut(conn)
            return
        if not conn.connected and not conn.connecting and conn.upstream is None:
            if now >= conn.connect_at:
                self._start_connect(conn)
            if conn.closed:
                return
        if conn.connecting and now >= conn.connect_at + CONNECT_TIMEOUT:
            self._add("upstream_failures")
            self._close_conn(conn, reset=True)
            return
        for pipe in (conn.c2s, conn.s2c):
            self._write(conn, pipe)
            if conn.closed:
                return
            self._arm(conn, pipe, now)
        self._update_interest(conn)

    def _move_due(self, pipe: _Pipe, now: float) -> None:
        """Move the chunks that are due into the output buffer (markers stay queued)."""
        while pipe.queue and pipe.queue[0][0] <= now and isinstance(pipe.queue[0][1], bytes):
            _, piece = pipe.queue.popleft()
            assert isinstance(piece, bytes)
            pipe.out += piece

    def _write(self, conn: _Conn, pipe: _Pipe) -> None:
        """Write what is due to ``pipe``'s destination; carry out a due EOF or reset."""
        if not conn.connected or conn.closed:
            return
        _, dst = conn.src_dst(pipe)
        assert dst is not None
        now = time.monotonic()
        self._move_due(pipe, now)
        if pipe.out:
            try:
                sent = dst.send(pipe.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close_conn(conn, reset=True)
                return
            del pipe.out[:sent]
            pipe.queued -= sent
        if not pipe.out and pipe.queue and pipe.queue[0][0] <= now:
            _, marker = pipe.queue.popleft()
            if marker is _RST:
                self._close_conn(conn, reset=True)
                return
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            pipe.shut = True
            if conn.c2s.shut and conn.s2c.shut:
                self._close_conn(conn, reset=False)
                return
        self._update_interest(conn)

    def _update_interest(self, conn: _Conn) -> None:
        """Register each socket for what it is waiting for now."""
        if conn.closed:
            return
        for sock, role in ((conn.client, "client"), (conn.upstream, "upstream")):
            if sock is None:
                continue
            mask = self._mask(conn, role)
            before = conn.masks[role]
            if mask == before:
                continue
            try:
                if mask == 0:
                    self._selector.unregister(sock)
                elif before == 0:
                    self._selector.register(sock, mask, (conn.id, role))
                else:
                    self._selector.modify(sock, mask, (conn.id, role))
            except (ValueError, KeyError, OSError):
                self._close_conn(conn, reset=True)
                return
            conn.masks[role] = mask

    def _mask(self, conn: _Conn, role: str) -> int:
        """The selector events one socket of ``conn`` waits for."""
        inbound, outbound = (conn.c2s, conn.s2c) if role == "client" else (conn.s2c, conn.c2s)
        if role == "upstream" and conn.connecting:
            return selectors.EVENT_WRITE  # the connect's outcome
        if role == "upstream" and not conn.connected:
            return 0
        mask = 0
        # read unless the window is full (a stalled connection reads and drops)
        if not inbound.read_eof and (conn.stalled or inbound.queued < self.window):
            mask |= selectors.EVENT_READ
        if conn.connected and outbound.out:
            mask |= selectors.EVENT_WRITE
        return mask

    # -- faults and closing

    def _stall(self, conn: _Conn) -> None:
        if conn.stalled:
            return
        conn.stalled = True
        self._add("stalls")
        # what was already in flight is still delivered; nothing read from now on is
        self._update_interest(conn)

    def _stall_all(self) -> None:
        for conn in list(self._conns.values()):
            self._stall(conn)

    def _cut(self, conn: _Conn) -> None:
        self._add("cuts")
        self._close_conn(conn, reset=True)

    def _cut_all(self) -> None:
        for conn in list(self._conns.values()):
            self._cut(conn)

    def _close_conn(self, conn: _Conn, *, reset: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        for sock in (conn.client, conn.upstream):
            if sock is None:
                continue
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)
            if reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            self._conns.pop(conn.id, None)

    def _shutdown(self) -> None:
        self._closing = True
        for conn in list(self._conns.values()):
            self._close_conn(conn, reset=True)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(self._listener)
        self._listener.close()


# --------------------------------------------------------------------------- command line


def _host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    try:
        return host or default_host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port or HOST:PORT: {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="netproxy",
        description="A loopback TCP proxy with latency, a bandwidth cap and fault injection. "
        "Prints the port it listens on, then forwards until Ctrl-C and prints its counters.",
    )
    parser.add_argument(
        "--listen",
        type=_host_port,
        default=("127.0.0.1", 0),
        help="PORT or HOST:PORT to listen on (0: a free port; default 0)",
    )
    parser.add_argument(
        "--upstream", type=_host_port, required=True, help="HOST:PORT to forward to"
    )
    parser.add_argument("--delay-ms", type=float, default=0, help="one-way delay, per direction")
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        metavar="BYTES_PER_S",
        help="bandwidth cap per direction",
    )
    parser.add_argument("--cut-after-bytes", type=int, default=None)
    parser.add_argument("--cut-direction", choices=DIRECTIONS, default="c2s")
    parser.add_argument("--cut-at-seconds", type=float, default=None)
    parser.add_argument("--stall-after-bytes", type=int, default=None)
    parser.add_argument("--stall-direction", choices=DIRECTIONS, default="c2s")
    parser.add_argument(
        "--faulty-connections",
        type=int,
        default=None,
        metavar="K",
        help="apply the faults to the first K connections only",
    )
    args = parser.parse_args(argv)
    try:
        proxy = Proxy(
            args.upstream[0],
            args.upstream[1],
            delay_ms=args.delay_ms,
            bandwidth_bytes_per_s=args.bandwidth,
            cut_after_bytes=args.cut_after_bytes,
            cut_direction=args.cut_direction,
            cut_at_seconds=args.cut_at_seconds,
            stall_after_bytes=args.stall_after_bytes,
            stall_direction=args.stall_direction,
            faulty_connections=args.faulty_connections,
            listen_host=args.listen[0],
            listen_port=args.listen[1],
        )
    except ProxyError as e:
        print(f"netproxy: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with proxy:
        print(proxy.port, flush=True)
        print(
            f"netproxy: 127.0.0.1:{proxy.port} -> {args.upstream[0]}:{args.upstream[1]}, "
            f"delay {args.delay_ms:g} ms each way; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        s = proxy.stats
    print(
        f"netproxy: {s.connections} connections, {s.bytes_c2s} bytes client->server, "
        f"{s.bytes_s2c} bytes server->client, {s.round_trips} round trips, {s.cuts} cut, "
        f"{s.stalls} stalled",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
