"""HealthServer over real sockets: 200/503 bodies, unknown paths, and a clean stop."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from common.io.health import HealthServer, Probe

pytestmark = pytest.mark.e2e


@pytest.fixture
def serve() -> Iterator[Callable[..., int]]:
    before = set(threading.enumerate())
    servers: list[HealthServer] = []

    def start(live: Probe | None = None, ready: Probe | None = None) -> int:
        kwargs = {k: v for k, v in (("live", live), ("ready", ready)) if v is not None}
        server = HealthServer(0, bind_address="127.0.0.1", **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def broken_probe() -> str | None:
    raise RuntimeError("informer thread died")


@pytest.mark.parametrize(
    ("live", "ready", "path", "expected"),
    [
        (None, None, "/healthz", (200, "ok\n")),
        (None, None, "/readyz", (200, "ok\n")),
        (None, lambda: "informers not synced", "/readyz", (503, "informers not synced\n")),
        (None, lambda: "informers not synced", "/healthz", (200, "ok\n")),
        (lambda: "watch loop stuck", None, "/healthz", (503, "watch loop stuck\n")),
        (lambda: "watch loop stuck", None, "/readyz", (200, "ok\n")),
        (broken_probe, None, "/healthz", (503, "probe failed: informer thread died\n")),
        (None, None, "/readyz?verbose=1", (200, "ok\n")),
    ],
)
def test_probe_answers(
    serve: Callable[..., int],
    live: Probe | None,
    ready: Probe | None,
    path: str,
    expected: tuple[int, str],
) -> None:
    port = serve(live, ready)
    assert fetch(port, path) == expected


def test_unknown_path_is_404(serve: Callable[..., int]) -> None:
    status, body = fetch(serve(), "/metrics")
    assert status == 404
    assert "/healthz" in body


def test_readiness_follows_the_probe(serve: Callable[..., int]) -> None:
    state: dict[str, str | None] = {"reason": "not leader"}
    port = serve(ready=lambda: state["reason"])
    assert fetch(port, "/readyz") == (503, "not leader\n")
    state["reason"] = None
    assert fetch(port, "/readyz") == (200, "ok\n")


def test_stop_closes_the_socket() -> None:
    before = set(threading.enumerate())
    server = HealthServer(0, bind_address="127.0.0.1")
    port = server.start()
    assert fetch(port, "/healthz")[0] == 200
    server.stop()
    server.stop()  # NB: idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_start_twice_and_busy_port_are_clear_errors(serve: Callable[..., int]) -> None:
    port = serve()
    with pytest.raises(OSError, match=f"cannot serve health checks on 127.0.0.1:{port}"):
        HealthServer(port, bind_address="127.0.0.1").start()
    server = HealthServer(0, bind_address="127.0.0.1")
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
