"""Watch streams: order, resume, 410 for compacted versions, bookmarks, selectors."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client, watch

from tests.contract.http import RawClient
from tests.kubeapi.testing import RunningKubeApi, start_in_thread

pytestmark = pytest.mark.e2e

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {}}


def test_events_in_order_and_resume(raw: RawClient) -> None:
    _, start = raw.request("GET", CM)
    rv = start["metadata"]["resourceVersion"]
    raw.request("POST", CM, cm("a"))
    raw.request("PATCH", f"{CM}/a", {"data": {"k": "v"}}, "application/merge-patch+json")
    raw.request("POST", CM, cm("b"))
    raw.request("DELETE", f"{CM}/a")
    events = raw.watch(f"{CM}?watch=true&resourceVersion={rv}&timeoutSeconds=1", max_events=10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == 4
    resumed = raw.watch(
        f"{CM}?watch=true&resourceVersion={versions[1]}&timeoutSeconds=1", max_events=10
    )
    assert [e["type"] for e in resumed] == ["ADDED", "DELETED"]


def test_watch_without_version_starts_with_current_state(raw: RawClient) -> None:
    raw.request("POST", CM, cm("a"))
    events = raw.watch(f"{CM}?watch=1&timeoutSeconds=1", max_events=5)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_compacted_version_is_410_error_event(kubeapi: RunningKubeApi, raw: RawClient) -> None:
    raw.request("POST", CM, cm("a"))
    _, listed = raw.request("GET", CM)
    old = int(listed["metadata"]["resourceVersion"]) - 1
    kubeapi.compact()
    events = raw.watch(f"{CM}?watch=true&resourceVersion={old}", max_events=5)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old} (")


def test_bounded_history_expires(tmp_path: Any) -> None:
    with start_in_thread(tmp_path, event_history=3) as small, RawClient(small) as http:
        _, start = http.request("GET", CM)
        for i in range(5):
            http.request("POST", CM, cm(f"c{i}"))
        events = http.watch(
            f"{CM}?watch=true&resourceVersion={start['metadata']['resourceVersion']}", max_events=1
        )
        assert events[0]["object"]["code"] == 410


def test_bookmarks(tmp_path: Any) -> None:
    with start_in_thread(tmp_path, bookmark_interval=0.2) as fast, RawClient(fast) as http:
        _, listed = http.request("GET", CM)
        rv = listed["metadata"]["resourceVersion"]
        events = http.watch(
            f"{CM}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=2",
            max_events=1,
        )
        assert events[0]["type"] == "BOOKMARK"
        assert events[0]["object"]["kind"] == "ConfigMap"
        assert events[0]["object"]["metadata"] == {"resourceVersion": rv}
        plain = http.watch(f"{CM}?watch=true&resourceVersion={rv}&timeoutSeconds=1", max_events=1)
        assert plain == []


def test_selector_transitions_and_namespaces(raw: RawClient) -> None:
    raw.request("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    _, listed = raw.request("GET", CM)
    rv = listed["metadata"]["resourceVersion"]
    raw.request("POST", CM, cm("a", app="x"))
    raw.request(
        "PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "y"}}}, "application/merge-patch+json"
    )
    raw.request("POST", "/api/v1/namespaces/other/configmaps", cm("b", app="x"))
    selected = raw.watch(
        f"{CM}?watch=true&resourceVersion={rv}&labelSelector=app%3Dx&timeoutSeconds=1",
        max_events=10,
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in selected] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
    ]
    everywhere = raw.watch(
        f"/api/v1/configmaps?watch=true&resourceVersion={rv}"
        "&labelSelector=app%3Dx&timeoutSeconds=1",
        max_events=10,
    )
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in everywhere] == [
        ("ADDED", "default"),
        ("DELETED", "default"),
        ("ADDED", "other"),
    ]
    by_name = raw.watch(
        f"/api/v1/watch/namespaces/other/configmaps/b?resourceVersion={rv}&timeoutSeconds=1",
        max_events=10,
    )
    assert [e["object"]["metadata"]["name"] for e in by_name] == ["b"]


def test_official_client_watch(core: Any) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    for name in ("a", "b"):
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
        )
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    seen = [
        (event["type"], event["object"].metadata.name)
        for event in watcher.stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
