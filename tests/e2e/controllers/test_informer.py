"""Informer against the API stand-in, through the real ``KubernetesApi`` adapter.

Covers what the watchers rely on: the initial list, watch events in order, the relist after a
410 (and after the API was unreachable) reporting deletes that happened meanwhile, a CRD that
is installed and removed while the informer runs, RESYNC, selectors and namespaces.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from common.io.informer import EventType, Informer
from common.io.kube import JsonObject, KubeApi, KubernetesApi, WatchStream
from common.model.resources import CONFIGMAPS, CRDS, DANMNETS, Resource
from tests.kubeapi.testing import RunningKubeApi, start_in_thread

pytestmark = pytest.mark.e2e

WAIT_S = 15.0  # NB: an upper bound for a hung test only; nothing asserts on speed.
REPO = Path(__file__).resolve().parents[3]
DANMNET_CRD = REPO / "integration/crds/lightweight/DanmNet.yaml"


def configmap(name: str, namespace: str = "default", **labels: str) -> JsonObject:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {}}


class Recorder:
    """A handler recording ``(type, name)``; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._cond = threading.Condition()

    def __call__(self, event_type: EventType, item: JsonObject) -> None:
        with self._cond:
            self.events.append((event_type, item["metadata"]["name"]))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[str, str]]], bool]) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), WAIT_S):
                raise AssertionError(f"condition not met; events so far: {self.events}")

    def wait_count(self, count: int) -> list[tuple[str, str]]:
        self.wait_for(lambda events: len(events) >= count)
        with self._cond:
            return self.events[:count]

    def changes(self) -> list[tuple[str, str]]:
        with self._cond:
            return [e for e in self.events if e[0] != "RESYNC"]


StartInformer = Callable[..., tuple[Informer, Recorder]]


@pytest.fixture
def start_informer(api: KubernetesApi) -> Iterator[StartInformer]:
    started: list[Informer] = []

    def start(
        resource: Resource, *, via: KubeApi | None = None, **kwargs: Any
    ) -> tuple[Informer, Recorder]:
        recorder = Recorder()
        informer = Informer(via or api, resource, on_change=recorder, **kwargs)
        started.append(informer)
        informer.start()
        return informer, recorder

    yield start
    for informer in started:
        informer.stop(timeout_s=WAIT_S)


def eventually(predicate: Callable[[], bool]) -> bool:
    """Poll a state that has no event to wait on (like ``served``)."""
    stop = threading.Event()
    for _ in range(int(WAIT_S / 0.01)):
        if predicate():
            return True
        stop.wait(0.01)
    return predicate()


def names(items: list[JsonObject]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in items)


# --------------------------------------------------------------------------------------------


def test_initial_list_then_changes_in_order(
    api: KubernetesApi, start_informer: StartInformer
) -> None:
    api.create(CONFIGMAPS, "default", configmap("a"))
    api.create(CONFIGMAPS, "default", configmap("b"))
    informer, recorder = start_informer(CONFIGMAPS, namespace="default")
    assert informer.wait_synced(WAIT_S)
    assert informer.served
    assert sorted(recorder.wait_count(2)) == [("ADDED", "a"), ("ADDED", "b")]
    assert names(informer.items()) == ["a", "b"]

    api.patch(CONFIGMAPS, "default", "a", {"data": {"k": "v"}})
    api.create(CONFIGMAPS, "default", configmap("c"))
    api.delete(CONFIGMAPS, "default", "b")
    api.patch(CONFIGMAPS, "default", "c", {"data": {"k": "v"}})
    assert recorder.wait_count(6)[2:] == [
        ("MODIFIED", "a"),
        ("ADDED", "c"),
        ("DELETED", "b"),
        ("MODIFIED", "c"),
    ]
    cached = informer.get("a", "default")
    assert cached is not None
    assert cached["data"] == {"k": "v"}
    assert informer.get("b", "default") is None


