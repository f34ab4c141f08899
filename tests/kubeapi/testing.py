"""Run the API stand-in inside a pytest process, in a thread with its own event loop.

The official client is synchronous, so the server cannot share the test's loop; like
httpx's ``serve_in_thread`` we start it in a background thread and hand back its URL and
credentials. Use it as a context manager or call :meth:`RunningKubeApi.stop`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tests.kubeapi.credentials import Credentials, create_credentials, write_kubeconfig
from tests.kubeapi.registry import Registry
from tests.kubeapi.server import REGISTRY_KEY, RunningServer, ServerConfig, start_server

T = TypeVar("T")


@dataclass
class RunningKubeApi:
    url: str
    kubeconfig_path: Path
    ca_path: Path
    token: str
    credentials: Credentials
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _server: RunningServer = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def call(self, function: Callable[[Registry], T]) -> T:
        """Run ``function(registry)`` on the server's loop, e.g. to inspect or compact."""

        async def run() -> T:
            return function(self._server.runner.app[REGISTRY_KEY])

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def compact(self) -> None:
        """Drop the watch event history: older resourceVersions now get 410 Expired."""
        self.call(lambda registry: registry.store.compact())

    def configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` using the admin client certificate."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_path)
        configuration.cert_file = str(self.credentials.client_cert_path)
        configuration.key_file = str(self.credentials.client_key_path)
        return configuration

    def api_client(self) -> Any:
        """A configured ``kubernetes.client.ApiClient``; close it when done."""
        from kubernetes import client

        return client.ApiClient(self.configuration())

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        future = asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop)
        try:
            future.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> RunningKubeApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    workdir: Path,
    *,
    persist_path: Path | None = None,
    event_history: int = 1000,
    bookmark_interval: float = 1.0,
) -> RunningKubeApi:
    credentials = create_credentials(workdir)
    config = ServerConfig(
        credentials,
        persist_path=persist_path,
        event_history=event_history,
        bookmark_interval=bookmark_interval,
    )
    loop = asyncio.new_event_loop()
    started: Future[RunningServer] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                started.set_result(await start_server(config))
            except BaseException as error:  # NB: surface startup failures to the caller.
                started.set_exception(error)

        boot_task = loop.create_task(boot())
        try:
            loop.run_forever()
        finally:
            del boot_task
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="kubeapi", daemon=True)
    thread.start()
    try:
        server = started.result(timeout=30)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        raise
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, server.url, credentials)
    return RunningKubeApi(
        url=server.url,
        kubeconfig_path=kubeconfig,
        ca_path=credentials.ca_path,
        token=credentials.token,
        credentials=credentials,
        _loop=loop,
        _thread=thread,
        _server=server,
    )
