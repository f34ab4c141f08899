"""The server calls the admission chain at the right points, in the real server's order.

A recording chain replaces tests/kubeapi/admission.AdmissionChain (whose webhook calling is
tested by its own author); here we only check when and with what it is called.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.contract.crds import GROUP, PLURAL, VERSION, danmnet, danmnet_crd
from tests.contract.http import RawClient
from tests.kubeapi.testing import RunningKubeApi

admission = pytest.importorskip("tests.kubeapi.admission")
pytestmark = pytest.mark.e2e

NETS = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"


class RecordingChain:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def mutate(self, attrs: Any) -> dict[str, Any] | None:
        self.calls.append(("mutate", copy.deepcopy(attrs)))
        if attrs.obj is None:
            return None
        patched: dict[str, Any] = copy.deepcopy(attrs.obj)
        patched["metadata"].setdefault("labels", {})["mutated"] = "yes"
        return patched

    async def validate(self, attrs: Any) -> None:
        self.calls.append(("validate", copy.deepcopy(attrs)))
        labels = (attrs.obj or {}).get("metadata", {}).get("labels", {})
        if labels.get("deny") == "yes":
            raise admission.AdmissionDenied(400, "BadRequest", 'admission webhook "x" denied')

    async def close(self) -> None:
        return None


@pytest.fixture
def chain(kubeapi: RunningKubeApi, raw: RawClient) -> RecordingChain:
    raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", danmnet_crd())
    raw.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        {"metadata": {"name": "any"}, "webhooks": []},
    )
    recording = RecordingChain()
    kubeapi.call(lambda registry: setattr(registry, "_chain", recording))
    return recording


def test_create_order(chain: RecordingChain, raw: RawClient) -> None:
    body = danmnet("")
    body["metadata"] = {"generateName": "net-"}
    code, created = raw.request("POST", NETS, body)
    assert code == 201
    assert created["metadata"]["labels"] == {"mutated": "yes"}
    (stage1, mutate), (stage2, validate) = chain.calls
    assert (stage1, stage2) == ("mutate", "validate")
    assert (mutate.operation, mutate.resource, mutate.group, mutate.kind) == (
        "CREATE",
        PLURAL,
        GROUP,
        "DanmNet",
    )
    # NB: mutating admission runs before name generation and schema defaulting...
    assert mutate.name == ""
    assert "NetworkType" not in mutate.obj["spec"]
    assert mutate.old_obj is None
    assert mutate.namespace == "default"
    assert (mutate.user, mutate.groups) == ("admin", ["system:masters", "system:authenticated"])
    # NB: ...validating admission sees the object exactly as it will be stored.
    assert validate.name == created["metadata"]["name"]
    assert validate.obj["spec"]["NetworkType"] == "ipvlan"
    assert validate.obj["metadata"]["labels"] == {"mutated": "yes"}


def test_update_patch_status_and_delete(chain: RecordingChain, raw: RawClient) -> None:
    raw.request("POST", NETS, danmnet("n"))
    chain.calls.clear()
    raw.request(
        "PATCH",
        f"{NETS}/n?dryRun=All",
        {"spec": {"NetworkType": "macvlan"}},
        "application/merge-patch+json",
    )
    (_, mutate), (_, _validate) = chain.calls
    assert (mutate.operation, mutate.dry_run, mutate.subresource) == ("UPDATE", True, "")
    assert mutate.obj["spec"]["NetworkType"] == "macvlan"
    assert mutate.old_obj["spec"]["NetworkType"] == "ipvlan"
    chain.calls.clear()
    raw.request("PUT", f"{NETS}/n/status", {**danmnet("n"), "status": {"ok": True}})
    assert [c[1].subresource for c in chain.calls] == ["status", "status"]
    chain.calls.clear()
    assert raw.request("DELETE", f"{NETS}/n")[0] == 200
    assert [(s, a.operation, a.obj, a.old_obj["metadata"]["name"]) for s, a in chain.calls] == [
        ("mutate", "DELETE", None, "n"),
        ("validate", "DELETE", None, "n"),
    ]


def test_denial_becomes_status(chain: RecordingChain, raw: RawClient) -> None:
    body = danmnet("d")
    body["metadata"]["labels"] = {"deny": "yes"}
    code, status = raw.request("POST", NETS, body)
    assert (code, status["reason"], status["message"]) == (
        400,
        "BadRequest",
        'admission webhook "x" denied',
    )
    assert raw.request("GET", f"{NETS}/d")[0] == 404


def test_core_objects_are_admitted_too(chain: RecordingChain, raw: RawClient) -> None:
    raw.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}})
    assert [(s, a.resource, a.group) for s, a in chain.calls] == [
        ("mutate", "configmaps", ""),
        ("validate", "configmaps", ""),
    ]
