"""What both API adapters send and how they read the answer: the pure request/answer helpers of
``common.io.kube`` and the verbs ``RestVerbs`` builds on them, driven through a recording
``_request`` in place of a transport."""

from __future__ import annotations

from typing import Any

import pytest

from common.io import kube
from common.model.resources import CONFIGMAPS, NODES


class RecordingVerbs(kube.RestVerbs):
    """Records every request; answers each with the next queued object (``{}`` when none)."""

    def __init__(self, *answers: kube.JsonObject) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, Any, str]] = []
        self.closed = False

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = "application/json"
    ) -> kube.JsonObject:
        self.requests.append((method, path, body, content_type))
        return self.answers.pop(0) if self.answers else {}

    def close(self) -> None:
        self.closed = True


# ---- parse_object


def test_parse_object_reads_a_json_object_and_an_empty_body() -> None:
    assert kube.parse_object(b'{"kind": "Pod", "x": [1]}') == {"kind": "Pod", "x": [1]}
    assert kube.parse_object(b"") == {}


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"<html>proxy error</html>", "<html>proxy error</html>"),
        (b"[1, 2]", "[1, 2]"),
        (b'"text"', '"text"'),
    ],
)
def test_parse_object_calls_anything_else_a_bad_response(data: bytes, shown: str) -> None:
    with pytest.raises(kube.KubeApiError) as caught:
        kube.parse_object(data)
    assert (caught.value.status, caught.value.reason, caught.value.message) == (
        200,
        "BadResponse",
        shown,
    )


def test_parse_object_truncates_a_long_bad_body() -> None:
    with pytest.raises(kube.KubeApiError) as caught:
        kube.parse_object(b"x" * 10_000)
    message = caught.value.message
    assert message.startswith("x" * kube.TEXT_ERROR_MAX_SIZE)
    assert message.endswith("... (10000 chars)")


# ---- list paging


def test_list_page_path_asks_for_a_limit_then_continues_from_the_token() -> None:
    query = [("labelSelector", "app=a,tier in (x)")]
    first = kube.list_page_path("/api/v1/pods", query, 50, "")
    assert first == "/api/v1/pods?labelSelector=app%3Da%2Ctier+in+%28x%29&limit=50"
    assert kube.list_page_path("/api/v1/pods", [], 50, "t/1") == (
        "/api/v1/pods?limit=50&continue=t%2F1"
    )


@pytest.mark.parametrize(
    ("page", "token"),
    [
        ({}, ""),
        ({"metadata": None}, ""),
        ({"metadata": {"continue": ""}}, ""),
        ({"metadata": {"continue": "abc"}}, "abc"),
    ],
)
def test_continue_token(page: kube.JsonObject, token: str) -> None:
    assert kube.continue_token(page) == token


def test_merge_list_pages_joins_items_and_keeps_the_first_pages_snapshot() -> None:
    pages: list[kube.JsonObject] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "7", "continue": "t", "remainingItemCount": 1},
            "items": [{"metadata": {"name": "a"}}],
        },
        {
            "metadata": {"resourceVersion": "9"},
            "items": [{"apiVersion": "v1", "kind": "Odd", "metadata": {"name": "b"}}],
        },
    ]
    assert kube.merge_list_pages(CONFIGMAPS, pages) == {
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "7"},
        "items": [
            {"metadata": {"name": "a"}, "apiVersion": "v1", "kind": "ConfigMap"},
            {"apiVersion": "v1", "kind": "Odd", "metadata": {"name": "b"}},
        ],
    }


def test_merge_list_pages_of_a_bare_answer_names_the_list_kind() -> None:
    merged = kube.merge_list_pages(NODES, [{"items": None}])
    assert merged == {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": []}


# ---- request bodies


@pytest.mark.parametrize(
    ("patch", "patch_type", "body"),
    [
        ({"data": {"k": "v"}}, "merge", {"data": {"k": "v"}}),
        ({"data": None}, "strategic", {"data": None}),
        (({"op": "remove", "path": "/data/k"},), "json", [{"op": "remove", "path": "/data/k"}]),
    ],
)
def test_patch_body_is_a_plain_list_or_dict(
    patch: Any, patch_type: kube.PatchType, body: Any
) -> None:
    sent = kube.patch_body(patch, patch_type)
    assert sent == body
    assert type(sent) is type(body)  # NB: the official client needs a real list for json


@pytest.mark.parametrize(
    ("patch", "patch_type", "needs"),
    [
        ({"op": "remove", "path": "/x"}, "json", "list of operations"),
        ([{"data": {}}], "merge", "JSON object"),
        ([], "strategic", "JSON object"),
    ],
)
def test_patch_body_refuses_the_wrong_shape(
    patch: Any, patch_type: kube.PatchType, needs: str
) -> None:
    with pytest.raises(TypeError, match=needs):
        kube.patch_body(patch, patch_type)


@pytest.mark.parametrize(
    ("arguments", "extra"),
    [
        ({}, {}),
        ({"resource_version": "5"}, {"preconditions": {"resourceVersion": "5"}}),
        (
            {"uid": "u", "resource_version": ""},
            {"preconditions": {"resourceVersion": "", "uid": "u"}},
        ),
        ({"propagation_policy": "Foreground"}, {"propagationPolicy": "Foreground"}),
        ({"propagation_policy": ""}, {}),
    ],
)
def test_delete_options(arguments: dict[str, str], extra: kube.JsonObject) -> None:
    assert kube.delete_options(**arguments) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        **extra,
    }


