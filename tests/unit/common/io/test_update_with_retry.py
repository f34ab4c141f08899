"""``update_with_retry`` against a tiny recording fake: conflicts, no-ops, aborts, deadline."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.io import kube
from common.model.resources import CLUSTERNETWORKS, DANMNETS, Resource


@dataclass
class RecordingKube:
    """Holds one object; the first ``conflicts`` replaces fail as if another writer won."""

    obj: dict[str, Any]
    conflicts: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def get(self, resource: Resource, namespace: str | None, name: str, **_: Any) -> Any:
        self.calls.append(("get", name))
        return copy.deepcopy(self.obj)

    def replace(
        self, resource: Resource, namespace: str | None, name: str, body: Any, **_: Any
    ) -> Any:
        self.calls.append(("replace", copy.deepcopy(body)))
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise kube.Conflict(409, "Conflict", "stale")
        if self.conflicts:
            self.conflicts -= 1
            # NB: another writer bumps the version, so this write is now stale.
            self.obj["metadata"]["resourceVersion"] = str(
                int(self.obj["metadata"]["resourceVersion"]) + 1
            )
            raise kube.Conflict(409, "Conflict", "the object has been modified")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        self.obj = stored
        return copy.deepcopy(stored)

    # NB: the rest of KubeApi is never called by update_with_retry.
    def list(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("must not be called")

    def create(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("must not be called")

    def patch(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("must not be called")

    def delete(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("must not be called")

    def watch(self, *_: Any, **__: Any) -> kube.WatchStream:
        raise AssertionError("must not be called")


_check: kube.KubeApi = RecordingKube({})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _net(count: int = 0, rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "n1", "namespace": "ns", "resourceVersion": rv},
        "spec": {"count": count},
    }


def _increment(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["count"] += 1
    return obj


def _run(api: RecordingKube, mutate: Any, clock: FakeClock, **kwargs: Any) -> dict[str, Any]:
    return kube.update_with_retry(
        api,
        DANMNETS,
        "ns",
        "n1",
        mutate,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
        **kwargs,
    )


def _ops(calls: Sequence[tuple[str, Any]]) -> list[str]:
    return [op for op, _ in calls]


def test_writes_once_without_contention() -> None:
    api, clock = RecordingKube(_net()), FakeClock()
    result = _run(api, _increment, clock)
    assert result["spec"]["count"] == 1
    assert result["metadata"]["resourceVersion"] == "2"
    assert _ops(api.calls) == ["get", "replace"]
    assert clock.sleeps == []


def test_conflicts_rereads_and_backs_off_exponentially() -> None:
    api, clock = RecordingKube(_net(), conflicts=3), FakeClock()
    result = _run(api, _increment, clock)
    assert result["spec"]["count"] == 1
    assert _ops(api.calls) == ["get", "replace"] * 4
    # NB: jitter pinned to 1.0, so each pause is the ceiling: 10 ms doubling.
    assert clock.sleeps == pytest.approx([0.01, 0.02, 0.04])
    written_versions = [
        body["metadata"]["resourceVersion"] for op, body in api.calls if op == "replace"
    ]
    assert written_versions == ["1", "2", "3", "4"]


def test_backoff_is_capped_and_jittered() -> None:
    api, clock = RecordingKube(_net(), conflicts=10), FakeClock()
    kube.update_with_retry(
        api, DANMNETS, "ns", "n1", _increment,
        sleep=clock.sleep, clock=clock, jitter=lambda: 0.5, max_backoff_s=0.05,
    )  # fmt: skip
    assert clock.sleeps == pytest.approx([0.005, 0.01, 0.02, 0.025] + [0.025] * 6)


@pytest.mark.parametrize("mutate", [lambda obj: None, lambda obj: obj])
def test_no_change_means_no_write(mutate: Any) -> None:
    api, clock = RecordingKube(_net(count=5)), FakeClock()
    result = _run(api, mutate, clock)
    assert result == _net(count=5)
    assert _ops(api.calls) == ["get"]


def test_mutate_gets_a_private_copy() -> None:
    api, clock = RecordingKube(_net()), FakeClock()
    seen: list[dict[str, Any]] = []

    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["count"] = 99  # mutated in place but None returned: no write
        seen.append(obj)

    assert _run(api, mutate, clock)["spec"]["count"] == 0
    assert api.obj["spec"]["count"] == 0
    assert _ops(api.calls) == ["get"]


def test_write_uses_the_read_resource_version_even_if_mutate_drops_it() -> None:
    api, clock = RecordingKube(_net(rv="7")), FakeClock()

    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "DanmNet", "spec": {"count": 1}}

    _run(api, mutate, clock)
    assert api.calls[1][1]["metadata"]["resourceVersion"] == "7"


def test_mutate_exception_aborts_unchanged() -> None:
    class NoRoom(Exception):
        pass

    api, clock = RecordingKube(_net(), conflicts=1), FakeClock()
    attempts = []

    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        attempts.append(obj["metadata"]["resourceVersion"])
        if len(attempts) == 2:
            raise NoRoom("pool exhausted")
        return _increment(obj)

    with pytest.raises(NoRoom, match="pool exhausted"):
        _run(api, mutate, clock)
    assert attempts == ["1", "2"]


def test_other_api_errors_propagate_without_retry() -> None:
    class Missing(RecordingKube):
        def get(self, *_: Any, **__: Any) -> Any:
            self.calls.append(("get", None))
            raise kube.NotFound(404, "NotFound", "gone")

    api, clock = Missing(_net()), FakeClock()
    with pytest.raises(kube.NotFound):
        _run(api, _increment, clock)
    assert _ops(api.calls) == ["get"]
    assert clock.sleeps == []


def test_deadline_gives_a_clear_error() -> None:
    api, clock = RecordingKube(_net(), conflicts=1_000), FakeClock()
    with pytest.raises(kube.RetryDeadlineExceeded) as caught:
        _run(api, _increment, clock, deadline_s=1.0)
    error = caught.value
    assert error.attempts == len(clock.sleeps) + 1
    assert "DanmNet ns/n1" in str(error)
    assert f"{error.attempts} attempts" in str(error)
    assert isinstance(error.__cause__, kube.Conflict)
    assert sum(clock.sleeps) <= 1.0
    # NB: with pauses of 10, 20, 40 ... capped at 1000 ms, 1 s allows exactly 7 attempts.
    assert error.attempts == 7


def test_cluster_scoped_objects_are_named_without_namespace() -> None:
    api, clock = RecordingKube(_net(), conflicts=1_000), FakeClock()
    with pytest.raises(kube.RetryDeadlineExceeded, match="ClusterNetwork n1 after"):
        kube.update_with_retry(
            api, CLUSTERNETWORKS, None, "n1", _increment,
            sleep=clock.sleep, clock=clock, jitter=lambda: 1.0, deadline_s=0.0,
        )  # fmt: skip
