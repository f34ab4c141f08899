"""Liveness and readiness endpoints for the controllers, on a tiny standard-library HTTP server.

Why it exists: kubelet decides from ``/healthz`` whether to restart netwatcher or svcwatcher and
from ``/readyz`` whether the pod counts as ready (e.g. informers synced, leader elected). The
controllers are thread-based and synchronous, so a ``ThreadingHTTPServer`` on its own thread is
all that is needed; pulling aiohttp into them would mean running an event loop just for this.

Each probe is a callable answering ``None`` (healthy) or a short reason; the answer is
``200 ok`` or ``503 <reason>`` as plain text. A probe that raises counts as unhealthy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

Probe = Callable[[], str | None]


def _healthy() -> str | None:
    return None


def probe_answer(probe: Probe) -> tuple[HTTPStatus, str]:
    """Run one probe and turn its verdict into a status and a plain-text body."""
    try:
        reason = probe()
    except Exception as error:
        log.exception("health probe failed")
        reason = f"probe failed: {error}"
    if reason is None:
        return HTTPStatus.OK, "ok"
    return HTTPStatus.SERVICE_UNAVAILABLE, reason


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # NB: server_close() joins the request threads, so stop() leaves no thread behind.
    block_on_close = True
    probes: dict[str, Probe]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        probe = self.server.probes.get(path)
        if probe is None:
            status, body = HTTPStatus.NOT_FOUND, f"no such endpoint {path}; try /healthz or /readyz"
        else:
            status, body = probe_answer(probe)
        payload = (body + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        # NB: probes come every few seconds; a kept-alive idle connection would pin a thread.
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health %s: " + format, self.client_address[0], *args)


class HealthServer:
    """``GET /healthz`` (live) and ``GET /readyz`` (ready) on ``bind_address:port``."""

    def __init__(
        self,
        port: int,
        *,
        bind_address: str = "0.0.0.0",
        live: Probe = _healthy,
        ready: Probe = _healthy,
    ) -> None:
        self._port = port
        self._bind_address = bind_address
        self._probes: dict[str, Probe] = {"/healthz": live, "/livez": live, "/readyz": ready}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve on a thread; return the bound port (useful with ``port=0``)."""
        if self._server is not None:
            raise RuntimeError("health server already started")
        try:
            server = _Server((self._bind_address, self._port), _Handler)
        except OSError as error:
            raise OSError(
                error.errno,
                f"cannot serve health checks on {self._bind_address}:{self._port}: "
                f"{error.strerror}",
            ) from error
        server.probes = self._probes
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="health-server"
        )
        self._thread.start()
        port = int(server.server_address[1])
        log.info(
            "serving /healthz and /readyz on %s:%d",
            self._bind_address,
            port,
            extra={"port": port},
        )
        return port

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the threads."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
