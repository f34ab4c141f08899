"""AdmissionReview requests as the real server builds them, and responses as it checks them."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from tests.kubeapi.admission import (
    AdmissionAttributes,
    AdmissionDenied,
    WebhookResponseError,
    build_admission_review,
    denial_from_status,
    parse_review_response,
)

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}}
CREATE = AdmissionAttributes(
    operation="CREATE",
    group="",
    version="v1",
    resource="configmaps",
    subresource="",
    kind="ConfigMap",
    namespace="ns",
    name="cm",
    obj=CM,
    old_obj=None,
    dry_run=False,
    user="alice",
    groups=["devs", "system:authenticated"],
)


def test_create_review_has_every_request_field() -> None:
    review = build_admission_review(CREATE, uid="u-1")
    assert review == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "cm",
            "namespace": "ns",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]},
            "object": CM,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }
    json.dumps(review)  # NB: must be serialisable as is.


@pytest.mark.parametrize(
    ("operation", "options_kind"),
    [("UPDATE", "UpdateOptions"), ("DELETE", "DeleteOptions")],
)
def test_options_follow_the_operation(operation: str, options_kind: str) -> None:
    attrs = dataclasses.replace(CREATE, operation=operation, old_obj=CM, dry_run=True)
    request = build_admission_review(attrs, uid="u")["request"]
    assert request["options"] == {
        "kind": options_kind,
        "apiVersion": "meta.k8s.io/v1",
        "dryRun": ["All"],
    }
    assert request["dryRun"] is True
    assert request["oldObject"] == CM


def test_subresource_cluster_scope_and_v1beta1() -> None:
    attrs = dataclasses.replace(
        CREATE, resource="nodes", kind="Node", subresource="status", namespace=None, groups=[]
    )
    review = build_admission_review(attrs, uid="u", review_version="v1beta1")
    request = review["request"]
    assert review["apiVersion"] == "admission.k8s.io/v1beta1"
    assert request["subResource"] == request["requestSubResource"] == "status"
    assert "namespace" not in request
    assert request["userInfo"] == {"username": "alice"}


def test_namespace_object_gets_its_own_name_as_namespace() -> None:
    attrs = dataclasses.replace(
        CREATE, resource="namespaces", kind="Namespace", namespace=None, name="team-a"
    )
    assert build_admission_review(attrs, uid="u")["request"]["namespace"] == "team-a"


def review_body(response: dict[str, Any] | None, **top: Any) -> bytes:
    body: dict[str, Any] = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
    body.update(top)
    if response is not None:
        body["response"] = response
    return json.dumps(body).encode()


PATCH = base64.b64encode(b'[{"op":"add","path":"/a","value":1}]').decode()

BAD_RESPONSES: list[tuple[str, bytes, bool, str, str]] = [
    ("not json", b"<html>", True, "decode", "not JSON"),
    ("json array", b"[]", True, "decode", "not a JSON object"),
    ("absent response", review_body(None), True, "verify", "webhook response was absent"),
    (
        "uid mismatch",
        review_body({"uid": "other", "allowed": True}),
        True,
        "verify",
        'expected response.uid="u", got "other"',
    ),
    (
        "no apiVersion/kind",
        json.dumps({"response": {"uid": "u", "allowed": True}}).encode(),
        True,
        "verify",
        "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got , Kind=",
    ),
    (
        "v1beta1 answer to v1",
        review_body({"uid": "u", "allowed": True}, apiVersion="admission.k8s.io/v1beta1"),
        True,
        "verify",
        "got admission.k8s.io/v1beta1, Kind=AdmissionReview",
    ),
    (
        "allowed not bool",
        review_body({"uid": "u", "allowed": "yes"}),
        True,
        "decode",
        "not a boolean",
    ),
    ("patch not base64", review_body({"uid": "u", "allowed": True,
     "patch": "%%%", "patchType": "JSONPatch"}), True, "decode", "not valid base64"),
    ("patch without type", review_body({"uid": "u", "allowed": True, "patch": PATCH}), True,
     "verify", "webhook returned response.patch but not response.patchType"),
    ("type without patch", review_body({"uid": "u", "allowed": True, "patchType": "JSONPatch"}),
     True, "verify", "webhook returned response.patchType but not response.patch"),
    ("empty patch type", review_body({"uid": "u", "allowed": True, "patch": PATCH,
     "patchType": ""}), True, "verify", "invalid response.patchType"),
    ("validating with patch", review_body({"uid": "u", "allowed": True, "patch": PATCH,
     "patchType": "JSONPatch"}), False, "verify",
     "validating webhook may not return response.patch"),
    ("validating with patchType", review_body({"uid": "u", "allowed": True,
     "patchType": "JSONPatch"}), False, "verify",
     "validating webhook may not return response.patchType"),
    ("status not object", review_body({"uid": "u", "allowed": False, "status": "no"}), False,
     "decode", "status is not an object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "mutating", "stage", "words"),
    [pytest.param(b, m, s, w, id=n) for n, b, m, s, w in BAD_RESPONSES],
)
def test_bad_responses(body: bytes, mutating: bool, stage: str, words: str) -> None:
    with pytest.raises(WebhookResponseError) as caught:
        parse_review_response(body, uid="u", review_version="v1", mutating=mutating)
    assert caught.value.stage == stage
    assert words in str(caught.value)


def test_good_mutating_response() -> None:
    body = review_body(
        {
            "uid": "u",
            "allowed": True,
            "patch": PATCH,
            "patchType": "JSONPatch",
            "warnings": ["careful"],
        }
    )
    parsed = parse_review_response(body, uid="u", review_version="v1", mutating=True)
    assert parsed.allowed is True
    assert parsed.patch == b'[{"op":"add","path":"/a","value":1}]'
    assert parsed.patch_type == "JSONPatch"
    assert parsed.warnings == ["careful"]


def test_v1beta1_response_is_checked_loosely() -> None:
    # NB: the real server never verified uid, apiVersion or patchType for v1beta1 reviews.
    body = json.dumps({"response": {"allowed": True, "patch": PATCH}}).encode()
    parsed = parse_review_response(body, uid="u", review_version="v1beta1", mutating=True)
    assert (parsed.allowed, parsed.patch_type) == (True, "JSONPatch")
    validating = parse_review_response(body, uid="u", review_version="v1beta1", mutating=False)
    assert validating.patch is None


DENIALS: list[tuple[str, dict[str, Any] | None, AdmissionDenied]] = [
    ("message and code", {"code": 403, "reason": "Forbidden", "message": "no"},
     AdmissionDenied(403, "Forbidden", 'admission webhook "w" denied the request: no')),
    ("reason only", {"code": 422, "reason": "Invalid"},
     AdmissionDenied(422, "Invalid", 'admission webhook "w" denied the request: Invalid')),
    ("nothing", None,
     AdmissionDenied(400, "", 'admission webhook "w" denied the request without explanation')),
    ("code below 400", {"code": 200, "message": "m"},
     AdmissionDenied(400, "", 'admission webhook "w" denied the request: m')),
]  # fmt: skip


@pytest.mark.parametrize(("status", "expected"), [pytest.param(s, e, id=n) for n, s, e in DENIALS])
def test_denial_from_status(status: dict[str, Any] | None, expected: AdmissionDenied) -> None:
    denied = denial_from_status("w", status)
    assert (denied.code, denied.reason, denied.message) == (
        expected.code,
        expected.reason,
        expected.message,
    )


def test_denial_to_status_body() -> None:
    status = AdmissionDenied(403, "Forbidden", "msg").to_status()
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "msg",
        "reason": "Forbidden",
        "code": 403,
    }
    assert "reason" not in AdmissionDenied(400, "", "m").to_status()
