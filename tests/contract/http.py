"""A tiny HTTPS client for asserting exact wire bodies (Status objects, watch lines).

The official client hides response bodies behind ``ApiException`` and re-parses watch
events; contract tests need the bytes the server sent, so this speaks HTTP directly with
the admin client certificate (or a bearer token, or nothing).
"""

from __future__ import annotations

import http.client
import json
import ssl
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from tests.kubeapi.testing import RunningKubeApi


def ssl_context(kubeapi: RunningKubeApi, *, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(kubeapi.ca_path))
    if with_cert:
        context.load_cert_chain(
            kubeapi.credentials.client_cert_path, kubeapi.credentials.client_key_path
        )
    return context


class RawClient:
    def __init__(
        self, kubeapi: RunningKubeApi, *, with_cert: bool = True, token: str | None = None
    ) -> None:
        parsed = urlparse(kubeapi.url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 443
        self.context = ssl_context(kubeapi, with_cert=with_cert)
        self.token = token
        self._open: list[http.client.HTTPSConnection] = []

    def _connection(self, timeout: float = 30) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout
        )
        self._open.append(connection)
        return connection

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        connection = self._connection()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = content_type
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return response.status, json.loads(data) if data else None

    def watch(
        self,
        path: str,
        *,
        max_events: int,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Read up to ``max_events`` watch events (or until the server ends the stream)."""
        connection = self._connection(timeout)
        events: list[dict[str, Any]] = []
        try:
            connection.request(
                "GET", path, headers={"Accept": "application/json", **(headers or {})}
            )
            response = connection.getresponse()
            assert response.status == 200, response.read()
            while len(events) < max_events:
                try:
                    line = response.readline()
                except TimeoutError:
                    break
                if not line:
                    break
                events.append(json.loads(line))
        finally:
            connection.close()
        return events

    def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
