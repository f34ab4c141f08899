"""Both ``KubeApi`` adapters against the API stand-in (``tests/kubeapi``): their contract.

Every verb, the error mapping, pagination, selectors, watches (including 410 after
compaction) and ``update_with_retry`` under real contention, over real HTTPS, run once with
``KubernetesApi`` (the official client underneath) and once with ``LeanKubeApi`` (the standard
library's ``http.client``), so the two cannot drift apart. Uses the function-scoped ``kubeapi``
fixture from ``tests/conftest.py`` (one fresh server per test).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from common.io import kube
from common.io.kube import KubernetesApi
from common.io.kube_lean import KubeConnection, LeanKubeApi
from common.model.resources import (
    CLUSTERNETWORKS,
    CONFIGMAPS,
    CRDS,
    DANMNETS,
    NAMESPACES,
    Resource,
)

pytestmark = pytest.mark.e2e

Adapter = KubernetesApi | LeanKubeApi
ADAPTERS: dict[str, type[KubernetesApi] | type[LeanKubeApi]] = {
    "official": KubernetesApi,
    "lean": LeanKubeApi,
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(kubeapi: Any, adapter: str) -> Iterator[Adapter]:
    with ADAPTERS[adapter].connect(kubeapi.kubeconfig_path, request_timeout_s=10) as connected:
        yield connected


def _create_namespace(api: Adapter, prefix: str = "contract") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    api.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    return name


@pytest.fixture
def namespace(api: Adapter) -> str:
    return _create_namespace(api)


def _configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _crd(resource: Resource) -> dict[str, Any]:
    """The least a CRD needs: names, scope and one served, stored, schemaless version."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name},
        "spec": {
            "group": resource.group,
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "names": {
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
            },
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def _network(resource: Resource, name: str, cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name},
        "spec": {"NetworkID": name, "NetworkType": "ipvlan", "Options": {"cidr": cidr}},
    }


def _names(listing: dict[str, Any]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in listing["items"])


# ------------------------------------------------------------------------------------- CRUD


def test_configmap_crud(api: Adapter, namespace: str) -> None:
    created = api.create(CONFIGMAPS, namespace, _configmap("cm", a="1"))
    assert created["data"] == {"a": "1"}
    assert created["metadata"]["namespace"] == namespace
    rv1 = created["metadata"]["resourceVersion"]

    fetched = api.get(CONFIGMAPS, namespace, "cm")
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]

    fetched["data"]["b"] = "2"
    replaced = api.replace(CONFIGMAPS, namespace, "cm", fetched)
    assert replaced["data"] == {"a": "1", "b": "2"}
    assert replaced["metadata"]["resourceVersion"] != rv1

    merged = api.patch(CONFIGMAPS, namespace, "cm", {"data": {"c": "3", "a": None}})
    assert merged["data"] == {"b": "2", "c": "3"}
    rv = merged["metadata"]["resourceVersion"]
    patched = api.patch(
        CONFIGMAPS,
        namespace,
        "cm",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/data/b", "value": "two"},
        ],
        patch_type="json",
    )
    assert patched["data"] == {"b": "two", "c": "3"}
    strategic = api.patch(
        CONFIGMAPS, namespace, "cm", {"metadata": {"labels": {"x": "y"}}}, patch_type="strategic"
    )
    assert strategic["metadata"]["labels"] == {"x": "y"}

    api.delete(CONFIGMAPS, namespace, "cm")
    with pytest.raises(kube.NotFound):
        api.get(CONFIGMAPS, namespace, "cm")