class GatedApi:
    """Delegates to the real adapter but can hold the next watch call until released.

    That is how a test makes changes "while the watch is down" without sleeping: the server
    ends the current watch (timeoutSeconds), the informer's next watch parks here.
    """

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api
        self.open = threading.Event()
        self.open.set()
        self.parked = threading.Event()

    def __getattr__(self, verb: str) -> Any:
        return getattr(self._api, verb)

    def watch(self, resource: Resource, namespace: str | None = None, **kwargs: Any) -> Any:
        if not self.open.is_set():
            self.parked.set()
            self.open.wait(WAIT_S)
        return self._api.watch(resource, namespace, **kwargs)


def test_relist_after_410_reports_what_changed_meanwhile(
    api: KubernetesApi,
    kubeapi: RunningKubeApi,
    start_informer: StartInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="common.io.informer")
    for name in ["a", "b"]:
        api.create(CONFIGMAPS, "default", configmap(name))
    gated = GatedApi(api)
    informer, recorder = start_informer(CONFIGMAPS, via=gated, watch_timeout_s=1)
    recorder.wait_count(2)

    gated.open.clear()
    assert gated.parked.wait(WAIT_S)
    api.delete(CONFIGMAPS, "default", "b")
    api.patch(CONFIGMAPS, "default", "a", {"data": {"k": "v"}})
    api.create(CONFIGMAPS, "default", configmap("c"))
    kubeapi.compact()
    gated.open.set()

    recorder.wait_count(5)
    assert recorder.changes()[2:] == [("DELETED", "b"), ("MODIFIED", "a"), ("ADDED", "c")]
    assert names(informer.items()) == ["a", "c"]
    assert any("expired" in r.getMessage() for r in caplog.records)


