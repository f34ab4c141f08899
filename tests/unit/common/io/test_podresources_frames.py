"""The HTTP/2 side of the Pod Resources client against a scripted peer on a unix socket.

The peer reads the client's request, then sends exactly the frames a test lists (PING,
CONTINUATION, padding, GOAWAY, RST_STREAM, oversized frames ...) and records what the client
sends back, so each protocol rule is checked on the wire.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.io import podresources as pr
from common.io.podresources import GrpcStatusError, PodResourcesError

Script = Callable[[socket.socket], None]
Frame = tuple[int, int, int, bytes]


def literal(name: str, value: str) -> bytes:
    """HPACK literal with incremental indexing, new name, no Huffman (short strings only)."""
    return b"\x40" + bytes((len(name),)) + name.encode() + bytes((len(value),)) + value.encode()


def parse_frames(data: bytes) -> list[Frame]:
    frames: list[Frame] = []
    while len(data) >= 9:
        length, frame_type, flags, stream = pr.parse_frame_header(data[:9])
        frames.append((frame_type, flags, stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return frames


def grpc_body(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


OK_HEADERS = literal(":status", "200") + literal("content-type", "application/grpc")
OK_TRAILERS = literal("grpc-status", "0")
SERVER_SETTINGS = pr.frame(pr.SETTINGS, 0, 0, struct.pack(">HI", 0x3, 100))


def ok_answer(message: bytes) -> bytes:
    return (
        SERVER_SETTINGS
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS)
        + pr.frame(pr.DATA, 0, 1, grpc_body(message))
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, OK_TRAILERS)
    )


class Peer:
    """Accepts one connection, reads the request, runs ``script``, records the rest."""

    def __init__(self, path: Path, script: Script) -> None:
        self.path = path
        self.script = script
        self.request = b""
        self.after = bytearray()
        self.release = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = bytearray()
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return bytes(data)
            data += chunk
            frames = parse_frames(bytes(data[len(pr.PREFACE) :]))
            if any(f[0] == pr.DATA and f[1] & pr.FLAG_END_STREAM for f in frames):
                return bytes(data)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                self.request = self._read_request(conn)
                self.script(conn)
                while chunk := conn.recv(65536):
                    self.after += chunk

    def frames_after(self) -> list[Frame]:
        self.thread.join(timeout=10)
        return parse_frames(bytes(self.after))

    def close(self) -> None:
        self.release.set()
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Script], Peer]]:
    peers: list[Peer] = []

    def start(script: Script) -> Peer:
        peer = Peer(tmp_path / f"kubelet{len(peers)}.sock", script)
        peers.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in peers:
            peer.close()


def call(peer: Peer, *, timeout_s: float = 5.0) -> bytes:
    return pr.unary_call(str(peer.path), "List", b"", deadline=time.monotonic() + timeout_s)


def sending(data: bytes) -> Script:
    return lambda conn: conn.sendall(data)


def sending_then_closing(data: bytes) -> Script:
    def script(conn: socket.socket) -> None:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    return script


# --------------------------------------------------------------------------------------------


def test_plain_answer_and_settings_acknowledged(serve):
    peer = serve(sending(ok_answer(b"\x0a\x00")))
    assert call(peer) == b"\x0a\x00"
    assert peer.request.startswith(pr.PREFACE)
    assert (pr.SETTINGS, pr.FLAG_ACK, 0, b"") in peer.frames_after()


def test_ping_is_answered_with_the_same_payload(serve):
    ping = pr.frame(pr.PING, 0, 0, b"12345678")
    ping_ack = pr.frame(pr.PING, pr.FLAG_ACK, 0, b"ignored!")  # NB: an ACK is not answered
    peer = serve(sending(ping + ping_ack + ok_answer(b"x")))
    assert call(peer) == b"x"
    pings = [f for f in peer.frames_after() if f[0] == pr.PING]
    assert pings == [(pr.PING, pr.FLAG_ACK, 0, b"12345678")]


def test_continuation_padding_priority_and_the_dynamic_table(serve):
    block = OK_HEADERS + literal("grpc-encoding", "identity")
    padded_headers = b"\x03" + b"\x00\x00\x00\x00\x10" + block[:10] + b"PPP"
    trailers = literal("grpc-status", "0")
    data = grpc_body(b"hello")
    script = sending(
        SERVER_SETTINGS
        + pr.frame(pr.HEADERS, pr.FLAG_PADDED | pr.FLAG_PRIORITY, 1, padded_headers)
        + pr.frame(pr.CONTINUATION, 0, 1, block[10:20])
        + pr.frame(pr.CONTINUATION, pr.FLAG_END_HEADERS, 1, block[20:])
        + pr.frame(pr.PRIORITY, 0, 1, b"\x00\x00\x00\x00\x10")
        + pr.frame(pr.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1000))
        + pr.frame(0xFA, 0, 0, b"an extension frame type")
        + pr.frame(pr.DATA, pr.FLAG_PADDED, 1, b"\x02" + data[:4] + b"PP")
        + pr.frame(pr.DATA, 0, 1, data[4:])
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, trailers)
    )
    assert call(serve(script)) == b"hello"


def test_trailers_may_reference_the_dynamic_table_of_the_headers(serve):
    # The answer's headers add grpc-status: 0 to the table (index 62); trailers only refer to it.
    headers = literal(":status", "200") + literal("grpc-status", "0")
    script = sending(
        SERVER_SETTINGS
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, headers)
        + pr.frame(pr.DATA, 0, 1, grpc_body(b"z"))
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, b"\xbe")
    )
    assert call(serve(script)) == b"z"


def test_trailers_only_error_surfaces_code_and_message(serve):
    block = literal(":status", "200") + literal("grpc-status", "5")
    block += literal("grpc-message", "pod%20web%20not%20found")
    peer = serve(
        sending(
            SERVER_SETTINGS
            + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, block)
        )
    )
    with pytest.raises(GrpcStatusError) as caught:
        call(peer)
    assert (caught.value.code, caught.value.grpc_message) == (5, "pod web not found")
    assert str(caught.value) == (
        f"kubelet Pod Resources API {peer.path}: List failed with gRPC status NOT_FOUND: "
        "pod web not found"
    )


def test_large_answer_returns_flow_control_credit(serve):
    message = bytes(range(256)) * 3000  # 768000 bytes: more than half of the window
    body = grpc_body(message)
    chunks = [body[i : i + pr.MAX_FRAME_SIZE] for i in range(0, len(body), pr.MAX_FRAME_SIZE)]
    script = sending(
        SERVER_SETTINGS
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS)
        + b"".join(pr.frame(pr.DATA, 0, 1, chunk) for chunk in chunks)
        + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, OK_TRAILERS)
    )
    peer = serve(script)
    assert call(peer) == message
    updates = [f for f in peer.frames_after() if f[0] == pr.WINDOW_UPDATE]
    assert {stream for _, _, stream, _ in updates} == {0, 1}
    credited = sum(struct.unpack(">I", payload)[0] for _, _, s, payload in updates if s == 0)
    assert pr.RECEIVE_WINDOW // 2 <= credited <= len(body)


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (
            pr.frame(pr.GOAWAY, 0, 0, struct.pack(">II", 0, 11) + b"too many pings"),
            "refused the call with GOAWAY (ENHANCE_YOUR_CALM): too many pings",
        ),
        (
            pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS)
            + pr.frame(pr.RST_STREAM, 0, 1, struct.pack(">I", 7)),
            "reset the stream (REFUSED_STREAM)",
        ),
        (pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS), "closed the connection"),
        (
            pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS)
            + pr.frame(pr.DATA, pr.FLAG_END_STREAM, 1, grpc_body(b"")),
            "without gRPC trailers",
        ),
        (b"\x00\x40\x01" + b"\x00" * 6, "exceeds the maximum"),
        (
            pr.frame(pr.HEADERS, 0, 1, OK_HEADERS) + pr.frame(pr.DATA, 0, 1, b""),
            "header block interrupted",
        ),
        (pr.frame(pr.DATA, 0, 1, b"early"), "DATA before the response headers"),
        (pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 3, OK_HEADERS), "unexpected stream 3"),
        (pr.frame(pr.PUSH_PROMISE, pr.FLAG_END_HEADERS, 1, b"\x00\x00\x00\x02"), "frame type 5"),
        (pr.frame(pr.PING, 0, 0, b"short"), "malformed PING"),
        (pr.frame(pr.SETTINGS, 0, 0, b"12345"), "malformed SETTINGS"),
        (
            pr.frame(
                pr.HEADERS,
                pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM,
                1,
                literal(":status", "200") + literal("grpc-status", "x"),
            ),
            "no valid grpc-status",
        ),
        (
            pr.frame(
                pr.HEADERS,
                pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM,
                1,
                literal(":status", "200") + b"\x40\x0bgrpc-status\x01\xb2",  # NB: latin-1 '²'
            ),
            "no valid grpc-status",
        ),
        (
            pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, literal(":status", "404"))
            + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS | pr.FLAG_END_STREAM, 1, OK_TRAILERS),
            "HTTP status 404",
        ),
        (
            pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_HEADERS)
            + pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, OK_TRAILERS),
            "trailers without END_STREAM",
        ),
        (pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, b"\x80"), "index 0"),
    ],
)
def test_protocol_failures_name_the_socket_and_the_cause(serve, answer, text):
    # NB: the peer closes after its frames, so an answer the client wrongly waits on ends in
    # "closed the connection" rather than a timeout.
    peer = serve(sending_then_closing(SERVER_SETTINGS + answer))
    with pytest.raises(PodResourcesError) as caught:
        call(peer)
    assert text in str(caught.value)
    assert str(caught.value).startswith(f"kubelet Pod Resources API {peer.path}: List")
    assert not caught.value.absent


def test_graceful_goaway_still_lets_the_stream_finish(serve):
    goaway = pr.frame(pr.GOAWAY, 0, 0, struct.pack(">II", 1, 0))
    assert call(serve(sending(goaway + ok_answer(b"ok")))) == b"ok"


def test_silent_peer_hits_the_deadline(serve):
    def never(conn: socket.socket) -> None:
        peer.release.wait(10)

    peer = serve(never)
    with pytest.raises(PodResourcesError, match="List: no answer before the deadline"):
        call(peer, timeout_s=0.3)


def test_absent_socket_is_flagged(tmp_path):
    with pytest.raises(PodResourcesError) as caught:
        pr.unary_call(str(tmp_path / "none.sock"), "List", b"", deadline=time.monotonic() + 1)
    assert caught.value.absent
    assert str(caught.value) == (
        f"kubelet Pod Resources API {tmp_path / 'none.sock'}: the socket does not exist"
    )


def test_socket_without_listener(tmp_path):
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    with pytest.raises(PodResourcesError, match="nothing listens on the socket") as caught:
        pr.unary_call(str(path), "List", b"", deadline=time.monotonic() + 1)
    assert not caught.value.absent
