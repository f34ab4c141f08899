"""The HTTPS server the API server calls: routes, body limits, TLS and certificate reloading.

Only transport lives here; decisions are ``webhook.admission``'s. The rules the server keeps:

* every review path answers HTTP 200 with a well-formed AdmissionReview, or HTTP 400 when the body
  cannot be answered at all (not JSON, no ``request.uid``, larger than ``max_body_bytes``); an
  unexpected error inside a decision becomes a denial naming it, never a 500 or a dropped
  connection, so the API server always gets an answer it can apply its failure policy to;
* decisions that may call the API run in a thread pool, the rest inline on the event loop: a
  DanmNet CREATE never waits behind a slow TenantConfig write;
* TLS 1.2 or newer only; the certificate and key files are polled and reloaded into the same
  ``SSLContext`` when they change (cert-manager or a Secret update rotates them in place), so new
  connections get the new certificate without a restart;
* one process runs one event loop; ``webhook --processes N`` forks N of them over one listening
  socket (:func:`bind_listener`), each with its own loop, thread pool and certificate reloader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from webhook.admission import Response, Reviewer, may_call_api
from webhook.review import AdmissionRequest, ReviewError, deny, parse_review

_log = logging.getLogger(__name__)

#: A network UPDATE carries the object twice; a /9 alloc alone is 1.4 MB of base64.
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
DEFAULT_RELOAD_INTERVAL_S: Final = 2.0
DEFAULT_WORKERS: Final = 8
LISTEN_BACKLOG: Final = 1024

NETWORK_PATHS: Final = ("/netvalidation", "/netdeletion")
CONFIG_PATH: Final = "/confvalidation"


class BodyTooLarge(Exception):
    pass


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_request(message: str) -> web.Response:
    body = json.dumps({"kind": "Status", "status": "Failure", "code": 400, "message": message})
    return web.Response(status=400, body=body.encode(), content_type="application/json")


@dataclass
class WebhookHandlers:
    reviewer: Reviewer
    executor: ThreadPoolExecutor
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def review_network(self, request: web.Request) -> web.Response:
        return await self._review(request, self.reviewer.review_network)

    async def review_tenant_config(self, request: web.Request) -> web.Response:
        return await self._review(request, self.reviewer.review_tenant_config)

    async def _review(
        self, request: web.Request, decide: Callable[[AdmissionRequest], Response]
    ) -> web.Response:
        try:
            body = await _read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            return _bad_request(
                f"the AdmissionReview is larger than the webhook's limit of "
                f"{self.max_body_bytes} bytes"
            )
        try:
            admission_request = parse_review(body)
        except ReviewError as error:
            _log.warning("bad review on %s: %s", request.path, error)
            return _bad_request(str(error))
        try:
            if may_call_api(admission_request):
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self.executor, decide, admission_request)
            else:
                answer = decide(admission_request)
        except Exception as error:
            # NB: a bug must not become a 500 the API server reports as "failed calling webhook"
            # with no hint; deny with the cause so the user sees it and nothing is stored.
            _log.exception("review %s failed", admission_request.uid)
            answer = deny(
                admission_request,
                f"the DANM webhook failed while reviewing this request: "
                f"{type(error).__name__}: {error}",
                code=500,
            )
        return web.Response(
            body=json.dumps(answer, separators=(",", ":")).encode(),
            content_type="application/json",
        )


def build_app(handlers: WebhookHandlers) -> web.Application:
    # NB: client_max_size is a second fence; _read_body answers 400 before aiohttp would 413.
    app = web.Application(client_max_size=handlers.max_body_bytes + 1)
    # NB: one handler per path, so no request pays for finding its decision by path.
    for path in NETWORK_PATHS:
        app.router.add_post(path, handlers.review_network)
    app.router.add_post(CONFIG_PATH, handlers.review_tenant_config)
    app.router.add_get("/healthz", handlers.healthz)
    return app


# ---------------------------------------------------------------------------------------------
# TLS


def make_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context: TLS 1.2+, the given certificate chain (leaf first, CA may follow)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def _stamp(path: str) -> tuple[int, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class CertReloader:
    """Reloads the certificate into a live ``SSLContext`` when its files change."""

    def __init__(self, context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self._stamps = (_stamp(cert_file), _stamp(key_file))
        self.reloads = 0

    def check(self) -> bool:
        """Reload if either file changed since the last look; True if a new cert is in use."""
        stamps = (_stamp(self.cert_file), _stamp(self.key_file))
        if stamps == self._stamps:
            return False
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as error:
            # NB: a rotation writes two files; between them the pair does not match. Keep the
            # old certificate and look again next time rather than failing handshakes.
            _log.warning("certificate reload postponed: %s", error)
            return False
        self._stamps = stamps
        self.reloads += 1
        _log.info("reloaded TLS certificate from %s", self.cert_file)
        return True

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.check()


# ---------------------------------------------------------------------------------------------
# Serving


@dataclass(frozen=True)
class ServeConfig:
    bind_address: str
    port: int
    cert_file: str
    key_file: str
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    reload_interval_s: float = DEFAULT_RELOAD_INTERVAL_S
    workers: int = DEFAULT_WORKERS


async def serve(
    config: ServeConfig,
    reviewer: Reviewer,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[str, int], Any] | None = None,
    listener: socket.socket | None = None,
) -> None:
    """Serve until ``stop`` is set; ``on_ready(host, port)`` gets the bound address.

    ``listener`` is an already listening socket (from :func:`bind_listener`) shared by several
    serving processes; without it the server binds ``config``'s address itself.
    """
    context = make_ssl_context(config.cert_file, config.key_file)
    reloader = CertReloader(context, config.cert_file, config.key_file)
    with ThreadPoolExecutor(config.workers, thread_name_prefix="review") as executor:
        handlers = WebhookHandlers(reviewer, executor, config.max_body_bytes)
        runner = web.AppRunner(build_app(handlers), access_log=None, handle_signals=False)
        await runner.setup()
        reload_task = asyncio.create_task(reloader.run(config.reload_interval_s))
        try:
            site: web.BaseSite
            if listener is None:
                site = web.TCPSite(
                    runner,
                    config.bind_address or None,
                    config.port,
                    ssl_context=context,
                    backlog=LISTEN_BACKLOG,
                )
            else:
                site = web.SockSite(runner, listener, ssl_context=context)
            await site.start()
            host, port = _bound_address(site, config)
            _log.info("listening on https://%s:%d", host, port)
            if on_ready is not None:
                on_ready(host, port)
            await stop.wait()
        finally:
            reload_task.cancel()
            await asyncio.gather(reload_task, return_exceptions=True)
            await runner.cleanup()


def bind_listener(bind_address: str, port: int) -> socket.socket:
    """A listening TCP socket for ``serve(listener=...)``, bound before serving processes fork.

    NB: one socket inherited by every process, rather than one SO_REUSEPORT socket each: the
    port is known (``--port 0`` included) before any process starts, and a connection waits in
    the one accept queue until some process is free instead of in the queue of a busy one.
    """
    host = bind_address or None
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    if host is None and socket.has_dualstack_ipv6():
        return socket.create_server(
            ("", port), family=socket.AF_INET6, backlog=LISTEN_BACKLOG, dualstack_ipv6=True
        )
    return socket.create_server((host or "", port), family=family, backlog=LISTEN_BACKLOG)


def _bound_address(site: web.BaseSite, config: ServeConfig) -> tuple[str, int]:
    server: Any = site._server  # NB: aiohttp exposes no public accessor for the bound socket.
    for sock in getattr(server, "sockets", None) or ():
        address = sock.getsockname()
        return str(address[0]), int(address[1])
    return config.bind_address, config.port