class TcpProxy:
    """A plain TCP forwarder to the stand-in: ``stop`` makes the API unreachable (refused,
    open connections cut), ``start`` brings it back on the same port, TLS passes through."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept, listener)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="tcp-proxy", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._sockets += [downstream, upstream]
            self._spawn(self._pump, downstream, upstream)
            self._spawn(self._pump, upstream, downstream)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        with self._lock:
            sockets, self._sockets = self._sockets, []
            threads, self._threads = self._threads, []
        for sock in [s for s in [listener] if s is not None] + sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(WAIT_S)


@pytest.fixture
def proxied_api(
    kubeapi: RunningKubeApi, no_leaked_threads: None
) -> Iterator[tuple[TcpProxy, KubernetesApi]]:
    proxy = TcpProxy(int(kubeapi.url.rsplit(":", 1)[1]))
    proxy.start()
    configuration = kubeapi.configuration()
    configuration.host = f"https://127.0.0.1:{proxy.port}"
    # NB: no urllib3 retries: the informer's own backoff is what is under test.
    configuration.retries = 0
    try:
        with KubernetesApi.from_api_client(
            client.ApiClient(configuration), request_timeout_s=5
        ) as via_proxy:
            yield proxy, via_proxy
    finally:
        proxy.stop()


def test_reconnects_after_the_api_was_unreachable(
    api: KubernetesApi,
    proxied_api: tuple[TcpProxy, KubernetesApi],
    start_informer: StartInformer,
) -> None:
    proxy, via_proxy = proxied_api
    for name in ["a", "b"]:
        api.create(CONFIGMAPS, "default", configmap(name))
    informer, recorder = start_informer(
        CONFIGMAPS, via=via_proxy, min_backoff_s=0.05, max_backoff_s=0.2
    )
    recorder.wait_count(2)

    proxy.stop()  # NB: the open watch is cut and new connections are refused
    api.delete(CONFIGMAPS, "default", "b")
    api.create(CONFIGMAPS, "default", configmap("c"))
    proxy.start()

    recorder.wait_for(lambda events: ("DELETED", "b") in events and ("ADDED", "c") in events)
    assert names(informer.items()) == ["a", "c"]
    api.delete(CONFIGMAPS, "default", "a")  # NB: and the new watch works
    recorder.wait_for(lambda events: ("DELETED", "a") in events)


def test_crd_installed_later_then_removed(
    api: KubernetesApi, start_informer: StartInformer
) -> None:
    informer, recorder = start_informer(DANMNETS, absent_retry_s=0.05, watch_timeout_s=1)
    assert informer.wait_synced(WAIT_S)
    assert not informer.served
    assert informer.items() == []

    crd = yaml.safe_load(DANMNET_CRD.read_text())
    api.create(CRDS, None, crd)
    net = {
        "apiVersion": DANMNETS.api_version,
        "kind": DANMNETS.kind,
        "metadata": {"name": "net1", "namespace": "default"},
        "spec": {"NetworkID": "net1", "NetworkType": "ipvlan"},
    }
    api.create(DANMNETS, "default", net)
    recorder.wait_for(lambda events: ("ADDED", "net1") in events)
    assert informer.served

    api.delete(CRDS, None, crd["metadata"]["name"])
    recorder.wait_for(lambda events: ("DELETED", "net1") in events)
    assert informer.items() == []
    # NB: the CRD is gone for good: the informer ends up reporting it as not served.
    assert eventually(lambda: not informer.served)


def test_resync_repeats_cached_objects(tmp_path: Path, no_leaked_threads: None) -> None:
    # NB: a stand-in with frequent bookmarks, so a quiet watch still lets RESYNC fire promptly.
    with (
        start_in_thread(tmp_path / "fast", bookmark_interval=0.05) as fast,
        KubernetesApi.from_api_client(fast.api_client(), request_timeout_s=10) as api,
    ):
        api.create(CONFIGMAPS, "default", configmap("a"))
        recorder = Recorder()
        informer = Informer(api, CONFIGMAPS, resync_s=0.1, on_change=recorder)
        informer.start()
        try:
            recorder.wait_for(lambda events: events.count(("RESYNC", "a")) >= 3)
        finally:
            informer.stop(WAIT_S)
        assert recorder.changes() == [("ADDED", "a")]


def test_label_selector_and_namespace_are_respected(
    api: KubernetesApi, start_informer: StartInformer
) -> None:
    api.create(CONFIGMAPS, "default", configmap("x1", app="x"))
    api.create(CONFIGMAPS, "default", configmap("y1", app="y"))
    api.create(CONFIGMAPS, "kube-system", configmap("x-elsewhere", "kube-system", app="x"))
    informer, recorder = start_informer(CONFIGMAPS, namespace="default", label_selector="app=x")
    assert recorder.wait_count(1) == [("ADDED", "x1")]

    api.create(CONFIGMAPS, "default", configmap("y2", app="y"))
    api.create(CONFIGMAPS, "kube-system", configmap("x-elsewhere-2", "kube-system", app="x"))
    api.patch(CONFIGMAPS, "default", "y1", {"metadata": {"labels": {"app": "x"}}})
    api.patch(CONFIGMAPS, "default", "x1", {"metadata": {"labels": {"app": "y"}}})
    assert recorder.wait_count(3)[1:] == [("ADDED", "y1"), ("DELETED", "x1")]
    assert names(informer.items()) == ["y1"]


def test_stop_interrupts_a_long_watch(tmp_path: Path, no_leaked_threads: None) -> None:
    opened = threading.Event()
    # NB: no bookmarks: only the interruption can end this watch before its hour is up.
    with (
        start_in_thread(tmp_path / "quiet", bookmark_interval=3600) as quiet,
        KubernetesApi.from_api_client(quiet.api_client(), request_timeout_s=10) as api,
    ):

        class Watching:
            def __getattr__(self, verb: str) -> Any:
                return getattr(api, verb)

            def watch(
                self, resource: Resource, namespace: str | None = None, **kwargs: Any
            ) -> WatchStream:
                stream = api.watch(resource, namespace, **kwargs)
                opened.set()
                return stream

        watching: Any = Watching()
        informer = Informer(watching, CONFIGMAPS, watch_timeout_s=3600, resync_s=3600)
        informer.start()
        try:
            assert opened.wait(WAIT_S)
        finally:
            informer.stop(timeout_s=WAIT_S)
        stopped = [t for t in threading.enumerate() if t.name == informer.name]
        assert stopped == []
