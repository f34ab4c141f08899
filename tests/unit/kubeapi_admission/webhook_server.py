"""Small real HTTPS admission webhooks for testing the stand-in's admission chain.

The chain's job is the network conversation (TLS verification against ``caBundle``, timeouts,
AdmissionReview in and out), so its tests talk to real servers rather than mocks. One server
answers on several paths, each a different kind of webhook; every review it receives is
recorded so tests can check what the chain sent.

Paths: ``/allow``, ``/deny`` (403 with a message), ``/deny-bare`` (no status),
``/patch/K`` (adds label ``K: "yes"``), ``/hang`` (never answers until the server stops),
``/garbage`` (200 with a non-JSON body), ``/bad-patch`` (a patch that cannot apply),
``/wrong-uid``, ``/no-kind``, ``/http-500``, ``/barrier/N`` (answers once N requests wait).
Webhook URLs may not carry a query (the caller adds ``?timeout=``), hence parameters in paths.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.kubeapi.pki import CertificateAuthority, KeyPair

__all__ = [
    "Received",
    "ThreadedWebhook",
    "WebhookServer",
    "add_label_patch",
    "start_webhook_server",
]


def add_label_patch(obj: dict[str, Any] | None, key: str, value: str) -> list[dict[str, Any]]:
    """JSON patch adding one label, creating ``metadata.labels`` if needed."""
    metadata = (obj or {}).get("metadata") or {}
    if isinstance(metadata.get("labels"), dict):
        path = "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1")
        return [{"op": "add", "path": path, "value": value}]
    return [{"op": "add", "path": "/metadata/labels", "value": {key: value}}]


@dataclass(frozen=True)
class Received:
    """One call the webhook got: its path, query string and AdmissionReview body."""

    path: str
    query: dict[str, str]
    review: dict[str, Any]

    @property
    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = self.review["request"]
        return request


@dataclass
class WebhookServer:
    """A running webhook server; ``received`` lists its calls in arrival order."""

    base_url: str
    ca_bundle: str
    runner: web.AppRunner
    release: asyncio.Event
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def calls(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()


def _respond(review: dict[str, Any], **response: Any) -> web.Response:
    request = review.get("request") or {}
    body = {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {"uid": request.get("uid", ""), **response},
    }
    return web.json_response(body)


def _make_app(server_ref: list[WebhookServer], barrier_state: dict[str, Any]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        server = server_ref[0]
        review = await request.json()
        server.received.append(Received(request.path, dict(request.query), review))
        admission_request = review.get("request") or {}
        path = request.path
        if path == "/allow":
            return _respond(review, allowed=True)
        if path == "/deny":
            status = {"code": 403, "reason": "Forbidden", "message": "no thanks"}
            return _respond(review, allowed=False, status=status)
        if path == "/deny-bare":
            return _respond(review, allowed=False)
        if path.startswith("/patch/"):
            label = path.removeprefix("/patch/")
            ops = add_label_patch(admission_request.get("object"), label, "yes")
            encoded = base64.b64encode(json.dumps(ops).encode()).decode()
            return _respond(review, allowed=True, patchType="JSONPatch", patch=encoded)
        if path == "/bad-patch":
            ops = [{"op": "replace", "path": "/does/not/exist", "value": 1}]
            encoded = base64.b64encode(json.dumps(ops).encode()).decode()
            return _respond(review, allowed=True, patchType="JSONPatch", patch=encoded)
        if path == "/hang":
            await server.release.wait()
            return _respond(review, allowed=True)
        if path == "/garbage":
            return web.Response(text="this is not an AdmissionReview", content_type="text/plain")
        if path == "/wrong-uid":
            return web.json_response(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": "not-the-request-uid", "allowed": True},
                }
            )
        if path == "/no-kind":
            uid = admission_request.get("uid", "")
            return web.json_response({"response": {"uid": uid, "allowed": True}})
        if path == "/http-500":
            return web.Response(status=500, text="webhook exploded")
        if path.startswith("/barrier/"):
            needed = int(path.removeprefix("/barrier/"))
            barrier_state["waiting"] += 1
            if barrier_state["waiting"] >= needed:
                barrier_state["event"].set()
            await barrier_state["event"].wait()
            return _respond(review, allowed=True)
        return web.Response(status=404, text=f"no webhook at {path}")

    @web.middleware
    async def close_after_response(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        # NB: no idle keep-alive connections, so stopping the server never leaves a TLS
        # connection waiting for the caller's close_notify (a leaked socket at loop close).
        response.force_close()
        return response

    app = web.Application(middlewares=[close_after_response])
    app.router.add_post("/{tail:.*}", handle)
    return app


async def start_webhook_server(
    ca: CertificateAuthority,
    serving: KeyPair,
    workdir: Path,
    *,
    trusted_ca: CertificateAuthority | None = None,
) -> WebhookServer:
    """Serve on 127.0.0.1, port chosen by the kernel, with ``serving`` as certificate.

    ``ca_bundle`` is the base64 PEM of ``trusted_ca`` (default ``ca``): pass another CA to get
    a server whose configured bundle does not verify its certificate.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = workdir / "tls.crt", workdir / "tls.key"
    cert_file.write_bytes(serving.cert_pem)
    key_file.write_bytes(serving.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    server_ref: list[WebhookServer] = []
    barrier_state: dict[str, Any] = {"waiting": 0, "event": asyncio.Event()}
    runner = web.AppRunner(_make_app(server_ref, barrier_state), shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = _bound_port(runner)
    bundle = base64.b64encode((trusted_ca or ca).cert_pem).decode()
    server = WebhookServer(f"https://127.0.0.1:{port}", bundle, runner, asyncio.Event())
    server_ref.append(server)
    return server


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("webhook server is not listening on a TCP port")


class ThreadedWebhook:
    """A :class:`WebhookServer` on its own event loop thread, for synchronous tests."""

    def __init__(self, ca: CertificateAuthority, serving: KeyPair, workdir: Path) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="test-webhook", daemon=True)
        self._thread.start()
        future: Future[WebhookServer] = asyncio.run_coroutine_threadsafe(
            start_webhook_server(ca, serving, workdir), self._loop
        )
        try:
            self.server = future.result(timeout=30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            raise

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            # NB: closed connections only release their sockets in callbacks the loop still has
            # to run; finish them (and any task left) before closing the loop.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
