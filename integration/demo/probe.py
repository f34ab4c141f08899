"""The traffic end of the demo: run inside a Pod's network namespace with ``ip netns exec``.

Why it exists: the demo must prove that a Service's endpoint is reachable over the interface the
Service selected, with nothing but Python on the machine (no ``ping`` or ``nc`` package needed).

* ``serve --pod NAME --port P...``: a TCP server answering every connection with ``NAME\\n``,
  so the client can tell *which* Pod it reached. Prints ``serving`` once listening.
* ``check ADDRESS PORT``: one ICMP echo (a raw socket, as ``ping`` does as root) and one TCP
  connect that reads the answer; prints one JSON line ``{"ping_ms": float|null, "reply": str|null,
  "error": str}``.

The trailing ``--marker`` argument is ignored; it only puts the demo's work dir into the
command line, so ``host.leftover_processes`` finds these processes if a run is interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
TIMEOUT_S = 2.0


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, identifier, sequence)
    checksum = icmp_checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum, identifier, sequence) + payload


def is_echo_reply(packet: bytes, identifier: int, sequence: int) -> bool:
    """Whether a raw IPv4 packet is the reply to our echo request."""
    header_length = (packet[0] & 0x0F) * 4
    icmp = packet[header_length : header_length + 8]
    if len(icmp) < 8:
        return False
    kind, _code, _checksum, got_id, got_seq = struct.unpack("!BBHHH", icmp)
    return bool(kind == ICMP_ECHO_REPLY and got_id == identifier and got_seq == sequence)


def ping(address: str, timeout_s: float = TIMEOUT_S) -> float:
    """Round-trip time in ms of one ICMP echo to ``address``; raises OSError/TimeoutError."""
    identifier = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        started = time.monotonic()
        sock.sendto(echo_request(identifier, 1, b"danm-demo"), (address, 0))
        deadline = started + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                break
            packet, (source, _) = sock.recvfrom(2048)
            if source == address and is_echo_reply(packet, identifier, 1):
                return (time.monotonic() - started) * 1000
    raise TimeoutError(f"no echo reply from {address} within {timeout_s:g} s")


def tcp_reply(address: str, port: int, timeout_s: float = TIMEOUT_S) -> str:
    """Connect to ``address:port`` and return the first line the server sends."""
    with socket.create_connection((address, port), timeout=timeout_s) as sock:
        return sock.makefile("r", encoding="utf-8").readline().strip()


def check(address: str, port: int) -> dict[str, object]:
    outcome: dict[str, object] = {"ping_ms": None, "reply": None, "error": ""}
    errors: list[str] = []
    try:
        outcome["ping_ms"] = round(ping(address), 3)
    except OSError as error:  # NB: TimeoutError is an OSError
        errors.append(f"ping: {error}")
    try:
        outcome["reply"] = tcp_reply(address, port)
    except OSError as error:
        errors.append(f"tcp: {error}")
    outcome["error"] = "; ".join(errors)
    return outcome


def serve(pod: str, ports: Sequence[int]) -> None:
    listeners = []
    for port in ports:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(16)
        listeners.append(listener)
    answer = f"{pod}\n".encode()

    def answer_forever(listener: socket.socket) -> None:
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(answer)

    for listener in listeners[1:]:
        threading.Thread(target=answer_forever, args=(listener,), daemon=True).start()
    print("serving", flush=True)
    answer_forever(listeners[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integration.demo.probe")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve")
    serving.add_argument("--pod", required=True)
    serving.add_argument("--port", type=int, action="append", required=True)
    checking = commands.add_parser("check")
    checking.add_argument("address")
    checking.add_argument("port", type=int)
    for sub in (serving, checking):
        sub.add_argument("--marker", default="")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.pod, args.port)
        return 0
    print(json.dumps(check(args.address, args.port)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
