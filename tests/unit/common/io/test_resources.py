"""REST paths and lookups of ``common.model.resources`` (the table the kube adapter walks)."""

from __future__ import annotations

import dataclasses

import pytest

from common.model import resources as r


@pytest.mark.parametrize(
    ("resource", "namespace", "expected"),
    [
        (r.DANMNETS, "ns1", "/apis/danm.k8s.io/v1/namespaces/ns1/danmnets"),
        (r.DANMNETS, None, "/apis/danm.k8s.io/v1/danmnets"),
        (r.TENANTNETWORKS, "t", "/apis/danm.k8s.io/v1/namespaces/t/tenantnetworks"),
        (r.CLUSTERNETWORKS, None, "/apis/danm.k8s.io/v1/clusternetworks"),
        (r.TENANTCONFIGS, None, "/apis/danm.k8s.io/v1/tenantconfigs"),
        (r.DANMEPS, "kube-system", "/apis/danm.k8s.io/v1/namespaces/kube-system/danmeps"),
        (r.PODS, "default", "/api/v1/namespaces/default/pods"),
        (r.NODES, None, "/api/v1/nodes"),
        (r.ENDPOINTSLICES, "a", "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices"),
        (r.LEASES, "a", "/apis/coordination.k8s.io/v1/namespaces/a/leases"),
        (r.EVENTS_V1, "a", "/apis/events.k8s.io/v1/namespaces/a/events"),
        (r.CRDS, None, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
    ],
)
def test_collection_path(resource: r.Resource, namespace: str | None, expected: str) -> None:
    assert resource.collection_path(namespace) == expected


def test_object_and_subresource_paths() -> None:
    assert r.PODS.object_path("ns", "p1") == "/api/v1/namespaces/ns/pods/p1"
    assert r.PODS.object_path("ns", "p1", "status") == "/api/v1/namespaces/ns/pods/p1/status"
    assert r.CLUSTERNETWORKS.object_path(None, "cn") == "/apis/danm.k8s.io/v1/clusternetworks/cn"


def test_names_cannot_inject_path_segments() -> None:
    assert r.CONFIGMAPS.object_path("ns", "a/b") == "/api/v1/namespaces/ns/configmaps/a%2Fb"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: r.NODES.collection_path("ns"), "cluster-scoped"),
        (lambda: r.PODS.object_path(None, "p"), "namespace is required"),
        (lambda: r.PODS.object_path("ns", ""), "name must not be empty"),
        (lambda: r.PODS.collection_path(""), "namespace must not be empty"),
    ],
)
def test_scope_mistakes_are_reported(call: object, message: str) -> None:
    with pytest.raises(r.ResourceError, match=message):
        call()  # type: ignore[operator]


def test_api_version_and_crd_name() -> None:
    assert r.DANMNETS.api_version == "danm.k8s.io/v1"
    assert r.PODS.api_version == "v1"
    assert r.DANMEPS.crd_name == "danmeps.danm.k8s.io"


def test_scopes_follow_the_behaviour_file() -> None:
    namespaced = {res.kind: res.namespaced for res in r.DANM_RESOURCES}
    assert namespaced == {
        "DanmNet": True,
        "TenantNetwork": True,
        "ClusterNetwork": False,
        "TenantConfig": False,
        "DanmEp": True,
    }


def test_lookup_by_kind() -> None:
    assert r.resource_for_kind("DanmEp") is r.DANMEPS
    assert r.resource_for_kind("Event") is r.EVENTS
    assert r.resource_for_kind("Event", "events.k8s.io/v1") is r.EVENTS_V1
    with pytest.raises(KeyError, match="Gadget"):
        r.resource_for_kind("Gadget")
    with pytest.raises(KeyError, match="in v9"):
        r.resource_for_kind("Pod", "v9")


def test_resources_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.PODS.plural = "x"  # type: ignore[misc]


def test_agrees_with_the_model_constants() -> None:
    constants = pytest.importorskip("common.model.constants")
    assert r.DANM_GROUP == constants.API_GROUP
    assert r.DANM_VERSION == constants.API_VERSION
    assert {res.kind for res in r.DANM_RESOURCES} == set(constants.ALL_KINDS)
