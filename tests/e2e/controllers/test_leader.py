"""LeaderElector against the API stand-in's Leases: one leader, hand-over on release, takeover
after expiry, and leadership lost when renewing fails or someone else took the Lease."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.io.kube import JsonObject, KubernetesApi, KubeUnavailable, NotFound
from common.io.leader import LeaderElector, format_micro_time
from common.model.resources import LEASES

pytestmark = pytest.mark.e2e

WAIT_S = 15.0  # NB: an upper bound for a hung test only; nothing asserts on speed.
NS, LEASE = "default", "svcwatcher"
# NB: short but ordered like the defaults (duration > deadline > retry), with enough slack that
# a loaded CI machine does not make a healthy leader miss its renewals.
FAST: dict[str, Any] = {"lease_duration_s": 2.0, "renew_deadline_s": 1.2, "retry_period_s": 0.05}


class FlakyApi:
    """The real adapter, until ``broken`` is set: then every call fails as if the API (or this
    replica's network) were gone. It counts calls so tests can wait for "a few more rounds"."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api
        self.broken = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, verb: str) -> Any:
        target = getattr(self._api, verb)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
            if self.broken.is_set():
                raise KubeUnavailable(f"{verb}: connection refused (test)")
            return target(*args, **kwargs)

        return call


@dataclass
class Candidate:
    """One elector running in its own thread, recording when its work starts and stops."""

    elector: LeaderElector
    api: FlakyApi
    stop: threading.Event = field(default_factory=threading.Event)
    leading: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event | None = None
    work_ended: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def work(self, lost: threading.Event) -> None:
        self.lost = lost
        self.leading.set()
        lost.wait()
        self.work_ended.set()

    def start(self) -> Candidate:
        self.thread = threading.Thread(
            target=self.elector.run, args=(self.work, self.stop), name=self.elector.identity
        )
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(WAIT_S)
            assert not self.thread.is_alive(), f"{self.elector.identity} did not return"


@pytest.fixture
def candidates(api: KubernetesApi) -> Iterator[Callable[[str], Candidate]]:
    made: list[Candidate] = []

    def make(identity: str) -> Candidate:
        flaky = FlakyApi(api)
        via: Any = flaky  # NB: duck-typed KubeApi (delegates every verb)
        elector = LeaderElector(via, namespace=NS, name=LEASE, identity=identity, **FAST)
        candidate = Candidate(elector, flaky)
        made.append(candidate)
        return candidate.start()

    yield make
    for candidate in made:
        candidate.finish()


def lease_spec(api: KubernetesApi) -> JsonObject:
    spec: JsonObject = api.get(LEASES, NS, LEASE)["spec"]
    return spec


def wait_calls(candidate: Candidate, more: int) -> None:
    """Wait until ``candidate`` made ``more`` further API calls (i.e. kept campaigning)."""
    target = candidate.api.calls + more
    done = threading.Event()
    for _ in range(int(WAIT_S / 0.01)):
        if candidate.api.calls >= target:
            return
        done.wait(0.01)
    raise AssertionError(f"{candidate.elector.identity} stopped calling the API")


def first_leader(*contenders: Candidate) -> Candidate:
    waiter = threading.Event()
    for _ in range(int(WAIT_S / 0.01)):
        for contender in contenders:
            if contender.leading.is_set():
                return contender
        waiter.wait(0.01)
    raise AssertionError("nobody became leader")


