"""The shared fake keeps the ``KubeApi`` contract that tests/contract checks on the adapters."""

from __future__ import annotations

import pytest

from common.io.kube import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Gone,
    JsonObject,
    KubeApiError,
    KubeUnavailable,
    NotFound,
    update_with_retry,
)
from common.model.resources import CONFIGMAPS, DANMNETS
from tests.unit.fake_kube import FakeKube, KubeCall


def configmap(name: str, **labels: str) -> JsonObject:
    return {"metadata": {"name": name, "labels": labels}, "data": {}}


def names(listing: JsonObject) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def test_writes_stamp_versions_and_stale_writes_conflict() -> None:
    fake = FakeKube()
    created = fake.create(CONFIGMAPS, "ns", configmap("a"))
    assert created["metadata"]["namespace"] == "ns"
    assert created["metadata"]["uid"]
    assert (created["apiVersion"], created["kind"]) == ("v1", "ConfigMap")
    with pytest.raises(AlreadyExists):
        fake.create(CONFIGMAPS, "ns", configmap("a"))
    created["data"] = {"k": "1"}
    replaced = fake.replace(CONFIGMAPS, "ns", "a", created)
    assert int(replaced["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(Conflict):
        fake.replace(CONFIGMAPS, "ns", "a", created)
    with pytest.raises(Conflict):
        fake.delete(CONFIGMAPS, "ns", "a", uid="someone-else")
    fake.delete(CONFIGMAPS, "ns", "a", resource_version=replaced["metadata"]["resourceVersion"])
    with pytest.raises(NotFound):
        fake.get(CONFIGMAPS, "ns", "a")
    assert fake.writes() == [
        KubeCall("create", "configmaps", "ns", "a"),
        KubeCall("create", "configmaps", "ns", "a"),
        KubeCall("replace", "configmaps", "ns", "a"),
        KubeCall("replace", "configmaps", "ns", "a"),
        KubeCall("delete", "configmaps", "ns", "a"),
        KubeCall("delete", "configmaps", "ns", "a"),
    ]


def test_patches_in_all_three_formats() -> None:
    fake = FakeKube()
    fake.create(CONFIGMAPS, "ns", {"metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}})
    merged = fake.patch(CONFIGMAPS, "ns", "a", {"data": {"x": None, "z": "3"}})
    assert merged["data"] == {"y": "2", "z": "3"}
    op = {"op": "replace", "path": "/data/y", "value": "4"}
    assert fake.patch(CONFIGMAPS, "ns", "a", [op], patch_type="json")["data"]["y"] == "4"
    strategic = fake.patch(CONFIGMAPS, "ns", "a", {"data": {"w": "5"}}, patch_type="strategic")
    assert strategic["data"] == {"y": "4", "z": "3", "w": "5"}
    with pytest.raises(Conflict):
        fake.patch(CONFIGMAPS, "ns", "a", {"metadata": {"resourceVersion": "1"}})
    fake.create(DANMNETS, "ns", {"metadata": {"name": "n"}, "spec": {}})
    with pytest.raises(KubeApiError) as caught:
        fake.patch(DANMNETS, "ns", "n", {"spec": {}}, patch_type="strategic")
    assert caught.value.status == 415


def test_selectors_filter_lists_and_bad_ones_are_400() -> None:
    fake = FakeKube()
    for name, app in [("a1", "a"), ("b1", "b"), ("a2", "a")]:
        fake.create(CONFIGMAPS, "ns", configmap(name, app=app))
    fake.create(CONFIGMAPS, "other", configmap("a3", app="a"))
    assert names(fake.list(CONFIGMAPS, "ns", label_selector="app=a")) == ["a1", "a2"]
    assert names(fake.list(CONFIGMAPS, None, label_selector="app=a")) == ["a1", "a2", "a3"]
    assert names(fake.list(CONFIGMAPS, "ns", field_selector="metadata.name=b1")) == ["b1"]
    with pytest.raises(BadRequest):
        fake.list(CONFIGMAPS, "ns", field_selector="spec.nope=1")


def test_watch_replays_then_follows_with_selector_semantics() -> None:
    fake = FakeKube()
    fake.create(CONFIGMAPS, "ns", configmap("before", app="x"))
    start = fake.list(CONFIGMAPS, "ns")["metadata"]["resourceVersion"]
    fake.create(CONFIGMAPS, "ns", configmap("w", app="x"))
    fake.patch(CONFIGMAPS, "ns", "w", {"metadata": {"labels": {"app": "y"}}})
    fake.create(CONFIGMAPS, "elsewhere", configmap("e", app="x"))
    stream = fake.watch(
        CONFIGMAPS, "ns", resource_version=start, label_selector="app=x", timeout_s=60
    )
    fake.end_watches()  # NB: what was logged before the end is still delivered
    # NB: an object that stops matching the selector is DELETED for this watch.
    assert [(t, o["metadata"]["name"]) for t, o in stream] == [("ADDED", "w"), ("DELETED", "w")]
    assert fake.open_watches == 0


def test_watch_without_a_version_starts_with_the_current_objects() -> None:
    fake = FakeKube()
    fake.create(CONFIGMAPS, "ns", configmap("a"))
    stream = fake.watch(CONFIGMAPS, "ns", timeout_s=1)
    assert next(stream)[0] == "ADDED"
    fake.create(CONFIGMAPS, "ns", configmap("b"))
    assert next(stream)[1]["metadata"]["name"] == "b"
    stream.close()
    assert fake.open_watches == 0


def test_watch_from_before_a_compaction_is_gone() -> None:
    fake = FakeKube()
    old = fake.create(CONFIGMAPS, "ns", configmap("a"))["metadata"]["resourceVersion"]
    fake.create(CONFIGMAPS, "ns", configmap("b"))
    fake.compact()
    with pytest.raises(Gone):
        list(fake.watch(CONFIGMAPS, "ns", resource_version=old, timeout_s=5))


def test_scripted_failures_and_an_api_that_is_down() -> None:
    fake = FakeKube(forbidden={"delete": "read-only component"})
    fake.fail_next("get", KubeUnavailable("reset"))
    fake.create(CONFIGMAPS, "ns", configmap("a"))
    with pytest.raises(KubeUnavailable):
        fake.get(CONFIGMAPS, "ns", "a")
    assert fake.get(CONFIGMAPS, "ns", "a")["metadata"]["name"] == "a"
    fake.down = True
    with pytest.raises(KubeUnavailable):
        fake.list(CONFIGMAPS)
    fake.down = False
    fake.unserve(CONFIGMAPS)
    with pytest.raises(NotFound):
        fake.list(CONFIGMAPS)
    with pytest.raises(AssertionError, match="read-only component"):
        fake.delete(CONFIGMAPS, "ns", "a")


def test_lost_races_are_won_by_update_with_retry() -> None:
    fake = FakeKube()
    fake.create(CONFIGMAPS, "ns", {"metadata": {"name": "a"}, "data": {"n": "0"}})
    fake.conflicts_to_inject = 2

    def bump(obj: JsonObject) -> JsonObject:
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
        return obj

    update_with_retry(fake, CONFIGMAPS, "ns", "a", bump, deadline_s=5)
    assert fake.get(CONFIGMAPS, "ns", "a")["data"] == {"n": "1"}
    assert [c.verb for c in fake.calls[1:]] == ["get", "replace"] * 3 + ["get"]
