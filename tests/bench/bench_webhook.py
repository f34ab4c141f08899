"""Admission latency and throughput of the real webhook for a DanmNet CREATE review.

The webhook runs as the real console script (``.venv/bin/webhook``) in its own process, with
certificates from ``webhook certs``, configured against the API stand-in (a DanmNet CREATE makes
no API call, so the stand-in only provides the kubeconfig).

The client models kube-apiserver: 16 keep-alive HTTPS connections (TLS 1.2+, certificate checked
against the CA), each with exactly one review in flight at all times, every review with its own
``uid``. Each review is timed from the first byte sent to the parsed answer, and every answer is
checked: HTTP 200, our ``uid`` echoed, ``allowed: true`` and a non-empty base64 JSONPatch.

NB: client and server share this 2-core machine, so whatever CPU the client burns is taken from
the server; kube-apiserver is a Go process that normally runs elsewhere. The client is therefore
a lean single-threaded loop over non-blocking ``ssl`` sockets (no HTTP library, no asyncio
transport layers): its CPU per review is a fraction of the server's, and both are reported, so
the numbers show what the webhook costs rather than what the load generator costs. The pure
decision (no HTTP) is timed separately to show where the time goes.

Run alone with ``.venv/bin/python -m tests.bench.bench_webhook [--processes N]``; ``make bench``
collects ``run()``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import select
import selectors
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIENTS = 16
WARMUP_REVIEWS = 1_600
MEASURED_REVIEWS = 16_000
PATH = "/netvalidation"
UID_DIGITS = 12
#: Server processes ``make bench`` measures; see ``webhook --processes``.
DEFAULT_PROCESSES = 1
LISTENING = re.compile(r"listening on https://[^\s]+:(\d+)\n")


def _review_template() -> tuple[bytes, bytes]:
    """The review body split around its uid, so each request gets a fresh uid cheaply."""
    marker = "@" * UID_DIGITS
    danmnet = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "bench", "namespace": "default", "uid": "0b7c"},
        "spec": {
            "NetworkID": "bench",
            "Options": {
                "host_device": "ens4",
                "cidr": "10.10.0.0/24",
                "routes": {"10.20.0.0/16": "10.10.0.1"},
                "allocation_pool": {"start": "10.10.0.10", "end": "10.10.0.200"},
            },
        },
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": marker,
            "kind": {"group": "danm.k8s.io", "version": "v1", "kind": "DanmNet"},
            "resource": {"group": "danm.k8s.io", "version": "v1", "resource": "danmnets"},
            "operation": "CREATE",
            "name": "bench",
            "namespace": "default",
            "userInfo": {"username": "admin"},
            "object": danmnet,
            "oldObject": None,
            "dryRun": False,
        },
    }
    before, after = json.dumps(review).split(marker)
    return before.encode(), after.encode()


def _uid(number: int) -> bytes:
    return f"{number:0{UID_DIGITS}d}".encode()


def _review(number: int = 0) -> bytes:
    before, after = _review_template()
    return before + _uid(number) + after


def _script() -> list[str]:
    installed = Path(sys.executable).parent / "webhook"
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", "import sys; from webhook.cli import main; sys.exit(main())"]


def _format_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


# ---------------------------------------------------------------------------------------------
# The load generator


class BadAnswer(RuntimeError):
    pass


@dataclass
class _Connection:
    """One keep-alive HTTPS connection with at most one review in flight."""

    sock: ssl.SSLSocket
    received: bytearray = field(default_factory=bytearray)
    uid: bytes = b""
    started: float = 0.0


def _check_answer(head: bytes, body: bytes, uid: bytes) -> None:
    if not head.startswith(b"HTTP/1.1 200 "):
        raise BadAnswer(f"HTTP status is not 200: {head[:80]!r} {body[:300]!r}")
    answer = json.loads(body)
    response = answer["response"]
    if response["uid"] != uid.decode():
        raise BadAnswer(f"the answer's uid {response['uid']!r} is not the request's {uid!r}")
    if response["allowed"] is not True:
        raise BadAnswer(f"the benchmark review was denied: {answer}")
    if response.get("patchType") != "JSONPatch":
        raise BadAnswer(f"the answer has no JSONPatch: {answer}")
    patch = json.loads(base64.b64decode(response["patch"]))
    if not isinstance(patch, list) or not patch:
        raise BadAnswer(f"the answer's patch is empty: {patch!r}")


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            return int(value)
        if lowered == b"connection" and value.strip().lower() == b"close":
            raise BadAnswer("the server closed a keep-alive connection")
    raise BadAnswer(f"the answer has no Content-Length: {head!r}")


@dataclass
class LoadResult:
    latencies: list[float]
    wall_s: float
    client_cpu_s: float


class LoadGenerator:
    """Keeps ``clients`` reviews in flight over ``clients`` connections, one per connection."""

    def __init__(self, port: int, ca_file: str, clients: int) -> None:
        self.context = ssl.create_default_context(cafile=ca_file)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.port = port
        self.head = (
            f"POST {PATH}?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, */*\r\n"
            "User-Agent: kube-apiserver-admission\r\n"
        ).encode()
        self.before, self.after = _review_template()
        self.length = f"Content-Length: {len(_review())}\r\n\r\n".encode()
        self.selector = selectors.DefaultSelector()
        self.connections = [self._connect() for _ in range(clients)]
        self.next_uid = 0

    def _connect(self) -> _Connection:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.context.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.setblocking(False)
        connection = _Connection(sock)
        self.selector.register(sock, selectors.EVENT_READ, connection)
        return connection

    def close(self) -> None:
        for connection in self.connections:
            self.selector.unregister(connection.sock)
            connection.sock.close()
        self.selector.close()

    def _send(self, connection: _Connection) -> None:
        self.next_uid += 1
        uid = _uid(self.next_uid)
        message = b"".join((self.head, self.length, self.before, uid, self.after))
        connection.uid = uid
        connection.received.clear()
        connection.started = time.perf_counter()
        view = memoryview(message)
        while view:
            try:
                view = view[connection.sock.send(view) :]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                # NB: a full socket buffer is rare for a 1 KiB request; wait for room briefly.
                select.select([], [connection.sock], [], 1.0)

    def _receive(self, connection: _Connection) -> bool:
        """Read what arrived; True when the whole answer is in (and checked)."""
        while True:
            try:
                chunk = connection.sock.recv(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:
                raise BadAnswer("the server closed the connection")
            connection.received += chunk
        data = connection.received
        end_of_head = data.find(b"\r\n\r\n")
        if end_of_head < 0:
            return False
        head = bytes(data[:end_of_head])
        body_start = end_of_head + 4
        if len(data) - body_start < _content_length(head):
            return False
        _check_answer(head, bytes(data[body_start:]), connection.uid)
        return True

    def run(self, reviews_per_connection: int, sink: list[float] | None) -> float:
        """Every connection does ``reviews_per_connection`` reviews back to back; wall time."""
        remaining = {id(c): reviews_per_connection for c in self.connections}
        started = time.perf_counter()
        for connection in self.connections:
            self._send(connection)
        in_flight = len(self.connections)
        while in_flight:
            events = self.selector.select(timeout=30)
            if not events:
                raise BadAnswer("no answer from the webhook within 30 s")
            for key, _ in events:
                ready: _Connection = key.data
                if not self._receive(ready):
                    continue
                if sink is not None:
                    sink.append(time.perf_counter() - ready.started)
                remaining[id(ready)] -= 1
                if remaining[id(ready)]:
                    self._send(ready)
                else:
                    in_flight -= 1
        return time.perf_counter() - started


def _load(port: int, ca_file: str) -> LoadResult:
    generator = LoadGenerator(port, ca_file, CLIENTS)
    try:
        generator.run(WARMUP_REVIEWS // CLIENTS, None)
        latencies: list[float] = []
        cpu_before = time.process_time()
        wall = generator.run(MEASURED_REVIEWS // CLIENTS, latencies)
        client_cpu = time.process_time() - cpu_before
    finally:
        generator.close()
    return LoadResult(latencies, wall, client_cpu)


# ---------------------------------------------------------------------------------------------
# Server side


def _process_tree_cpu_s(root: int) -> float:
    """user+system CPU seconds of ``root`` and its live descendants (the webhook's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (OSError, ValueError):
            continue
    return total


def _decision_time(body: bytes) -> float:
    from webhook.admission import Reviewer
    from webhook.review import parse_review

    class NoApi:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"DanmNet CREATE must not call the API ({name})")

    reviewer = Reviewer(NoApi())
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(2000):
            json.dumps(reviewer.review_network(parse_review(body)))
        samples.append((time.perf_counter() - started) / 2000)
    return statistics.median(samples)


