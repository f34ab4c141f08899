"""CRD lifecycle: established, discovered, served, schema-checked, and removed again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import Kubectl
from tests.contract.crds import GROUP, PLURAL, VERSION, danmnet, danmnet_crd
from tests.contract.http import RawClient

pytestmark = pytest.mark.e2e

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NETS = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"


def test_crd_lifecycle(raw: RawClient, custom: Any) -> None:
    assert raw.request("GET", NETS)[0] == 404
    code, crd = raw.request("POST", CRDS, danmnet_crd())
    assert code == 201
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["listKind"] == "DanmNetList"
    _, resources = raw.request("GET", f"/apis/{GROUP}/{VERSION}")
    main = resources["resources"][0]
    assert (
        main["name"],
        main["kind"],
        main["namespaced"],
        main["shortNames"],
        main["categories"],
        main["singularName"],
    ) == (PLURAL, "DanmNet", True, ["dn"], ["all"], "danmnet")
    _, groups = raw.request("GET", "/apis")
    assert GROUP in {g["name"] for g in groups["groups"]}

    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, danmnet("net1", unknown=1)
    )
    assert created["spec"] == {"NetworkID": "net1", "NetworkType": "ipvlan"}
    assert created["metadata"]["generation"] == 1

    code, status = raw.request("POST", NETS, danmnet("bad", Options={"vlan": 5000}))
    assert code == 422
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('DanmNet.danm.k8s.io "bad" is invalid: ')
    assert status["details"]["group"] == GROUP
    assert status["details"]["kind"] == "DanmNet"
    assert status["details"]["causes"][0]["field"] == "spec.Options.vlan"
    code, status = raw.request(
        "POST",
        NETS,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DanmNet",
            "metadata": {"name": "r"},
            "spec": {},
        },
    )
    assert code == 422
    assert status["details"]["causes"][0]["reason"] == "FieldValueRequired"

    code, status = raw.request(
        "PATCH",
        f"{NETS}/net1",
        {"spec": {"NetworkType": "x"}},
        "application/strategic-merge-patch+json",
    )
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")

    code, deleted = raw.request("DELETE", f"{NETS}/net1")
    assert (code, deleted["status"], deleted["details"]["group"]) == (200, "Success", GROUP)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, danmnet("net2"))
    assert raw.request("DELETE", f"{CRDS}/{PLURAL}.{GROUP}")[0] == 200
    code, status = raw.request("GET", NETS)
    assert (code, status["reason"]) == (404, "NotFound")
    raw.request("POST", CRDS, danmnet_crd())
    _, listed = raw.request("GET", NETS)
    assert listed["items"] == []


def test_custom_status_subresource_and_generation(raw: RawClient) -> None:
    raw.request("POST", CRDS, danmnet_crd())
    body = danmnet("n")
    body["status"] = {"ignored": True}
    _, created = raw.request("POST", NETS, body)
    assert "status" not in created
    _, with_status = raw.request(
        "PATCH", f"{NETS}/n/status", {"status": {"ready": True}}, "application/merge-patch+json"
    )
    assert with_status["status"] == {"ready": True}
    assert with_status["metadata"]["generation"] == 1
    _, changed = raw.request(
        "PATCH",
        f"{NETS}/n",
        {"spec": {"NetworkType": "macvlan"}, "status": {"ready": False}},
        "application/merge-patch+json",
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["status"] == {"ready": True}


def test_cluster_scoped_crd(raw: RawClient) -> None:
    raw.request("POST", CRDS, danmnet_crd(scope="Cluster"))
    code, created = raw.request("POST", f"/apis/{GROUP}/{VERSION}/{PLURAL}", danmnet("c"))
    assert code == 201
    assert "namespace" not in created["metadata"]
    assert raw.request("GET", NETS)[0] == 404


def test_crd_name_must_match(raw: RawClient) -> None:
    crd = danmnet_crd()
    crd["metadata"]["name"] = "wrong.danm.k8s.io"
    code, status = raw.request("POST", CRDS, crd)
    assert code == 422
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_kubectl_with_crd(raw: RawClient, kubectl: Kubectl, custom: Any) -> None:
    raw.request("POST", CRDS, danmnet_crd())
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, danmnet("net1", NetworkType="macvlan")
    )
    table = kubectl.run("get", "dn").stdout.splitlines()
    assert table[0].split() == ["NAME", "NETWORKTYPE", "AGE"]
    assert table[1].split()[:2] == ["net1", "macvlan"]
    assert "danmnet.danm.k8s.io/net1" in kubectl.run("get", "all").stdout
    assert kubectl.run("get", "danmnets", "-o", "name").stdout.strip() == "danmnet.danm.k8s.io/net1"
    kubectl.run("delete", "crd", f"{PLURAL}.{GROUP}")
    result = kubectl.run("get", "dn", check=False)
    assert result.returncode != 0