def test_two_candidates_one_leader(
    api: KubernetesApi, candidates: Callable[[str], Candidate]
) -> None:
    a, b = candidates("a"), candidates("b")
    leader = first_leader(a, b)
    follower = b if leader is a else a
    wait_calls(follower, 5)  # NB: the follower keeps trying and keeps failing
    assert leader.elector.is_leader
    assert not follower.elector.is_leader
    assert not follower.leading.is_set()
    assert follower.elector.observed_holder == leader.elector.identity
    spec = lease_spec(api)
    assert spec["holderIdentity"] == leader.elector.identity
    assert spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 0
    # NB: MicroTime, e.g. 2024-05-01T10:00:00.123456Z
    datetime.datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_release_on_stop_hands_over(
    api: KubernetesApi, candidates: Callable[[str], Candidate]
) -> None:
    a = candidates("a")
    assert a.leading.wait(WAIT_S)
    b = candidates("b")
    wait_calls(b, 3)
    a.finish()  # NB: stop → work told to stop → then the lease is released
    # NB: released, not merely left to expire: b could not have waited out a's 2 s yet.
    assert lease_spec(api)["holderIdentity"] in ("", "b")
    assert a.lost is not None
    assert a.lost.is_set()
    assert a.work_ended.is_set()
    assert not a.elector.is_leader
    assert b.leading.wait(WAIT_S)
    spec = lease_spec(api)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


def test_takeover_after_a_dead_holder_expires(
    api: KubernetesApi, candidates: Callable[[str], Candidate]
) -> None:
    now = format_micro_time(datetime.datetime.now(datetime.UTC))
    api.create(
        LEASES,
        NS,
        {
            "metadata": {"name": LEASE, "namespace": NS},
            "spec": {
                "holderIdentity": "crashed-pod",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 4,
            },
        },
    )
    b = candidates("b")
    assert b.leading.wait(WAIT_S)
    spec = lease_spec(api)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 5
    assert spec["acquireTime"] != now


def test_leader_that_cannot_renew_loses_and_another_takes_over(
    api: KubernetesApi, candidates: Callable[[str], Candidate]
) -> None:
    a = candidates("a")
    assert a.leading.wait(WAIT_S)
    b = candidates("b")
    wait_calls(b, 3)
    a.api.broken.set()  # NB: a is cut off: it can neither renew nor release
    assert a.work_ended.wait(WAIT_S)
    assert a.lost is not None
    assert a.lost.is_set()
    assert a.thread is not None
    a.thread.join(WAIT_S)
    assert not a.thread.is_alive()  # NB: run() returned on its own, without a stop
    assert not a.elector.is_leader
    assert b.leading.wait(WAIT_S)
    assert lease_spec(api)["holderIdentity"] == "b"


def test_leader_whose_lease_was_taken_loses(
    api: KubernetesApi, candidates: Callable[[str], Candidate]
) -> None:
    a = candidates("a")
    assert a.leading.wait(WAIT_S)
    lease = api.get(LEASES, NS, LEASE)
    lease["spec"]["holderIdentity"] = "usurper"
    lease["spec"]["leaseDurationSeconds"] = 3600
    api.replace(LEASES, NS, LEASE, lease)
    assert a.work_ended.wait(WAIT_S)
    assert a.elector.observed_holder == "usurper"
    a.finish()
    # NB: it was not ours any more, so stopping must not release someone else's lease.
    assert lease_spec(api)["holderIdentity"] == "usurper"


def test_stop_before_acquiring_never_starts_the_work(api: KubernetesApi) -> None:
    stop = threading.Event()
    stop.set()
    started: list[threading.Event] = []
    LeaderElector(api, namespace=NS, name=LEASE, identity="a", **FAST).run(started.append, stop)
    assert started == []
    with pytest.raises(NotFound):
        api.get(LEASES, NS, LEASE)


@pytest.mark.parametrize(
    ("identity", "timing"),
    [
        ("", FAST),
        ("a", {"lease_duration_s": 1.0, "renew_deadline_s": 1.0, "retry_period_s": 0.1}),
        ("a", {"lease_duration_s": 2.0, "renew_deadline_s": 1.0, "retry_period_s": 1.0}),
        ("a", {"lease_duration_s": 2.0, "renew_deadline_s": 1.0, "retry_period_s": 0.0}),
    ],
)
def test_rejects_unsafe_settings(api: KubernetesApi, identity: str, timing: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="leader election needs"):
        LeaderElector(api, namespace=NS, name=LEASE, identity=identity, **timing)