def test_custom_resources_via_a_crd_created_by_the_adapter(api: Adapter, namespace: str) -> None:
    api.create(CRDS, None, _crd(DANMNETS))
    api.create(CRDS, None, _crd(CLUSTERNETWORKS))
    assert api.get(CRDS, None, DANMNETS.crd_name)["spec"]["names"]["kind"] == "DanmNet"

    net = api.create(DANMNETS, namespace, _network(DANMNETS, "internal", "10.0.0.0/24"))
    assert net["apiVersion"] == "danm.k8s.io/v1"
    assert net["kind"] == "DanmNet"
    cluster_net = api.create(CLUSTERNETWORKS, None, _network(CLUSTERNETWORKS, "ext", "10.1.0.0/24"))
    assert "namespace" not in cluster_net["metadata"]

    net["spec"]["Options"]["alloc"] = "AAAA"
    replaced = api.replace(DANMNETS, namespace, "internal", net)
    assert replaced["spec"]["Options"]["alloc"] == "AAAA"
    patched = api.patch(CLUSTERNETWORKS, None, "ext", {"spec": {"Options": {"vlan": 500}}})
    assert patched["spec"]["Options"] == {"cidr": "10.1.0.0/24", "vlan": 500}

    listing = api.list(DANMNETS, namespace)
    assert _names(listing) == ["internal"]
    assert listing["items"][0]["kind"] == "DanmNet"
    assert listing["items"][0]["apiVersion"] == "danm.k8s.io/v1"
    assert _names(api.list(CLUSTERNETWORKS)) == ["ext"]

    api.delete(DANMNETS, namespace, "internal")
    api.delete(CLUSTERNETWORKS, None, "ext")
    assert api.list(DANMNETS, namespace)["items"] == []
    with pytest.raises(kube.NotFound):
        api.get(CLUSTERNETWORKS, None, "ext")


# ------------------------------------------------------------------------------ error mapping


def test_not_found(api: Adapter, namespace: str) -> None:
    with pytest.raises(kube.NotFound) as caught:
        api.get(CONFIGMAPS, namespace, "nope")
    assert caught.value.status == 404
    assert caught.value.reason == "NotFound"
    assert caught.value.details.get("name") == "nope"
    with pytest.raises(kube.NotFound):
        api.delete(CONFIGMAPS, namespace, "nope")
    with pytest.raises(kube.NotFound):
        api.create(CONFIGMAPS, "no-such-namespace", _configmap("cm"))


def test_already_exists_versus_conflict(api: Adapter, namespace: str) -> None:
    first = api.create(CONFIGMAPS, namespace, _configmap("cm", v="1"))
    with pytest.raises(kube.AlreadyExists) as exists:
        api.create(CONFIGMAPS, namespace, _configmap("cm", v="2"))
    assert (exists.value.status, exists.value.reason) == (409, "AlreadyExists")

    api.patch(CONFIGMAPS, namespace, "cm", {"data": {"v": "moved on"}})
    stale = {**first, "data": {"v": "stale"}}
    with pytest.raises(kube.Conflict) as conflict:
        api.replace(CONFIGMAPS, namespace, "cm", stale)
    assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
    assert not isinstance(conflict.value, kube.AlreadyExists)

    with pytest.raises(kube.Conflict):
        api.delete(
            CONFIGMAPS, namespace, "cm", resource_version=first["metadata"]["resourceVersion"]
        )
    with pytest.raises(kube.Conflict):
        api.delete(CONFIGMAPS, namespace, "cm", uid="00000000-0000-0000-0000-000000000000")
    current = api.get(CONFIGMAPS, namespace, "cm")["metadata"]
    api.delete(
        CONFIGMAPS, namespace, "cm", resource_version=current["resourceVersion"], uid=current["uid"]
    )
    with pytest.raises(kube.NotFound):
        api.get(CONFIGMAPS, namespace, "cm")


def test_invalid(api: Adapter, namespace: str) -> None:
    with pytest.raises(kube.Invalid) as caught:
        api.create(CONFIGMAPS, namespace, _configmap("Not_A_Valid_Name"))
    assert caught.value.status == 422
    assert "Not_A_Valid_Name" in caught.value.message


def test_failed_json_patch_test_op_is_invalid(api: Adapter, namespace: str) -> None:
    api.create(CONFIGMAPS, namespace, _configmap("cm"))
    with pytest.raises(kube.Invalid):
        api.patch(
            CONFIGMAPS,
            namespace,
            "cm",
            [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}],
            patch_type="json",
        )