def run(processes: int = DEFAULT_PROCESSES) -> list[tuple[str, str]]:
    from tests.kubeapi.testing import start_in_thread

    load_average = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        workdir = Path(tmp)
        certs = workdir / "certs"
        subprocess.run(
            [*_script(), "certs", "--out", str(certs), "--ip", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        kubeapi = start_in_thread(workdir / "kubeapi")
        log_path = workdir / "webhook.log"
        process = None
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *_script(),
                        "--bind-address",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--tls-cert-file",
                        str(certs / "cert.pem"),
                        "--tls-private-key-file",
                        str(certs / "key.pem"),
                        "--kubeconfig",
                        str(kubeapi.kubeconfig_path),
                        "--log-level",
                        "WARNING",
                        "--processes",
                        str(processes),
                    ],
                    stdout=log,
                    stderr=log,
                )
            port = _wait_for_port(log_path, process, processes)
            server_cpu_before = _process_tree_cpu_s(process.pid)
            result = _load(port, str(certs / "ca.pem"))
            server_cpu = _process_tree_cpu_s(process.pid) - server_cpu_before
        finally:
            kubeapi.stop()
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    latencies = sorted(result.latencies)
    count = len(latencies)
    p99 = latencies[int(count * 0.99) - 1]
    workers = f"{processes} server process{'es' if processes > 1 else ''}"
    return [
        (
            f"DanmNet CREATE over HTTPS, {CLIENTS} concurrent clients, {workers}: median latency",
            _format_ms(statistics.median(latencies)),
        ),
        (f"same: p99 latency ({count} reviews)", _format_ms(p99)),
        ("same: throughput", f"{count / result.wall_s:.0f} reviews/s"),
        (
            "same: CPU per review, server / benchmark client",
            f"{server_cpu / count * 1e6:.0f} µs / {result.client_cpu_s / count * 1e6:.0f} µs",
        ),
        ("same: load average (1 min) before the run", f"{load_average[0]:.2f}"),
        (
            "DanmNet CREATE decision alone (parse, rules, alloc, patch, encode)",
            f"{_decision_time(_review()) * 1e6:.0f} µs",
        ),
    ]


def _wait_for_port(log_path: Path, process: subprocess.Popen[bytes], processes: int) -> int:
    # NB: the CLI prints its bound address whatever the log level, once per serving process;
    # the load starts when every process listens, or connections would all land on the first.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ports = [int(port) for port in LISTENING.findall(log_path.read_text())]
        if len(ports) >= processes:
            return ports[0]
        if process.poll() is not None:
            raise RuntimeError(f"webhook exited: {log_path.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"webhook did not start within 60 s: {log_path.read_text()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES)
    for name, value in run(parser.parse_args().processes):
        print(f"{name}: {value}")
