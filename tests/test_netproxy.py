"""tools/netproxy.py against real loopback servers: latency, bandwidth, round trips, faults.

Timing bounds are generous on purpose (shared, noisy machines): they tell a delay from no
delay and a pipelined stream from a serialised one, nothing finer.
"""

from __future__ import annotations

import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.netproxy import Proxy, ProxyError

REPO = Path(__file__).resolve().parent.parent


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


class _Sink(socketserver.BaseRequestHandler):
    """Counts what arrives; the totals of finished connections land in server.received."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        total = 0
        try:
            while data := sock.recv(65536):
                total += len(data)
        except OSError:
            pass
        self.server.received.append(total)  # type: ignore[attr-defined]


class _Talker(socketserver.BaseRequestHandler):
    """Sends 100 KB as soon as a client connects, then waits for the client to leave."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            sock.sendall(b"s" * 100_000)
            while sock.recv(65536):
                pass
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    received: list[int]


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[_Server]:
    yield from _serve(_Echo)


@pytest.fixture
def sink() -> Iterator[_Server]:
    yield from _serve(_Sink)


@pytest.fixture
def talker() -> Iterator[_Server]:
    yield from _serve(_Talker)


def port(server: _Server) -> int:
    return int(server.server_address[1])


def connect(proxy: Proxy, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def ping(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def gone(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the connection is closed or reset (reading any data left first)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


# --------------------------------------------------------------------------- forwarding


def test_forwards_both_ways_and_counts_bytes(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo)) as proxy, connect(proxy) as sock:
        sock.sendall(b"x" * 200_000)
        assert recv_exactly(sock, 200_000) == b"x" * 200_000
        sock.close()
        assert proxy.wait_idle()
        stats = proxy.stats
    assert stats.bytes_c2s == stats.bytes_s2c == 200_000
    assert stats.connections == 1 and stats.active == 0


def test_delay_is_a_latency_per_direction(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo), delay_ms=60) as proxy, connect(proxy) as sock:
        ping(sock)  # the first one also pays the emulated TCP handshake
        rtts = [ping(sock) for _ in range(3)]
    assert min(rtts) >= 0.110  # 2 x 60 ms, minus timer slack
    assert max(rtts) < 1.0


def test_no_delay_is_fast(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo)) as proxy, connect(proxy) as sock:
        ping(sock)
        assert min(ping(sock) for _ in range(3)) < 0.05


def test_handshake_costs_a_round_trip(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo), delay_ms=50) as proxy, connect(proxy) as sock:
        first = ping(sock)
    assert first >= 0.18  # connect (1 RTT, emulated) + the ping itself (1 RTT)


def test_delay_is_pipelined_not_serialised(echo: _Server) -> None:
    """20 messages 10 ms apart through a 100 ms one-way delay: about 0.4 s, not 4 s."""
    with Proxy("127.0.0.1", port(echo), delay_ms=100) as proxy, connect(proxy) as sock:
        ping(sock)
        start = time.monotonic()
        for _ in range(20):
            sock.sendall(b"m" * 100)
            time.sleep(0.01)
        recv_exactly(sock, 2000)
        elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < 2.0


def test_bulk_throughput_is_not_limited_by_the_delay(echo: _Server) -> None:
    size = 4_000_000
    with Proxy("127.0.0.1", port(echo), delay_ms=50) as proxy, connect(proxy, 20) as sock:
        ping(sock)
        start = time.monotonic()
        reader = threading.Thread(target=recv_exactly, args=(sock, size))
        reader.start()
        sock.sendall(b"b" * size)
        reader.join(timeout=20)
        elapsed = time.monotonic() - start
    assert not reader.is_alive()
    assert elapsed < 3.0  # a per-chunk sleep would take 64 KB chunks x 100 ms = 6 s


def test_bandwidth_cap_is_roughly_respected(sink: _Server) -> None:
    size = 300_000
    with Proxy("127.0.0.1", port(sink), bandwidth_bytes_per_s=1_000_000) as proxy:
        start = time.monotonic()
        with connect(proxy, 20) as sock:
            sock.sendall(b"c" * size)
            sock.shutdown(socket.SHUT_WR)
            assert gone(sock, 20)  # the sink closes once it read everything
        elapsed = time.monotonic() - start
    assert sink.received == [size]
    assert 0.25 <= elapsed < 3.0  # 0.3 s at 1 MB/s


def test_round_trips_of_a_ping_pong(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo), delay_ms=5) as proxy:
        with connect(proxy) as sock:
            for _ in range(7):
                ping(sock)
        with connect(proxy) as sock:
            for _ in range(3):
                ping(sock)
        assert proxy.wait_idle()
        assert proxy.stats.round_trips == 10
        before = proxy.reset_stats()
        assert before.round_trips == 10 and before.connections == 2
        assert proxy.stats.round_trips == 0


def test_a_stream_one_way_is_not_a_round_trip(sink: _Server) -> None:
    with Proxy("127.0.0.1", port(sink)) as proxy:
        with connect(proxy) as sock:
            for _ in range(50):
                sock.sendall(b"s" * 1000)
        assert proxy.wait_idle()
        assert proxy.stats.round_trips == 0
        assert proxy.stats.bytes_c2s == 50_000