def test_token_auth_and_unauthorized(kubeapi: Any, adapter: str, namespace: str) -> None:
    from kubernetes import client

    def connect(token: str) -> Adapter:
        if adapter == "lean":
            connection = KubeConnection(
                server=kubeapi.url, ca_pem=kubeapi.ca_path.read_bytes(), token=token
            )
            return LeanKubeApi.from_connection(connection)
        configuration = client.Configuration()
        configuration.host = kubeapi.url
        configuration.ssl_ca_cert = str(kubeapi.ca_path)
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return KubernetesApi.from_api_client(client.ApiClient(configuration))

    with connect(kubeapi.token) as api:
        assert api.list(CONFIGMAPS, namespace)["items"] == []
    with connect("wrong-token") as api, pytest.raises(kube.Unauthorized) as caught:
        api.list(CONFIGMAPS, namespace)
    assert caught.value.status == 401


def test_stopped_server_is_unavailable(kubeapi: Any, api: Adapter) -> None:
    kubeapi.stop()
    with pytest.raises(kube.KubeUnavailable):
        api.get(NAMESPACES, None, "default")


# --------------------------------------------------------------------- pagination, selectors


def test_list_follows_continue_tokens(api: Adapter, namespace: str) -> None:
    expected = [f"cm-{i}" for i in range(7)]
    for name in expected:
        api.create(CONFIGMAPS, namespace, _configmap(name))
    listing = api.list(CONFIGMAPS, namespace, page_size=2)
    assert _names(listing) == expected
    assert listing["kind"] == "ConfigMapList"
    assert "continue" not in listing["metadata"]
    assert listing["metadata"]["resourceVersion"]
    assert {item["kind"] for item in listing["items"]} == {"ConfigMap"}


def test_selectors_and_all_namespaces(api: Adapter, namespace: str) -> None:
    other = _create_namespace(api)
    api.create(CONFIGMAPS, namespace, _configmap("a1", {"app": "a", "tier": "db"}))
    api.create(CONFIGMAPS, namespace, _configmap("a2", {"app": "a"}))
    api.create(CONFIGMAPS, namespace, _configmap("b1", {"app": "b"}))
    api.create(CONFIGMAPS, other, _configmap("a3", {"app": "a"}))

    assert _names(api.list(CONFIGMAPS, namespace, label_selector="app=a")) == ["a1", "a2"]
    assert _names(api.list(CONFIGMAPS, namespace, label_selector="app=a,tier=db")) == ["a1"]
    assert _names(api.list(CONFIGMAPS, namespace, label_selector="app!=a")) == ["b1"]
    assert _names(api.list(CONFIGMAPS, namespace, field_selector="metadata.name=b1")) == ["b1"]
    everywhere = api.list(CONFIGMAPS, None, label_selector="app=a", page_size=1)
    assert _names(everywhere) == ["a1", "a2", "a3"]
    assert {i["metadata"]["namespace"] for i in everywhere["items"]} == {namespace, other}


# ------------------------------------------------------------------------------------ watch


def test_watch_replays_changes_since_a_resource_version(api: Adapter, namespace: str) -> None:
    start = api.list(CONFIGMAPS, namespace)["metadata"]["resourceVersion"]
    api.create(CONFIGMAPS, namespace, _configmap("w", v="1"))
    api.patch(CONFIGMAPS, namespace, "w", {"data": {"v": "2"}})
    api.create(CONFIGMAPS, namespace, _configmap("ignored-by-selector"))
    api.delete(CONFIGMAPS, namespace, "w")

    events = list(
        api.watch(
            CONFIGMAPS,
            namespace,
            resource_version=start,
            field_selector="metadata.name=w",
            timeout_s=1,
        )
    )
    assert [(kind, obj["metadata"]["name"]) for kind, obj in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    assert events[1][1]["data"] == {"v": "2"}


def test_watch_sees_live_changes_and_can_be_abandoned(api: Adapter, namespace: str) -> None:
    start = api.list(CONFIGMAPS, namespace)["metadata"]["resourceVersion"]
    stream = api.watch(CONFIGMAPS, namespace, resource_version=start, timeout_s=30)

    def write_later() -> None:
        api.create(CONFIGMAPS, namespace, _configmap("live", v="1"))

    writer = threading.Timer(0.2, write_later)
    writer.start()
    try:
        kind, obj = next(stream)
    finally:
        writer.join()
        stream.close()  # NB: must not wait for the 30 s server timeout
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "live")
    # the connection pool still works after abandoning a stream mid-way
    assert api.get(CONFIGMAPS, namespace, "live")["data"] == {"v": "1"}


