"""Informer against the shared in-memory KubeApi: the diff logic and every error path.

The fake (tests/unit/fake_kube.py) keeps objects, an event log and a compaction mark like the
real server, and lets a test script what is awkward to provoke on a real API server: an
unreachable API, 410 after compaction, 404 while a CRD is missing, a watch that lags.
tests/e2e/controllers/test_informer.py runs the same behaviour against tests/kubeapi.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.io.informer import EventType, Informer, diff_listing, is_newer
from common.io.kube import JsonObject, KubeApi, KubeUnavailable
from common.model.resources import CLUSTERNETWORKS, DANMNETS, PODS, Resource
from tests.unit.fake_kube import WAIT_S, FakeKube


def obj(
    name: str, rv: int, *, namespace: str = "default", uid: str = "", **spec: Any
) -> JsonObject:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": str(rv)}
    if uid:
        metadata["uid"] = uid
    return {"metadata": metadata, "spec": spec}


# --------------------------------------------------------------------------------------------
# The fake: the shared one, plus shorthands for one resource's objects in "default"

INFORMER_NEVER = "an informer reads from its cache and never writes"


def put(fake: FakeKube, name: str, **spec: Any) -> JsonObject:
    return fake.put(DANMNETS, {"metadata": {"name": name, "namespace": "default"}, "spec": spec})


def remove(fake: FakeKube, name: str) -> None:
    fake.remove(DANMNETS, "default", name)


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
    return FakeKube(
        forbidden=dict.fromkeys(["get", "create", "replace", "patch", "delete"], INFORMER_NEVER)
    )


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
    put(fake, "a", v=1)
    put(fake, "b", v=1)
    informer, recorder = run_informer(fake)
    assert informer.wait_synced(WAIT_S)
    assert informer.synced
    assert informer.served
    assert recorder.wait_count(2) == [("ADDED", "a"), ("ADDED", "b")]
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "b"]
    put(fake, "a", v=2)
    put(fake, "c")
    remove(fake, "b")
    assert recorder.wait_count(5)[2:] == [("MODIFIED", "a"), ("ADDED", "c"), ("DELETED", "b")]
    cached = informer.get("a", "default")
    assert cached is not None
    assert cached["spec"] == {"v": 2}
    assert informer.get("b", "default") is None
    # NB: the watch resumed from the list's version: no replayed ADDEDs.
    assert [call.verb for call in fake.calls[:2]] == ["list", "watch"]
    first_watch = fake.watches[0]
    assert (first_watch.resource_version, first_watch.timeout_s) == ("2", 300)
    assert first_watch.allow_bookmarks


def test_cache_snapshots_are_private_copies(fake: FakeKube, run_informer: Any) -> None:
    put(fake, "a", v=1)
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
    put(fake, "a", v=1)
    put(fake, "b")
    informer, recorder = run_informer(fake)
    recorder.wait_count(2)
    # NB: changes the lagging watch never delivers; then the history is compacted and the
    # watch ends, so the informer's next watch is from a version the server no longer has.
    with fake.watches_held():
        put(fake, "a", v=2)
        remove(fake, "b")
        put(fake, "c")
        fake.compact()
        fake.end_watches()
    assert recorder.wait_count(5)[2:] == [("DELETED", "b"), ("MODIFIED", "a"), ("ADDED", "c")]
    assert fake.count("list") == 2  # NB: one relist, at once, without an error backoff
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c"]


def test_unreachable_api_is_retried_then_relisted(fake: FakeKube, run_informer: Any) -> None:
    fake.fail_next("list", *[KubeUnavailable("connection refused")] * 3)
    put(fake, "a")
    informer, recorder = run_informer(fake)
    assert recorder.wait_count(1) == [("ADDED", "a")]
    assert fake.count("list") == 4
    with fake.watches_held():
        fake.fail_next("watch", KubeUnavailable("connection reset"))
        remove(fake, "a")
        fake.end_watches()
        recorder.wait_for(lambda events: ("DELETED", "a") in events)
    assert informer.items() == []
    assert fake.count("list") == 5


def test_missing_collection_is_served_false_until_it_appears(
    fake: FakeKube, run_informer: Any
) -> None:
    fake.unserve(DANMNETS)
    informer, recorder = run_informer(fake)
    assert informer.wait_synced(WAIT_S)
    assert not informer.served
    assert informer.items() == []
    put(fake, "a")
    fake.serve(DANMNETS)
    recorder.wait_for(lambda events: ("ADDED", "a") in events)
    assert informer.served
    # NB: the CRD goes away: the objects go with it.
    fake.unserve(DANMNETS)
    recorder.wait_for(lambda events: ("DELETED", "a") in events)
    assert not informer.served
    assert informer.items() == []


def test_resync_repeats_every_cached_object(fake: FakeKube, run_informer: Any) -> None:
    put(fake, "a")
    put(fake, "b")
    fake.bookmark_interval_s = 0.01  # NB: a quiet stream still ticks, as the stand-in's does
    _, recorder = run_informer(fake, resync_s=0.01)
    recorder.wait_for(
        lambda events: events.count(("RESYNC", "a")) >= 2 and events.count(("RESYNC", "b")) >= 2
    )
    assert recorder.non_resync() == [("ADDED", "a"), ("ADDED", "b")]


def test_bookmarks_only_advance_the_resource_version(fake: FakeKube, run_informer: Any) -> None:
    put(fake, "a")
    _, recorder = run_informer(fake)
    recorder.wait_count(1)
    assert fake.wait_for(lambda: fake.open_watches == 1)
    for index in range(5):  # NB: writes the informer's watch does not see
        fake.put(PODS, {"metadata": {"name": f"p{index}", "namespace": "default"}})
    fake.send_bookmarks()
    fake.end_watches()
    assert fake.wait_for(lambda: fake.count("watch") >= 2)
    assert fake.watches[-1].resource_version == "6"
    assert recorder.events == [("ADDED", "a")]


def test_a_failing_handler_does_not_stop_the_others(
    fake: FakeKube, no_leaked_threads: None
) -> None:
    put(fake, "a")
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
        put(fake, "b")
        recorder.wait_count(2)
    finally:
        informer.stop(WAIT_S)
    assert seen == ["ADDED", "ADDED"]
    assert fake.count("list") == 1


def test_stop_interrupts_an_open_watch(fake: FakeKube, no_leaked_threads: None) -> None:
    informer = Informer(fake, DANMNETS, watch_timeout_s=3600, resync_s=3600)
    informer.start()
    assert informer.wait_synced(WAIT_S)
    assert fake.wait_for(lambda: fake.open_watches == 1)
    # NB: only cancelling the stream can end this watch: it is quiet and has an hour to go.
    informer.stop(timeout_s=WAIT_S)
    assert fake.open_watches == 0
    assert fake.count("watch") == 1
    informer.stop()  # NB: idempotent


def test_start_twice_is_an_error(fake: FakeKube, run_informer: Any) -> None:
    informer, _ = run_informer(fake)
    with pytest.raises(RuntimeError, match="already started"):
        informer.start()


def test_stop_before_start_is_harmless(fake: FakeKube) -> None:
    Informer(fake, DANMNETS).stop()


def test_cluster_scoped_get_ignores_namespace(fake: FakeKube, run_informer: Any) -> None:
    fake.put(CLUSTERNETWORKS, {"metadata": {"name": "a"}})
    informer, recorder = run_informer(fake, CLUSTERNETWORKS)
    recorder.wait_count(1)
    assert informer.get("a") is not None
    assert informer.get("a", "ignored") is not None
