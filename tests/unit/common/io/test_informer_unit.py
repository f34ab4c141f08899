"""Informer against a small in-memory KubeApi: the diff logic and every error path.

The fake keeps one resource's objects, an event log and a compaction mark, like the real server,
and lets a test script failures (unreachable, 410, 404) that are awkward to provoke on a real
API server. tests/e2e/controllers/test_informer.py runs the same behaviour against tests/kubeapi.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.io.informer import EventType, Informer, diff_listing, is_newer
from common.io.kube import (
    DEFAULT_PAGE_SIZE,
    Gone,
    JsonObject,
    KubeApi,
    KubeUnavailable,
    NotFound,
    PatchType,
    WatchEvent,
)
from common.model.resources import CLUSTERNETWORKS, DANMNETS, Resource

WAIT_S = 10.0  # NB: an upper bound for a hung test only; nothing asserts on speed.


def obj(
    name: str, rv: int, *, namespace: str = "default", uid: str = "", **spec: Any
) -> JsonObject:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": str(rv)}
    if uid:
        metadata["uid"] = uid
    return {"metadata": metadata, "spec": spec}


# --------------------------------------------------------------------------------------------
# The fake


class _Stream:
    """Stands in for the urllib3 response a real watch reads: ``shutdown`` unblocks the reader."""

    def __init__(self, wake: threading.Condition) -> None:
        self.closed = False
        self._wake = wake

    def shutdown(self) -> None:
        with self._wake:
            self.closed = True
            self._wake.notify_all()


@dataclass
class FakeKube:
    """One resource's objects with resourceVersions, an event log and scripted failures."""

    rv: int = 0
    compacted_rv: int = 0
    absent: bool = False
    list_failures: list[Exception] = field(default_factory=list)
    watch_failures: list[Exception] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    objects: dict[tuple[str, str], JsonObject] = field(default_factory=dict)
    events: list[tuple[int, str, JsonObject]] = field(default_factory=list)
    watch_generation: int = 0
    open_watches: int = 0
    bookmark_interval_s: float | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    # ---- test controls

    def put(self, name: str, *, record: bool = True, **spec: Any) -> JsonObject:
        with self.cond:
            self.rv += 1
            key = ("default", name)
            kind = "MODIFIED" if key in self.objects else "ADDED"
            stored = obj(name, self.rv, uid=f"uid-{name}", **spec)
            self.objects[key] = stored
            if record:
                self.events.append((self.rv, kind, copy.deepcopy(stored)))
            self.cond.notify_all()
            return copy.deepcopy(stored)

    def remove(self, name: str, *, record: bool = True) -> None:
        with self.cond:
            self.rv += 1
            gone = self.objects.pop(("default", name))
            gone["metadata"]["resourceVersion"] = str(self.rv)
            if record:
                self.events.append((self.rv, "DELETED", gone))
            self.cond.notify_all()

    def bookmark(self, skip: int) -> None:
        """Move the version on by ``skip`` (writes to other kinds) and announce it."""
        with self.cond:
            self.rv += skip
            self.events.append(
                (self.rv, "BOOKMARK", {"metadata": {"resourceVersion": str(self.rv)}})
            )
            self.cond.notify_all()

    def compact(self) -> None:
        with self.cond:
            self.events.clear()
            self.compacted_rv = self.rv

    def end_watches(self) -> None:
        """End every open watch as a server-side timeout would (cleanly)."""
        with self.cond:
            self.watch_generation += 1
            self.cond.notify_all()

    def count(self, verb: str) -> int:
        return sum(1 for name, _ in self.calls if name == verb)

    # ---- KubeApi: the read verbs the informer uses

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> JsonObject:
        with self.cond:
            self.calls.append(("list", {"ns": namespace, "labels": label_selector}))
            if self.list_failures:
                raise self.list_failures.pop(0)
            if self.absent:
                raise NotFound(404, "NotFound", "the server could not find the requested resource")
            return {
                "metadata": {"resourceVersion": str(self.rv)},
                "items": [copy.deepcopy(o) for o in self.objects.values()],
            }

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_s: int | None = None,
        allow_bookmarks: bool = False,
    ) -> Generator[WatchEvent, None, None]:
        with self.cond:
            self.calls.append(("watch", {"rv": resource_version, "timeout_s": timeout_s}))
            self.cond.notify_all()
            if self.watch_failures:
                raise self.watch_failures.pop(0)
            if self.absent:
                raise NotFound(404, "NotFound", "gone")
            since = int(resource_version or 0)
            if since < self.compacted_rv:
                raise Gone(410, "Expired", f"too old resource version: {since}")
            bookmarks = self.bookmark_interval_s if allow_bookmarks else None
            return self._events(since, float(timeout_s or 3600), self.watch_generation, bookmarks)

    def _events(
        self, since: int, timeout_s: float, generation: int, bookmark_interval_s: float | None
    ) -> Generator[WatchEvent, None, None]:
        # NB: named like KubernetesApi's local so the informer's stop() can interrupt us too.
        raw = _Stream(self.cond)
        deadline = time.monotonic() + timeout_s
        with self.cond:
            self.open_watches += 1
        try:
            while True:
                event: WatchEvent | None = None
                with self.cond:
                    pending = [e for e in self.events if e[0] > since]
                    if pending:
                        since, kind, item = pending[0]
                        event = (kind, copy.deepcopy(item))
                    elif raw.closed:
                        raise KubeUnavailable("watch broke off: connection shut down")
                    elif time.monotonic() >= deadline or generation != self.watch_generation:
                        return
                    else:
                        wait_s = deadline - time.monotonic()
                        if bookmark_interval_s is not None:
                            wait_s = min(wait_s, bookmark_interval_s)
                        if not self.cond.wait(wait_s) and bookmark_interval_s is not None:
                            since = self.rv
                            event = ("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv)}})
                if event is not None:
                    yield event
        finally:
            with self.cond:
                self.open_watches -= 1

    # ---- KubeApi: verbs the informer must never call

    def get(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        raise AssertionError("an informer must read from its cache, not GET")

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject:
        raise AssertionError("an informer never writes")

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        raise AssertionError("an informer never writes")

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: JsonObject | Sequence[JsonObject],
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JsonObject:
        raise AssertionError("an informer never writes")

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> JsonObject:
        raise AssertionError("an informer never writes")


_check: KubeApi = FakeKube()


# --------------------------------------------------------------------------------------------
# Helpers


class Recorder:
    """A handler that records ``(type, name)`` and lets the test wait for a condition."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.objects: list[JsonObject] = []
        self._cond = threading.Condition()

    def __call__(self, event_type: EventType, item: JsonObject) -> None:
        with self._cond:
            self.events.append((event_type, item["metadata"]["name"]))
            self.objects.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[str, str]]], bool]) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), WAIT_S):
                raise AssertionError(f"condition not met; events so far: {self.events}")

    def wait_count(self, count: int) -> list[tuple[str, str]]:
        self.wait_for(lambda events: len(events) >= count)
        return self.events[:count]

    def non_resync(self) -> list[tuple[str, str]]:
        with self._cond:
            return [e for e in self.events if e[0] != "RESYNC"]


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def fake() -> FakeKube:
    return FakeKube()


@pytest.fixture
def run_informer(no_leaked_threads: None) -> Iterator[Callable[..., tuple[Informer, Recorder]]]:
    started: list[Informer] = []

    def start(
        api: KubeApi, resource: Resource = DANMNETS, **kwargs: Any
    ) -> tuple[Informer, Recorder]:
        recorder = Recorder()
        kwargs.setdefault("resync_s", 3600.0)
        kwargs.setdefault("min_backoff_s", 0.001)
        kwargs.setdefault("max_backoff_s", 0.01)
        kwargs.setdefault("absent_retry_s", 0.01)
        informer = Informer(api, resource, on_change=recorder, **kwargs)
        started.append(informer)
        informer.start()
        return informer, recorder

    yield start
    for informer in started:
        informer.stop(timeout_s=WAIT_S)


# --------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("candidate", "cached", "newer"),
    [("5", "4", True), ("4", "5", False), ("5", "5", False), ("10", "9", True), ("b", "a", True)],
)
def test_is_newer(candidate: str, cached: str, newer: bool) -> None:
    assert is_newer(candidate, cached) is newer


def test_diff_listing_reports_every_kind_of_change() -> None:
    cached = {
        ("default", "kept"): obj("kept", 1, uid="k"),
        ("default", "changed"): obj("changed", 2, uid="c"),
        ("default", "removed"): obj("removed", 3, uid="r"),
        ("default", "recreated"): obj("recreated", 4, uid="old"),
        ("default", "stale"): obj("stale", 9, uid="s"),
    }
    listed = [
        obj("kept", 1, uid="k"),
        obj("changed", 7, uid="c"),
        obj("recreated", 8, uid="new"),
        obj("added", 6, uid="a"),
        obj("stale", 5, uid="s"),
    ]
    merged, events = diff_listing(cached, listed)
    assert [
        (kind, o["metadata"]["name"], o["metadata"]["resourceVersion"]) for kind, o in events
    ] == [
        ("DELETED", "removed", "3"),
        ("MODIFIED", "changed", "7"),
        ("DELETED", "recreated", "4"),
        ("ADDED", "recreated", "8"),
        ("ADDED", "added", "6"),
    ]
    assert sorted(merged) == sorted(
        ("default", n) for n in ["kept", "changed", "recreated", "added", "stale"]
    )
    assert merged[("default", "stale")]["metadata"]["resourceVersion"] == "9"


# --------------------------------------------------------------------------------------------
# The loop


def test_initial_list_then_watch_events_in_order(fake: FakeKube, run_informer: Any) -> None:
    fake.put("a", v=1)
    fake.put("b", v=1)
    informer, recorder = run_informer(fake)
    assert informer.wait_synced(WAIT_S)
    assert informer.synced
    assert informer.served
    assert recorder.wait_count(2) == [("ADDED", "a"), ("ADDED", "b")]
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "b"]
    fake.put("a", v=2)
    fake.put("c")
    fake.remove("b")
    assert recorder.wait_count(5)[2:] == [("MODIFIED", "a"), ("ADDED", "c"), ("DELETED", "b")]
    cached = informer.get("a", "default")
    assert cached is not None
    assert cached["spec"] == {"v": 2}
    assert informer.get("b", "default") is None
    # NB: the watch resumed from the list's version: no replayed ADDEDs.
    assert fake.calls[1] == ("watch", {"rv": "2", "timeout_s": 300})


def test_cache_snapshots_are_private_copies(fake: FakeKube, run_informer: Any) -> None:
    fake.put("a", v=1)
    informer, recorder = run_informer(fake)
    recorder.wait_count(1)
    informer.items()[0]["spec"]["v"] = 99
    got = informer.get("a", "default")
    assert got is not None
    got["spec"]["v"] = 98
    recorder.objects[0]["spec"]["v"] = 97
    again = informer.get("a", "default")
    assert again is not None
    assert again["spec"] == {"v": 1}


def test_gone_relists_and_emits_the_difference(fake: FakeKube, run_informer: Any) -> None:
    fake.put("a", v=1)
    fake.put("b")
    informer, recorder = run_informer(fake)
    recorder.wait_count(2)
    # NB: changes the open watch never sees; then the history is compacted and the watch ends.
    fake.put("a", record=False, v=2)
    fake.remove("b", record=False)
    fake.put("c", record=False)
    fake.compact()
    fake.end_watches()
    assert recorder.wait_count(5)[2:] == [("DELETED", "b"), ("MODIFIED", "a"), ("ADDED", "c")]
    assert fake.count("list") == 2  # NB: one relist, at once, without an error backoff
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c"]


def test_unreachable_api_is_retried_then_relisted(fake: FakeKube, run_informer: Any) -> None:
    fake.list_failures = [KubeUnavailable("connection refused")] * 3
    fake.put("a")
    informer, recorder = run_informer(fake)
    assert recorder.wait_count(1) == [("ADDED", "a")]
    assert fake.count("list") == 4
    fake.watch_failures = [KubeUnavailable("connection reset")]
    fake.remove("a", record=False)
    fake.end_watches()
    recorder.wait_for(lambda events: ("DELETED", "a") in events)
    assert informer.items() == []


def test_missing_collection_is_served_false_until_it_appears(
    fake: FakeKube, run_informer: Any
) -> None:
    fake.absent = True
    informer, recorder = run_informer(fake)
    assert informer.wait_synced(WAIT_S)
    assert not informer.served
    assert informer.items() == []
    fake.put("a")
    fake.absent = False
    recorder.wait_for(lambda events: ("ADDED", "a") in events)
    assert informer.served
    # NB: the CRD goes away: the objects go with it.
    with fake.cond:
        fake.absent = True
    fake.end_watches()
    recorder.wait_for(lambda events: ("DELETED", "a") in events)
    assert not informer.served
    assert informer.items() == []


def test_resync_repeats_every_cached_object(fake: FakeKube, run_informer: Any) -> None:
    fake.put("a")
    fake.put("b")
    fake.bookmark_interval_s = 0.01  # NB: a quiet stream still ticks, as the stand-in's does
    _, recorder = run_informer(fake, resync_s=0.01)
    recorder.wait_for(
        lambda events: events.count(("RESYNC", "a")) >= 2 and events.count(("RESYNC", "b")) >= 2
    )
    assert recorder.non_resync() == [("ADDED", "a"), ("ADDED", "b")]


def test_bookmarks_only_advance_the_resource_version(fake: FakeKube, run_informer: Any) -> None:
    fake.put("a")
    _, recorder = run_informer(fake)
    recorder.wait_count(1)
    with fake.cond:
        assert fake.cond.wait_for(lambda: fake.open_watches == 1, WAIT_S)
    fake.bookmark(5)
    fake.end_watches()
    with fake.cond:
        assert fake.cond.wait_for(lambda: fake.count("watch") >= 2, WAIT_S)
        assert fake.calls[-1][1]["rv"] == "6"
    assert recorder.events == [("ADDED", "a")]


def test_a_failing_handler_does_not_stop_the_others(
    fake: FakeKube, no_leaked_threads: None
) -> None:
    fake.put("a")
    seen: list[str] = []

    def broken(event_type: EventType, item: JsonObject) -> None:
        raise RuntimeError("handler bug")

    informer = Informer(fake, DANMNETS, on_change=broken, min_backoff_s=0.001)
    informer.add_handler(lambda t, o: seen.append(t))
    recorder = Recorder()
    informer.add_handler(recorder)
    informer.start()
    try:
        recorder.wait_count(1)
        fake.put("b")
        recorder.wait_count(2)
    finally:
        informer.stop(WAIT_S)
    assert seen == ["ADDED", "ADDED"]
    assert fake.count("list") == 1


def test_stop_interrupts_an_open_watch(fake: FakeKube, no_leaked_threads: None) -> None:
    informer = Informer(fake, DANMNETS, watch_timeout_s=3600, resync_s=3600)
    informer.start()
    assert informer.wait_synced(WAIT_S)
    with fake.cond:
        assert fake.cond.wait_for(lambda: fake.open_watches == 1, WAIT_S)
    informer.stop(timeout_s=WAIT_S)
    assert fake.open_watches == 0
    informer.stop()  # NB: idempotent


def test_start_twice_is_an_error(fake: FakeKube, run_informer: Any) -> None:
    informer, _ = run_informer(fake)
    with pytest.raises(RuntimeError, match="already started"):
        informer.start()


def test_stop_before_start_is_harmless(fake: FakeKube) -> None:
    Informer(fake, DANMNETS).stop()


def test_cluster_scoped_get_ignores_namespace(run_informer: Any) -> None:
    fake = FakeKube()
    fake.put("a")
    fake.objects = {("", "a"): obj("a", 1, namespace="")}
    informer, recorder = run_informer(fake, CLUSTERNETWORKS)
    recorder.wait_count(1)
    assert informer.get("a") is not None
    assert informer.get("a", "ignored") is not None