def test_watch_bookmarks(api: Adapter, namespace: str) -> None:
    start = api.list(CONFIGMAPS, namespace)["metadata"]["resourceVersion"]
    stream = api.watch(
        CONFIGMAPS, namespace, resource_version=start, allow_bookmarks=True, timeout_s=10
    )
    try:
        kind, obj = next(stream)
    finally:
        stream.close()
    assert kind == "BOOKMARK"
    assert obj["metadata"]["resourceVersion"]


def test_watch_from_a_compacted_version_raises_gone(
    kubeapi: Any, api: Adapter, namespace: str
) -> None:
    old = api.create(CONFIGMAPS, namespace, _configmap("c0"))["metadata"]["resourceVersion"]
    api.create(CONFIGMAPS, namespace, _configmap("c1"))
    kubeapi.compact()
    with pytest.raises(kube.Gone) as caught:
        list(api.watch(CONFIGMAPS, namespace, resource_version=old, timeout_s=5))
    assert caught.value.status == 410
    assert caught.value.reason == "Expired"


# ------------------------------------------------------------------------ update_with_retry


def test_update_with_retry_under_contention_loses_no_increment(
    api: Adapter, namespace: str
) -> None:
    threads, increments = 8, 25
    api.create(CONFIGMAPS, namespace, _configmap("counter", count="0"))
    failures: list[BaseException] = []
    start = threading.Barrier(threads)
    mutate_calls: list[int] = []

    def increment(obj: dict[str, Any]) -> dict[str, Any]:
        mutate_calls.append(1)  # NB: list.append is atomic under the GIL
        obj["data"]["count"] = str(int(obj["data"]["count"]) + 1)
        return obj

    def worker() -> None:
        try:
            start.wait()
            for _ in range(increments):
                kube.update_with_retry(
                    api, CONFIGMAPS, namespace, "counter", increment, deadline_s=120
                )
        except BaseException as error:  # NB: surfaced below; a thread cannot fail the test
            failures.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=180)
    assert failures == []
    assert not any(thread.is_alive() for thread in pool)
    final = api.get(CONFIGMAPS, namespace, "counter")
    assert final["data"]["count"] == str(threads * increments)
    # NB: proves the writers really raced (typically 100+ conflicts were retried here).
    assert len(mutate_calls) > threads * increments


def test_update_with_retry_no_change_writes_nothing(api: Adapter, namespace: str) -> None:
    created = api.create(CONFIGMAPS, namespace, _configmap("same", v="1"))
    result = kube.update_with_retry(api, CONFIGMAPS, namespace, "same", lambda obj: obj)
    assert result["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_update_with_retry_gives_up_at_the_deadline(api: Adapter, namespace: str) -> None:
    api.create(CONFIGMAPS, namespace, _configmap("hot", n="0"))
    attempts = 0

    def always_overtaken(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        # NB: a competing writer lands between our read and our write, every single time.
        api.patch(CONFIGMAPS, namespace, "hot", {"data": {"n": str(attempts)}})
        obj["data"]["mine"] = "x"
        return obj

    with pytest.raises(kube.RetryDeadlineExceeded) as caught:
        kube.update_with_retry(api, CONFIGMAPS, namespace, "hot", always_overtaken, deadline_s=0.3)
    assert caught.value.attempts == attempts >= 2
    assert f"ConfigMap {namespace}/hot" in str(caught.value)
    assert isinstance(caught.value.__cause__, kube.Conflict)
    assert "mine" not in api.get(CONFIGMAPS, namespace, "hot")["data"]