@pytest.mark.parametrize(
    ("kubeconfig", "source"),
    [(None, "in-cluster service account"), ("/etc/kubeconfig", "/etc/kubeconfig")],
)
def test_config_load_error_names_where_the_config_came_from(
    kubeconfig: str | None, source: str
) -> None:
    error = kube.config_load_error(kubeconfig, ValueError("no server"))
    assert type(error) is kube.KubeError
    assert str(error) == f"cannot load Kubernetes client config from {source}: no server"


# ---- the verbs over one request hook


def test_list_fetches_every_page_and_merges_them() -> None:
    verbs = RecordingVerbs(
        {"metadata": {"resourceVersion": "3", "continue": "p2"}, "items": [{"n": 1}]},
        {"metadata": {"continue": "p3"}, "items": [{"n": 2}]},
        {"metadata": {}, "items": [{"n": 3}]},
    )
    listed = verbs.list(CONFIGMAPS, "ns", field_selector="metadata.name=a", page_size=1)
    base = "/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Da&limit=1"
    assert [(method, path) for method, path, _, _ in verbs.requests] == [
        ("GET", base),
        ("GET", base + "&continue=p2"),
        ("GET", base + "&continue=p3"),
    ]
    assert [item["n"] for item in listed["items"]] == [1, 2, 3]
    assert listed["metadata"] == {"resourceVersion": "3"}


def test_a_cluster_scoped_kind_ignores_the_namespace() -> None:
    verbs = RecordingVerbs()
    verbs.get(NODES, "ignored", "n1", subresource="status")
    verbs.list(NODES, "ignored")
    verbs.create(NODES, "ignored", {"metadata": {"name": "n1"}})
    assert [path for _, path, _, _ in verbs.requests] == [
        "/api/v1/nodes/n1/status",
        "/api/v1/nodes?limit=500",
        "/api/v1/nodes",
    ]


def test_writes_send_their_body_and_content_type() -> None:
    verbs = RecordingVerbs()
    cm = {"metadata": {"name": "a", "resourceVersion": "4"}}
    verbs.replace(CONFIGMAPS, "ns", "a", cm)
    verbs.patch(
        CONFIGMAPS, "ns", "a", [{"op": "add", "path": "/data", "value": {}}], patch_type="json"
    )
    verbs.delete(CONFIGMAPS, "ns", "a", uid="u")
    path = "/api/v1/namespaces/ns/configmaps/a"
    assert verbs.requests == [
        ("PUT", path, cm, "application/json"),
        (
            "PATCH",
            path,
            [{"op": "add", "path": "/data", "value": {}}],
            "application/json-patch+json",
        ),
        ("DELETE", path, kube.delete_options(uid="u"), "application/json"),
    ]


def test_a_refused_patch_sends_nothing() -> None:
    verbs = RecordingVerbs()
    with pytest.raises(TypeError):
        verbs.patch(CONFIGMAPS, "ns", "a", {"op": "add"}, patch_type="json")
    assert verbs.requests == []


def test_leaving_the_with_block_closes_the_adapter() -> None:
    with RecordingVerbs() as verbs:
        assert not verbs.closed
    assert verbs.closed


def test_both_adapters_share_the_verbs() -> None:
    from common.io.kube_lean import LeanKubeApi

    for adapter in (kube.KubernetesApi, LeanKubeApi):
        assert issubclass(adapter, kube.RestVerbs)
        for verb in ("get", "list", "create", "replace", "patch", "delete"):
            assert getattr(adapter, verb) is getattr(kube.RestVerbs, verb), (adapter, verb)


def test_watch_path_carries_every_watch_argument() -> None:
    path = kube.watch_path(
        CONFIGMAPS,
        "ns",
        resource_version="42",
        label_selector="app=x",
        field_selector="metadata.name=a",
        timeout_s=30,
        allow_bookmarks=True,
    )
    assert path == (
        "/api/v1/namespaces/ns/configmaps?watch=true&labelSelector=app%3Dx"
        "&fieldSelector=metadata.name%3Da&resourceVersion=42&timeoutSeconds=30"
        "&allowWatchBookmarks=true"
    )
    bare = kube.watch_path(
        NODES,
        "ignored",
        resource_version=None,
        label_selector=None,
        field_selector=None,
        timeout_s=None,
        allow_bookmarks=False,
    )
    assert bare == "/api/v1/nodes?watch=true"


def test_parse_watch_line() -> None:
    assert kube.parse_watch_line(b"\n") is None
    assert kube.parse_watch_line(b'{"type":"ADDED","object":{"a":1}}\n') == ("ADDED", {"a": 1})
    with pytest.raises(kube.Gone):
        kube.parse_watch_line(
            b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}'
        )
    with pytest.raises(kube.KubeApiError) as error:
        kube.parse_watch_line(b"{not json")
    assert error.value.reason == "BadResponse"
