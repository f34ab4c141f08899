"""Whole decisions through ``Reviewer`` with a recording store: order, writes, patches."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from common.io.kube import KubeUnavailable
from webhook.admission import Reviewer, may_call_api
from webhook.review import parse_review
from webhook.rules import ConnectedPod

from .builders import network, review, tenant_config
from .fakes import FakeStore

TCONF = tenant_config(
    [{"name": "ens4", "vniType": "vlan", "vniRange": "200-299"}, {"name": "ens6"}],
    {"flannel": "flannel"},
)


def decide(store: Any, obj: Any, **kwargs: Any) -> Any:
    request = parse_review(json.dumps(review(obj, **kwargs)))
    reviewer = Reviewer(store, pick=lambda c: c[0])
    kind = kwargs.get("kind") or (obj or kwargs["old"])["kind"]
    if kind == "TenantConfig":
        return reviewer.review_tenant_config(request)["response"]
    return reviewer.review_network(request)["response"]


def patch_of(response: Any) -> Any:
    return json.loads(base64.b64decode(response["patch"])) if "patch" in response else []


def test_danmnet_create_needs_no_api_and_gets_defaults():
    store = FakeStore()
    response = decide(store, network(cidr="10.0.0.0/30"))
    assert response["allowed"] is True
    assert {op["path"] for op in patch_of(response)} == {
        "/spec/Options/alloc",
        "/spec/Options/allocation_pool",
        "/spec/NetworkType",
    }
    assert store.calls == []


def test_tenant_network_create_reserves_last_and_patches_vlan():
    store = FakeStore(config=TCONF)
    obj = network("TenantNetwork", host_device="ens4", name="t1")
    response = decide(store, obj)
    assert response["allowed"] is True
    assert {"op": "add", "path": "/spec/Options/vlan", "value": 200} in patch_of(response)
    assert store.writes == [
        (
            "reserve_vni",
            {"profile_name": "ens4", "vni_type": "vlan", "network": "ns/t1", "dry_run": False},
        )
    ]


def test_tenant_network_dry_run_reserves_nothing():
    store = FakeStore(config=TCONF)
    response = decide(store, network("TenantNetwork", host_device="ens4"), dry_run=True)
    assert response["allowed"] is True
    assert store.writes == []
    assert store.calls[-1][1]["dry_run"] is True


@pytest.mark.parametrize(
    ("obj", "config", "message"),
    [
        (network("TenantNetwork", host_device="ens4", vlan=5), TCONF, "Manually configuring"),
        (network("TenantNetwork", host_device="ens9"), TCONF, "not allowed to be used by tenants"),
        (
            network("TenantNetwork", network_id=None, host_device="ens4"),
            TCONF,
            "Spec.NetworkID mandatory parameter is missing!",
        ),
        (
            network("TenantNetwork", network_id="a" * 12, host_device="ens4"),
            TCONF,
            "cannot be longer than 11",
        ),
        (
            network("TenantNetwork", host_device="ens4"),
            None,
            "no TenantConfigs exist in the cluster",
        ),
    ],
)
def test_denied_tenant_network_writes_nothing(obj, config, message):
    store = FakeStore(config=config)
    response = decide(store, obj)
    assert response["allowed"] is False
    assert message in response["status"]["message"]
    assert store.writes == []


def test_reservation_failure_is_a_denial():
    store = FakeStore(config=TCONF, fail=True)
    response = decide(store, network("TenantNetwork", host_device="ens4"))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "cannot reserve VNI for interface:ens4 , because:API down"
    )


def test_network_id_override_for_static_type():
    store = FakeStore(config=TCONF)
    response = decide(store, network("TenantNetwork", network_type="flannel", network_id="x"))
    assert patch_of(response) == [{"op": "replace", "path": "/spec/NetworkID", "value": "flannel"}]
    assert store.writes == []


def test_update_without_pod_sensitive_change_needs_no_lookup():
    store = FakeStore(connected=ConnectedPod("p", "ns"))
    old = network(
        network_type="ipvlan",
        cidr="10.0.0.0/30",
        alloc="wA==",
        allocation_pool={"start": "10.0.0.1", "end": "10.0.0.2"},
    )
    new = network(
        network_type="ipvlan",
        cidr="10.0.0.0/30",
        alloc="4A==",
        allocation_pool={"start": "10.0.0.1", "end": "10.0.0.2"},
    )
    response = decide(store, new, operation="UPDATE", old=old)
    assert response["allowed"] is True
    assert "patch" not in response
    assert store.calls == []


def test_update_vlan_with_connected_pod_denied_and_without_allowed():
    old = network(host_device="ens4", vlan=5)
    new = network(host_device="ens4", vlan=6)
    denied = decide(FakeStore(connected=ConnectedPod("p", "ns")), new, operation="UPDATE", old=old)
    assert denied["allowed"] is False
    assert "Pod:p in namespace:ns" in denied["status"]["message"]
    allowed = decide(FakeStore(), new, operation="UPDATE", old=old)
    assert allowed["allowed"] is True


def test_update_lookup_failure_is_a_denial():
    old = network(host_device="ens4", vlan=5)
    new = network(host_device="ens4", vlan=6)
    response = decide(FakeStore(fail=True), new, operation="UPDATE", old=old)
    assert response["allowed"] is False
    assert (
        "no way to tell if Pods are still using the network due to:API down"
        in (response["status"]["message"])
    )


def test_update_without_old_object_denied():
    response = decide(FakeStore(), network(), operation="UPDATE")
    assert response["allowed"] is False
    assert response["status"]["code"] == 400


def test_delete_with_connected_pod_denied_and_vni_kept():
    store = FakeStore(connected=ConnectedPod("p", "ns"))
    old = network("TenantNetwork", host_device="ens4", vlan=200)
    response = decide(store, None, operation="DELETE", old=old)
    assert response["allowed"] is False
    assert (
        "Network cannot be deleted because there are Pods still connected"
        in (response["status"]["message"])
    )
    assert store.writes == []


def test_delete_tenant_network_frees_vni():
    store = FakeStore()
    response = decide(
        store, None, operation="DELETE", old=network("TenantNetwork", host_device="ens4", vlan=200)
    )
    assert response["allowed"] is True
    assert store.writes == [("free_vni", {"profile_name": "ens4", "vni_type": "vlan", "vni": 200})]


def test_delete_dry_run_frees_nothing():
    store = FakeStore()
    old = network("TenantNetwork", host_device="ens4", vlan=200)
    assert decide(store, None, operation="DELETE", old=old, dry_run=True)["allowed"] is True
    assert store.writes == []


class FreeFails(FakeStore):
    def free_vni(self, *, profile_name: str, vni_type: str, vni: int) -> None:
        raise KubeUnavailable("gone")


def test_delete_free_failure_denied():
    old = network("TenantNetwork", host_device="ens4", vlan=200)
    response = decide(FreeFails(), None, operation="DELETE", old=old)
    assert response["allowed"] is False
    assert "The network's VNI could not be freed, because:gone" in response["status"]["message"]


def test_delete_danmnet_checks_pods_only():
    store = FakeStore()
    assert decide(store, None, operation="DELETE", old=network())["allowed"] is True
    assert [c[0] for c in store.calls] == ["connected_pod"]


def test_wrong_kind_denied():
    response = decide(FakeStore(), {"kind": "Pod", "metadata": {"name": "p"}}, kind="Pod")
    assert response["allowed"] is False
    assert "K8s API type:Pod is not handled by DANM webhook" in response["status"]["message"]


def test_malformed_object_denied_with_field():
    response = decide(FakeStore(), network(vlan="five"))
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert "spec.Options.vlan" in response["status"]["message"]


def test_missing_object_denied():
    body = review(network())
    body["request"]["object"] = None
    body["request"]["oldObject"] = None
    request = parse_review(json.dumps(body))
    response = Reviewer(FakeStore()).review_network(request)["response"]
    assert response["allowed"] is False
    assert "has no object" in response["status"]["message"]


def test_tenant_config_create_patched_and_bad_one_denied():
    ok = decide(FakeStore(), TCONF)
    assert ok["allowed"] is True
    assert [op["path"] for op in patch_of(ok)] == ["/hostDevices/0/alloc"]
    bad = decide(FakeStore(), tenant_config())
    assert bad["allowed"] is False
    assert "Either hostDevices, or networkIds must be provided!" in bad["status"]["message"]
    wrong_kind = decide(FakeStore(), network(), kind="DanmNet")
    assert wrong_kind["allowed"] is True  # NB: network path; TenantConfig path checked below
    request = parse_review(json.dumps(review(network())))
    denied = Reviewer(FakeStore()).review_tenant_config(request)["response"]
    assert "K8s API type:DanmNet is not handled" in denied["status"]["message"]


@pytest.mark.parametrize(
    ("obj", "operation", "old", "expected"),
    [
        (network(), "CREATE", None, False),
        (network("TenantNetwork"), "CREATE", None, True),
        (network(), "UPDATE", network(), False),
        (network(vlan=2), "UPDATE", network(vlan=1), True),
        (None, "DELETE", network(), True),
        (tenant_config([{"name": "e"}]), "CREATE", None, False),
    ],
)
def test_may_call_api(obj, operation, old, expected):
    request = parse_review(json.dumps(review(obj, operation=operation, old=old)))
    assert may_call_api(request) is expected