def test_concurrent_connections(echo: _Server) -> None:
    results: list[float] = []

    def client() -> None:
        with connect(proxy) as sock:
            results.append(sum(ping(sock) for _ in range(3)))

    with Proxy("127.0.0.1", port(echo), delay_ms=50) as proxy:
        start = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        elapsed = time.monotonic() - start
        assert proxy.wait_idle()
        assert proxy.stats.connections == 6
        assert proxy.stats.round_trips == 18
    assert len(results) == 6
    assert elapsed < 2.0  # serialised would be 6 x (3 + 1) x 100 ms = 2.4 s at the least


# --------------------------------------------------------------------------- faults


def test_cut_after_bytes_client_to_server(sink: _Server) -> None:
    with Proxy("127.0.0.1", port(sink), cut_after_bytes=1000) as proxy:
        with connect(proxy) as sock, pytest.raises(OSError):
            for _ in range(200):  # the reset shows up on a later send (or on recv)
                sock.sendall(b"z" * 500)
                time.sleep(0.005)
            sock.settimeout(5)
            sock.recv(10)
        deadline = time.monotonic() + 5
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = proxy.stats
    assert stats.cuts == 1
    assert stats.bytes_c2s == 1000
    assert sink.received and sink.received[0] <= 1000


def test_cut_after_bytes_server_to_client(talker: _Server) -> None:
    with Proxy("127.0.0.1", port(talker), cut_after_bytes=5000, cut_direction="s2c") as proxy:
        got, reset = 0, False
        try:
            with connect(proxy) as sock:  # the reset may even beat connect()'s return
                sock.settimeout(5)
                while data := sock.recv(65536):
                    got += len(data)
        except ConnectionResetError:
            reset = True
        assert reset, "the connection was closed, not reset"
        assert got <= 5000
        assert proxy.stats.bytes_s2c == 5000
        assert proxy.stats.cuts == 1


def test_cut_at_seconds(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo), cut_at_seconds=0.3) as proxy, connect(proxy) as sock:
        ping(sock)
        start = time.monotonic()
        assert gone(sock, 5)
        assert 0.1 <= time.monotonic() - start < 3.0
        assert proxy.stats.cuts == 1


def test_faulty_connections_spares_later_connections(echo: _Server) -> None:
    """Only the first connection is cut: a client that reconnects gets through."""
    with Proxy("127.0.0.1", port(echo), cut_after_bytes=8, faulty_connections=1) as proxy:
        with connect(proxy) as sock:
            ping(sock, b"abcd")
            sock.sendall(b"efghijkl")
            assert gone(sock, 5)
        with connect(proxy) as sock:
            for _ in range(5):
                ping(sock, b"0123456789")
        assert proxy.stats.cuts == 1


def test_faulty_connections_must_not_be_negative() -> None:
    with pytest.raises(ProxyError, match="faulty_connections"):
        Proxy("127.0.0.1", 9, faulty_connections=-1)


def test_cut_resets_every_connection_and_keeps_accepting(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo)) as proxy:
        socks = [connect(proxy) for _ in range(3)]
        for sock in socks:
            ping(sock)
        proxy.cut()
        assert all(gone(sock, 5) for sock in socks)
        for sock in socks:
            sock.close()
        assert proxy.stats.cuts == 3
        with connect(proxy) as sock:
            ping(sock)


def test_stall_keeps_the_socket_open_and_forwards_nothing(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo), stall_after_bytes=8) as proxy, connect(proxy) as sock:
        ping(sock, b"abcd")
        sock.sendall(b"efgh")  # bytes 5-8 still reach the server; its answer no longer passes
        assert not gone(sock, 0.4)  # no data, no close: a partition
        sock.sendall(b"more")
        assert not gone(sock, 0.2)
        stats = proxy.stats
        assert stats.stalls == 1
        assert stats.bytes_c2s == 8 and stats.bytes_s2c == 4
        assert stats.dropped_bytes >= 4
        proxy.cut()
        assert gone(sock, 5)


def test_stall_now(echo: _Server) -> None:
    with Proxy("127.0.0.1", port(echo)) as proxy, connect(proxy) as sock:
        ping(sock)
        proxy.stall()
        sock.sendall(b"hello")
        assert not gone(sock, 0.3)
        with connect(proxy) as fresh:  # new connections are not partitioned
            ping(fresh)


def test_unreachable_upstream_closes_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with Proxy("127.0.0.1", free) as proxy:
        try:
            with connect(proxy) as sock:
                assert gone(sock, 5)
        except ConnectionResetError:
            pass  # reset before connect() even returned
        assert proxy.stats.upstream_failures == 1


def test_close_leaves_no_thread_and_no_listener(echo: _Server) -> None:
    proxy = Proxy("127.0.0.1", port(echo), delay_ms=20).start()
    sock = connect(proxy)
    ping(sock)
    proxy.close()
    proxy.close()  # idempotent
    assert gone(sock, 5)
    sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("netproxy")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_bad_arguments() -> None:
    with pytest.raises(ProxyError):
        Proxy("127.0.0.1", 1, delay_ms=-1)
    with pytest.raises(ProxyError):
        Proxy("127.0.0.1", 1, cut_direction="up")  # type: ignore[arg-type]


def test_command_line(echo: _Server) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tools/netproxy.py"),
            "--listen",
            "0",
            "--upstream",
            f"127.0.0.1:{port(echo)}",
            "--delay-ms",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        listen = int(process.stdout.readline())
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as sock:
            ping(sock)
            assert ping(sock) >= 0.035
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "1 connections" in err and "round trips" in err
