"""``EventStream``: cancel from another thread, release exactly once, and never after release.

The transport here is a real socket pair, so "a reader blocked in recv" is the real thing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Generator, Iterator
from types import SimpleNamespace

import pytest

from common.io.kube import KubernetesApi, KubeUnavailable
from common.io.watch import EventStream, WatchEvent

WAIT_S = 10.0  # NB: an upper bound for a hung test only; nothing asserts on speed.


class Transport:
    """One end of a socket pair read line by line, counting interrupts and releases."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.interrupts = 0
        self.releases = 0
        self.fail_interrupt = False

    def events(self) -> Generator[WatchEvent, None, None]:
        reader = self.sock.makefile("rb")
        try:
            while line := reader.readline():
                yield "ADDED", {"metadata": {"name": line.decode().strip()}}
        finally:
            reader.close()
        raise KubeUnavailable("watch broke off: connection shut down")

    def interrupt(self) -> None:
        self.interrupts += 1
        if self.fail_interrupt:
            raise OSError("already gone")
        self.sock.shutdown(socket.SHUT_RDWR)

    def release(self) -> None:
        self.releases += 1
        self.sock.close()

    def stream(self) -> EventStream:
        return EventStream(self.events(), interrupt=self.interrupt, release=self.release)


@pytest.fixture
def pair() -> Iterator[tuple[Transport, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(WAIT_S)  # NB: a broken cancel fails the test instead of hanging it
    yield Transport(ours), theirs
    ours.close()
    theirs.close()


def _read_in_thread(stream: EventStream) -> tuple[threading.Thread, list[object], threading.Event]:
    outcome: list[object] = []
    first = threading.Event()

    def read() -> None:
        try:
            for event in stream:
                outcome.append(event[1]["metadata"]["name"])
                first.set()
        except Exception as error:
            outcome.append(error)
        finally:
            stream.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, outcome, first


def test_cancel_wakes_a_blocked_reader_whose_stream_then_just_ends(
    pair: tuple[Transport, socket.socket],
) -> None:
    transport, server = pair
    stream = transport.stream()
    reader, outcome, first = _read_in_thread(stream)
    server.sendall(b"a\n")
    assert first.wait(WAIT_S)
    stream.cancel()
    reader.join(WAIT_S)
    assert not reader.is_alive()
    # NB: no KubeUnavailable: the broken connection was the cancel's doing.
    assert outcome == ["a"]
    assert (transport.interrupts, transport.releases) == (1, 1)
    stream.cancel()
    assert transport.interrupts == 1


def test_a_cancelled_stream_yields_nothing_more(pair: tuple[Transport, socket.socket]) -> None:
    transport, server = pair
    server.sendall(b"a\nb\n")
    stream = transport.stream()
    assert next(stream)[1]["metadata"]["name"] == "a"
    stream.cancel()
    assert list(stream) == []
    assert transport.releases == 1


def test_cancel_after_the_stream_ended_leaves_the_transport_alone(
    pair: tuple[Transport, socket.socket],
) -> None:
    transport, server = pair
    server.sendall(b"a\n")
    server.shutdown(socket.SHUT_WR)
    stream = transport.stream()
    with pytest.raises(KubeUnavailable):
        list(stream)
    assert transport.releases == 1
    # NB: a pool may already have lent the released connection to another request.
    stream.cancel()
    assert transport.interrupts == 0


def test_cancel_never_raises(pair: tuple[Transport, socket.socket]) -> None:
    transport, _ = pair
    transport.fail_interrupt = True
    stream = transport.stream()
    stream.cancel()
    assert transport.interrupts == 1
    stream.close()
    stream.close()
    assert transport.releases == 1


def test_an_abandoned_stream_releases_its_transport(pair: tuple[Transport, socket.socket]) -> None:
    transport, server = pair
    server.sendall(b"a\n")
    stream = transport.stream()
    next(stream)
    del stream
    assert transport.releases == 1


def test_official_adapter_interrupt_without_urllib3_shutdown_shuts_the_socket() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(WAIT_S)
    with ours, theirs:
        # NB: urllib3 < 2.3: a response with a connection but no shutdown() of its own.
        response = SimpleNamespace(connection=SimpleNamespace(sock=ours))
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(ours.recv(1)), daemon=True)
        reader.start()
        KubernetesApi._interrupt_response(response)
        reader.join(WAIT_S)
        assert not reader.is_alive()
        assert received == [b""]
