"""svcwatcher.controller without threads: handlers fed by hand, the queue drained by hand.

The informers are never started; ``settle`` plays their part for our own Endpoints and slices
(it feeds what the fake API holds back into the handlers, as a watch would) and runs ``sync``
for every queued key until nothing changes, so write counts are exact.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from common.io.kube import Conflict, Invalid
from common.model.resources import ENDPOINTS, ENDPOINTSLICES, EVENTS, SERVICES
from svcwatcher import endpoints as ep
from svcwatcher.controller import Options, SvcWatcher
from svcwatcher.events import EventRecorder
from tests.unit.svcwatcher.builders import danmep, pod, pod_status, service
from tests.unit.svcwatcher.fakes import FakeKube

LB = {"app": "lb"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeKube:
    return FakeKube()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watcher(fake: FakeKube, clock: Clock) -> SvcWatcher:
    recorder = EventRecorder(
        fake,
        instance="test",
        clock=clock,
        now=lambda: datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
    )
    return SvcWatcher(fake, options=Options(), recorder=recorder)


def _ours(fake: FakeKube) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        key: obj
        for key, obj in fake.objects.items()
        if (key[0] == "endpoints" and ep.is_ours_endpoints(obj))
        or (key[0] == "endpointslices" and ep.is_ours_slice(obj))
    }


def settle(watcher: SvcWatcher, fake: FakeKube, max_rounds: int = 20) -> int:
    """Run queued syncs and echo our objects back like the informers would; return sync count."""
    seen = fake.echoed
    syncs = 0
    for _ in range(max_rounds):
        ours = _ours(fake)
        for key, obj in ours.items():
            if seen.get(key) != obj:
                handler = watcher.on_endpoints if key[0] == "endpoints" else watcher.on_slice
                handler("MODIFIED" if key in seen else "ADDED", copy.deepcopy(obj))
        for key, obj in seen.items():
            if key not in ours:
                handler = watcher.on_endpoints if key[0] == "endpoints" else watcher.on_slice
                handler("DELETED", copy.deepcopy(obj))
        seen.clear()
        seen.update(copy.deepcopy(ours))
        queued = watcher.queue.get(timeout_s=0)
        if queued is None:
            return syncs
        try:
            watcher.sync(queued)
            syncs += 1
        finally:
            watcher.queue.done(queued)
    raise AssertionError("the controller did not settle")


def _endpoints(fake: FakeKube, name: str = "s", namespace: str = "vnf") -> dict[str, Any]:
    return fake.objects[("endpoints", namespace, name)]


def _ready_ips(fake: FakeKube, name: str = "s") -> list[str]:
    return [a["ip"] for s in _endpoints(fake, name)["subsets"] for a in s.get("addresses", [])]


def _setup_one_service(watcher: SvcWatcher, fake: FakeKube, pods: int = 3) -> None:
    watcher.on_service("ADDED", fake.put(SERVICES, service("s", selector=LB, network="n")))
    for i in range(pods):
        watcher.on_pod("ADDED", pod(f"p{i}", labels=LB))
        watcher.on_danmep("ADDED", danmep(f"p{i}", "n", ipv4=f"10.0.0.{i + 1}/24"))


def test_burst_of_changes_is_one_reconcile_and_one_write_per_object(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake, pods=50)
    assert len(watcher.queue) == 1
    settle(watcher, fake)
    assert fake.writes("create") == [
        ("create", "endpoints", "vnf", "s"),
        ("create", "endpointslices", "vnf", next(iter(watcher.facts.slices["vnf/s"]))),
    ]
    assert len(_ready_ips(fake)) == 50
    fake.calls.clear()
    for i in range(50):
        watcher.on_pod("MODIFIED", pod(f"p{i}", labels=LB, ready=False))
    assert len(watcher.queue) == 1
    settle(watcher, fake)
    assert [c[:2] for c in fake.writes()] == [
        ("replace", "endpoints"),
        ("replace", "endpointslices"),
    ]
    assert _ready_ips(fake) == []


def test_nothing_is_written_when_nothing_changed(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    fake.calls.clear()
    svc = fake.get(SERVICES, "vnf", "s")
    watcher.on_service("RESYNC", svc)
    same_pod = pod("p0", labels=LB)
    same_pod["metadata"]["uid"] = watcher.facts.pods["vnf"]["p0"].uid
    watcher.on_pod("MODIFIED", same_pod)  # NB: equal facts: not even a reconcile
    assert settle(watcher, fake) == 1
    assert fake.writes() == []


def test_trigger_time_annotation_is_set_on_change(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    annotations = _endpoints(fake)["metadata"]["annotations"]
    assert annotations[ep.ANNOTATION_TRIGGER_TIME].endswith("Z")


def test_pod_label_change_and_readiness_flip(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    watcher.on_pod("MODIFIED", pod("p1", labels={"app": "other"}))
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.3"]
    flipped = pod("p2", labels=LB)
    flipped["status"] = pod_status(ready=False)
    watcher.on_pod("MODIFIED", flipped)
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1"]
    (subset,) = _endpoints(fake)["subsets"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.3"]


def test_danmep_add_and_remove(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake, pods=1)
    settle(watcher, fake)
    extra = danmep("p0", "n", ipv4="10.0.0.9/24", name="second")
    watcher.on_danmep("ADDED", extra)
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.9"]
    watcher.on_danmep("DELETED", extra)
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1"]


def test_danmep_on_another_network_does_not_even_reconcile(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake, pods=1)
    settle(watcher, fake)
    watcher.on_danmep("ADDED", danmep("p0", "management", ipv4="10.9.0.1/24"))
    assert len(watcher.queue) == 0


def test_service_deleted_removes_only_our_objects(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    foreign = fake.put(
        ENDPOINTSLICES,
        {
            "metadata": {
                "name": "s-kube",
                "namespace": "vnf",
                "labels": {
                    ep.LABEL_SERVICE_NAME: "s",
                    ep.LABEL_SLICE_MANAGED_BY: "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "endpoints": [],
        },
    )
    # NB: even if a foreign slice slipped into our facts, the mark is checked before deleting.
    watcher.on_slice("ADDED", foreign)
    svc = fake.objects.pop(("services", "vnf", "s"))
    watcher.on_service("DELETED", svc)
    settle(watcher, fake)
    assert sorted(k for k in fake.objects if k[0] in ("endpoints", "endpointslices")) == [
        ("endpointslices", "vnf", "s-kube")
    ]


def test_service_that_gains_a_spec_selector_is_handed_back(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    taken = service("s", selector=LB, network="n", spec_selector=LB)
    watcher.on_service("MODIFIED", fake.put(SERVICES, taken))
    settle(watcher, fake)
    assert _ours(fake) == {}


def test_foreign_endpoints_are_never_written_and_reported(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "s", "namespace": "vnf", "labels": {"owner": "someone"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}]}],
    }
    before = fake.put(ENDPOINTS, foreign)
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    assert fake.objects[("endpoints", "vnf", "s")] == before
    assert not fake.writes("replace", "endpoints")
    assert not fake.writes("delete")
    (event,) = [o for k, o in fake.objects.items() if k[0] == "events"]
    assert event["reason"] == "EndpointsNotManaged"
    assert event["involvedObject"]["name"] == "s"
    assert event["type"] == "Warning"


def test_bad_annotation_is_an_event_and_other_services_still_work(
    watcher: SvcWatcher, fake: FakeKube, clock: Clock
) -> None:
    bad = fake.put(SERVICES, service("bad", selector="{nope", network="n"))
    watcher.on_service("ADDED", bad)
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert ("endpoints", "vnf", "bad") not in fake.objects
    (event,) = [o for k, o in fake.objects.items() if k[0] == "events"]
    assert event["reason"] == "InvalidDanmAnnotation"
    assert "not valid JSON" in event["message"]
    assert event["involvedObject"]["uid"] == bad["metadata"]["uid"]
    # NB: resyncs repeat the complaint; it is folded into the same Event, not a new one each time.
    watcher.on_service("RESYNC", bad)
    settle(watcher, fake)
    assert len(fake.writes(plural=EVENTS.plural)) == 1
    clock.now += 301
    watcher.on_service("RESYNC", bad)
    settle(watcher, fake)
    assert [c[0] for c in fake.writes(plural=EVENTS.plural)] == ["create", "patch"]
    (event,) = [o for k, o in fake.objects.items() if k[0] == "events"]
    assert event["count"] == 3


def test_invalid_service_keeps_its_last_good_endpoints(watcher: SvcWatcher, fake: FakeKube) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    broken = service("s", selector="{nope", network="n")
    watcher.on_service("MODIFIED", fake.put(SERVICES, broken))
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_update_conflict_is_retried_once_with_a_fresh_read(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    fake.conflicts_to_inject = 1
    watcher.on_pod("MODIFIED", pod("p0", labels=LB, ready=False))
    settle(watcher, fake)
    assert [c[0] for c in fake.writes(plural="endpoints")][-2:] == ["replace", "replace"]
    assert _ready_ips(fake) == ["10.0.0.2", "10.0.0.3"]


def test_persistent_conflict_propagates_for_a_rate_limited_retry(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    fake.conflicts_to_inject = 5
    watcher.on_pod("MODIFIED", pod("p0", labels=LB, ready=False))
    with pytest.raises(Conflict):
        watcher.sync("vnf/s")


def test_our_endpoints_deleted_by_someone_are_recreated(
    watcher: SvcWatcher, fake: FakeKube
) -> None:
    _setup_one_service(watcher, fake)
    settle(watcher, fake)
    del fake.objects[("endpoints", "vnf", "s")]
    settle(watcher, fake)
    assert _ready_ips(fake) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_slices_that_are_no_longer_wanted_are_deleted(watcher: SvcWatcher, fake: FakeKube) -> None:
    watcher.on_service("ADDED", fake.put(SERVICES, service("s", selector=LB, network="n")))
    for i in range(150):
        watcher.on_pod("ADDED", pod(f"p{i}", labels=LB))
        watcher.on_danmep("ADDED", danmep(f"p{i}", "n", ipv4=f"10.0.{i // 200}.{i % 200 + 1}/16"))
    settle(watcher, fake)
    assert len(watcher.facts.slices["vnf/s"]) == 2
    for i in range(60, 150):
        watcher.on_pod("DELETED", pod(f"p{i}", labels=LB))
    settle(watcher, fake)
    assert len([k for k in fake.objects if k[0] == "endpointslices"]) == 1
    assert len(_ready_ips(fake)) == 60


def test_refused_write_is_retried_later_and_reported_on_the_service(
    watcher: SvcWatcher, fake: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup_one_service(watcher, fake)

    def refuse(resource: Any, namespace: Any, body: Any) -> Any:
        if resource is ENDPOINTSLICES:
            raise Invalid(422, "Invalid", "EndpointSlice is invalid: endpoints[0]: bad")
        return original(resource, namespace, body)

    original = fake.create
    monkeypatch.setattr(fake, "create", refuse)
    key = watcher.queue.get(timeout_s=0)
    assert key == "vnf/s"
    watcher.process(key)
    assert watcher.queue.num_requeues("vnf/s") == 1
    assert len(watcher.queue) == 0  # NB: parked with backoff, not spinning
    events = [o for k, o in fake.objects.items() if k[0] == "events"]
    assert [(e["reason"], e["message"]) for e in events] == [
        ("FailedToUpdateEndpoints", "422 Invalid: EndpointSlice is invalid: endpoints[0]: bad")
    ]
