"""CRUD semantics and Status bodies, checked on the wire and through the official client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.contract.http import RawClient
from tests.kubeapi.testing import RunningKubeApi

pytestmark = pytest.mark.e2e

CM = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_get_and_resource_versions(raw: RawClient) -> None:
    code, created = raw.request("POST", CM, configmap("a", x="1"))
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert "generation" not in meta  # NB: ConfigMaps have no generation.
    code, listed = raw.request("GET", CM)
    assert code == 200
    assert listed["kind"] == "ConfigMapList"
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert "kind" not in listed["items"][0]
    code, fetched = raw.request("GET", f"{CM}/a")
    assert (code, fetched["kind"], fetched["data"]) == (200, "ConfigMap", {"x": "1"})


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param(
            "GET",
            f"{CM}/nope",
            None,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": 'configmaps "nope" not found',
                "reason": "NotFound",
                "details": {"name": "nope", "kind": "configmaps"},
                "code": 404,
            },
            id="404",
        ),
        pytest.param(
            "POST",
            "/api/v1/namespaces/missing/configmaps",
            configmap("x"),
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": 'namespaces "missing" not found',
                "reason": "NotFound",
                "details": {"name": "missing", "kind": "namespaces"},
                "code": 404,
            },
            id="namespace-missing",
        ),
        pytest.param(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
            None,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": 'leases.coordination.k8s.io "l" not found',
                "reason": "NotFound",
                "details": {"name": "l", "group": "coordination.k8s.io", "kind": "leases"},
                "code": 404,
            },
            id="404-group",
        ),
        pytest.param(
            "GET",
            f"{CM}?fieldSelector=spec.foo%3Dx",
            None,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "field label not supported: spec.foo",
                "reason": "BadRequest",
                "code": 400,
            },
            id="field-selector",
        ),
        pytest.param("POST", CM, configmap("Bad_Name"), None, id="invalid-name"),
    ],
)
def test_error_status_bodies(
    raw: RawClient, method: str, path: str, body: Any, expected: dict[str, Any] | None
) -> None:
    code, status = raw.request(method, path, body)
    if expected is None:
        assert code == 422
        assert status["reason"] == "Invalid"
        assert status["message"].startswith(
            'ConfigMap "Bad_Name" is invalid: metadata.name: '
            'Invalid value: "Bad_Name": a lowercase RFC 1123'
        )
        assert status["details"]["causes"][0]["field"] == "metadata.name"
        assert status["details"]["causes"][0]["reason"] == "FieldValueInvalid"
        return
    assert (code, status) == (expected["code"], expected)


def test_already_exists_and_conflict(raw: RawClient) -> None:
    _, created = raw.request("POST", CM, configmap("a"))
    code, status = raw.request("POST", CM, configmap("a"))
    assert (code, status["reason"], status["message"]) == (
        409,
        "AlreadyExists",
        'configmaps "a" already exists',
    )
    assert status["details"] == {"name": "a", "kind": "configmaps"}
    stale = dict(created, data={"v": "1"})
    assert raw.request("PUT", f"{CM}/a", stale)[0] == 200
    code, status = raw.request("PUT", f"{CM}/a", dict(stale, data={"v": "2"}))
    assert code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


def test_conflict_message_names_group(raw: RawClient) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}
    _, created = raw.request("POST", path, lease)
    raw.request("PUT", f"{path}/l", created)
    created["spec"]["holderIdentity"] = "b"
    raw.request("PUT", f"{path}/l", created)
    code, status = raw.request("PUT", f"{path}/l", created)
    assert code == 409
    assert status["message"].startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object has been'
    )


def test_update_without_resource_version_is_unconditional(raw: RawClient) -> None:
    raw.request("POST", CM, configmap("a", v="1"))
    code, updated = raw.request("PUT", f"{CM}/a", configmap("a", v="2"))
    assert (code, updated["data"]) == (200, {"v": "2"})


def test_noop_update_keeps_resource_version(raw: RawClient) -> None:
    _, created = raw.request("POST", CM, configmap("a", v="1"))
    _, same = raw.request("PUT", f"{CM}/a", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generate_name(core: Any) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    names = {core.create_namespaced_config_map("default", body).metadata.name for _ in range(3)}
    assert len(names) == 3
    assert all(n.startswith("gen-") and len(n) == len("gen-") + 5 for n in names)


def test_generation_tracks_spec_only(raw: RawClient) -> None:
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    body = {"metadata": {"name": "w"}, "webhooks": []}
    _, created = raw.request("POST", path, body)
    assert created["metadata"]["generation"] == 1
    _, labelled = raw.request(
        "PATCH", f"{path}/w", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"
    )
    assert labelled["metadata"]["generation"] == 1
    hook = {
        "name": "h.example.com",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:1/"},
        "failurePolicy": "Ignore",
        "rules": [],
    }
    _, changed = raw.request(
        "PATCH", f"{path}/w", {"webhooks": [hook]}, "application/merge-patch+json"
    )
    assert changed["metadata"]["generation"] == 2


def test_dry_run_persists_nothing(raw: RawClient) -> None:
    code, created = raw.request("POST", f"{CM}?dryRun=All", configmap("dry"))
    assert code == 201
    assert created["metadata"]["name"] == "dry"
    assert raw.request("GET", f"{CM}/dry")[0] == 404
    raw.request("POST", CM, configmap("dry"))
    code, _ = raw.request("DELETE", f"{CM}/dry?dryRun=All")
    assert code == 200
    assert raw.request("GET", f"{CM}/dry")[0] == 200


def test_delete_returns_status_or_object(raw: RawClient) -> None:
    _, created = raw.request("POST", CM, configmap("a"))
    code, status = raw.request("DELETE", f"{CM}/a")
    assert (code, status["status"], status["details"]) == (
        200,
        "Success",
        {"name": "a", "kind": "configmaps", "uid": created["metadata"]["uid"]},
    )
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    raw.request("POST", "/api/v1/namespaces/default/pods", pod)
    code, deleted = raw.request("DELETE", "/api/v1/namespaces/default/pods/p")
    assert (code, deleted["kind"], deleted["metadata"]["name"]) == (200, "Pod", "p")


def test_delete_preconditions(raw: RawClient) -> None:
    _, created = raw.request("POST", CM, configmap("a"))
    code, status = raw.request("DELETE", f"{CM}/a", {"preconditions": {"uid": "other"}})
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in '
        f"precondition: other, UID in object meta: {created['metadata']['uid']}"
    )
    code, _ = raw.request(
        "DELETE",
        f"{CM}/a",
        {
            "preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]},
            "propagationPolicy": "Foreground",
        },
    )
    assert code == 200


def test_finalizers_delay_deletion(raw: RawClient) -> None:
    body = configmap("f")
    body["metadata"]["finalizers"] = ["example.com/keep"]
    raw.request("POST", CM, body)
    code, pending = raw.request("DELETE", f"{CM}/f")
    assert code == 200
    assert pending["metadata"]["deletionTimestamp"]
    assert pending["metadata"]["finalizers"] == ["example.com/keep"]
    code, still = raw.request("GET", f"{CM}/f")
    assert code == 200
    assert still["metadata"]["deletionTimestamp"]
    code, _ = raw.request(
        "PATCH", f"{CM}/f", {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )
    assert code == 200
    assert raw.request("GET", f"{CM}/f")[0] == 404


def test_namespace_deletion_cascades(raw: RawClient) -> None:
    raw.request("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    path = "/api/v1/namespaces/team/configmaps"
    raw.request("POST", path, configmap("plain"))
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/keep"]
    raw.request("POST", path, held)
    code, namespace = raw.request("DELETE", "/api/v1/namespaces/team")
    assert code == 200
    assert namespace["status"]["phase"] == "Terminating"
    assert raw.request("GET", f"{path}/plain")[0] == 404
    code, status = raw.request("POST", path, configmap("new"))
    assert (code, status["reason"]) == (403, "Forbidden")
    raw.request(
        "PATCH", f"{path}/held", {"metadata": {"finalizers": []}}, "application/merge-patch+json"
    )
    assert raw.request("GET", "/api/v1/namespaces/team")[0] == 404


def test_pod_status_subresource(core: Any) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i")]),
    )
    created = core.create_namespaced_pod("default", pod)
    assert created.status.phase == "Pending"
    created.status.phase = "Running"
    created.spec.node_name = "ignored-by-status"
    updated = core.replace_namespaced_pod_status("p", "default", created)
    assert updated.status.phase == "Running"
    assert updated.spec.node_name is None
    updated.status.phase = "Failed"
    updated.spec.node_name = "node-1"
    main = core.replace_namespaced_pod("p", "default", updated)
    assert (main.status.phase, main.spec.node_name) == ("Running", "node-1")


def test_label_and_field_selectors(core: Any) -> None:
    for name, labels in [("a", {"app": "x", "tier": "1"}), ("b", {"app": "y"}), ("c", {})]:
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )

    def names(**kwargs: Any) -> list[str]:
        return [c.metadata.name for c in core.list_namespaced_config_map("default", **kwargs).items]

    cases = {
        "app=x": ["a"],
        "app==x": ["a"],
        "app!=x": ["b", "c"],
        "app in (x,y)": ["a", "b"],
        "app notin (x)": ["b", "c"],
        "tier": ["a"],
        "!tier": ["b", "c"],
        "app,app!=y": ["a"],
    }
    for selector, expected in cases.items():
        assert names(label_selector=selector) == expected, selector
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    assert names(field_selector="metadata.namespace=default", label_selector="app") == ["a", "b"]


def test_pod_node_name_field_selector(core: Any) -> None:
    for name, node in [("p1", "n1"), ("p2", "n2")]:
        core.create_namespaced_pod(
            "default",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1PodSpec(
                    node_name=node, containers=[client.V1Container(name="c", image="i")]
                ),
            ),
        )
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n2").items
    assert [p.metadata.name for p in pods] == ["p2"]


def test_pagination(core: Any) -> None:
    for i in range(7):
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{i}"))
        )
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        pages += 1
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert (pages, seen) == (3, [f"cm-{i}" for i in range(7)])


def test_authentication(kubeapi: RunningKubeApi) -> None:
    with RawClient(kubeapi, with_cert=False) as anonymous:
        code, status = anonymous.request("GET", "/api/v1/namespaces")
        assert (code, status) == (
            401,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            },
        )
    with RawClient(kubeapi, with_cert=False, token=kubeapi.token) as bearer:
        assert bearer.request("GET", "/api/v1/namespaces")[0] == 200
    with RawClient(kubeapi, with_cert=False, token="wrong") as bearer:
        assert bearer.request("GET", "/api/v1/namespaces")[0] == 401
    # NB: the scheme is case-insensitive, as in kube-apiserver; the official Python client's
    # in-cluster configuration sends "bearer <token>".
    with RawClient(kubeapi, with_cert=False) as raw_client:
        for header, expected in (
            (f"bearer {kubeapi.token}", 200),
            (f"BEARER {kubeapi.token}", 200),
            (f"Basic {kubeapi.token}", 401),
            (f"Bearer{kubeapi.token}", 401),
        ):
            answer = raw_client.request(
                "GET", "/api/v1/namespaces", headers={"Authorization": header}
            )
            assert answer[0] == expected, header


def test_method_not_allowed_and_unsupported_media_type(raw: RawClient) -> None:
    code, status = raw.request("POST", f"{CM}/a", configmap("a"))
    assert (code, status["reason"]) == (405, "MethodNotAllowed")
    raw.request("POST", CM, configmap("a"))
    code, status = raw.request("PATCH", f"{CM}/a", b"data: {}", "application/apply-patch+yaml")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert status["message"].startswith("the body of the request was in an unknown format")


def test_json_patch_test_failure_is_422(raw: RawClient) -> None:
    raw.request("POST", CM, configmap("a", v="1"))
    code, status = raw.request(
        "PATCH",
        f"{CM}/a",
        [
            {"op": "test", "path": "/data/v", "value": "2"},
            {"op": "replace", "path": "/data/v", "value": "3"},
        ],
        "application/json-patch+json",
    )
    assert (code, status) == (
        422,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server rejected our request due to an error in our request",
            "reason": "Invalid",
            "details": {},
            "code": 422,
        },
    )
    code, patched = raw.request(
        "PATCH",
        f"{CM}/a",
        [
            {"op": "test", "path": "/data/v", "value": "1"},
            {"op": "replace", "path": "/data/v", "value": "3"},
        ],
        "application/json-patch+json",
    )
    assert (code, patched["data"]) == (200, {"v": "3"})


def test_strategic_merge_patch_merges_containers(raw: RawClient) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "a", "image": "1", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "1"},
            ]
        },
    }
    raw.request("POST", "/api/v1/namespaces/default/pods", pod)
    code, patched = raw.request(
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        {"spec": {"containers": [{"name": "b", "image": "2"}]}},
        "application/strategic-merge-patch+json",
    )
    assert code == 200
    assert patched["spec"]["containers"] == [
        {"name": "a", "image": "1", "ports": [{"containerPort": 80}]},
        {"name": "b", "image": "2"},
    ]


def test_discovery(raw: RawClient) -> None:
    _, version = raw.request("GET", "/version")
    assert (version["major"], version["minor"]) == ("1", "32")
    _, core_list = raw.request("GET", "/api/v1")
    pods = next(r for r in core_list["resources"] if r["name"] == "pods")
    assert pods["shortNames"] == ["po"]
    assert pods["namespaced"]
    assert "watch" in pods["verbs"]
    assert any(r["name"] == "pods/status" for r in core_list["resources"])
    _, groups = raw.request("GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
    } <= names
    code, status = raw.request("GET", "/openapi/v2")
    assert (code, status["reason"]) == (404, "NotFound")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/nodes", {"metadata": {"name": "n1"}, "status": {"addresses": []}}),
        ("/api/v1/namespaces/default/services", {"metadata": {"name": "s"}, "spec": {}}),
        ("/api/v1/namespaces/default/endpoints", {"metadata": {"name": "s"}, "subsets": []}),
        ("/api/v1/namespaces/default/events", {"metadata": {"name": "e"}, "reason": "R"}),
        ("/apis/events.k8s.io/v1/namespaces/default/events", {"metadata": {"name": "e"}}),
        (
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            {"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": []},
        ),
        ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {"metadata": {"name": "l"}}),
        (
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            {"metadata": {"name": "m"}, "webhooks": []},
        ),
    ],
)
def test_builtin_resources_round_trip(raw: RawClient, path: str, body: dict[str, Any]) -> None:
    code, created = raw.request("POST", path, body)
    assert code == 201, created
    name = body["metadata"]["name"]
    code, fetched = raw.request("GET", f"{path}/{name}")
    assert code == 200
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    code, listed = raw.request("GET", path)
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    assert raw.request("DELETE", f"{path}/{name}")[0] == 200
    assert raw.request("GET", f"{path}/{name}")[0] == 404


def test_strict_field_validation_value_is_checked(raw: RawClient) -> None:
    code, status = raw.request("POST", f"{CM}?fieldValidation=Loud", configmap("a"))
    assert (code, status["reason"]) == (400, "BadRequest")
