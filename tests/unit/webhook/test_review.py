"""AdmissionReview parsing (v1 and v1beta1) and response building."""

from __future__ import annotations

import base64
import json

import pytest

from webhook.review import ReviewError, allow, deny, parse_review

from .builders import network, review


def test_parse_v1_review():
    obj = network(cidr="10.0.0.0/24")
    request = parse_review(json.dumps(review(obj, dry_run=True)))
    assert request.api_version == "admission.k8s.io/v1"
    assert request.uid == "uid-1"
    assert request.operation == "CREATE"
    assert request.kind == "DanmNet"
    assert (request.name, request.namespace) == ("net", "ns")
    assert request.obj == obj
    assert request.old_obj is None
    assert request.dry_run is True


def test_parse_v1beta1_and_missing_api_version():
    body = review(network(), api_version="admission.k8s.io/v1beta1")
    assert parse_review(json.dumps(body)).api_version == "admission.k8s.io/v1beta1"
    del body["apiVersion"]
    assert parse_review(json.dumps(body)).api_version == "admission.k8s.io/v1beta1"


def test_kind_falls_back_to_the_object():
    body = review(network(kind="TenantNetwork"))
    del body["request"]["kind"]
    assert parse_review(json.dumps(body)).kind == "TenantNetwork"


def test_delete_review_takes_name_from_old_object():
    body = review(None, operation="DELETE", old=network(name="gone"))
    body["request"]["name"] = ""
    request = parse_review(json.dumps(body))
    assert request.obj is None
    assert request.name == "gone"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Received review request is empty!"),
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v2"}', "is not supported"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "is not AdmissionReview"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "no request"),
        (b'{"kind": "AdmissionReview", "request": {"uid": ""}}', "request.uid is missing"),
    ],
)
def test_unanswerable_bodies(body, message):
    with pytest.raises(ReviewError, match=message):
        parse_review(body)


def test_allow_without_and_with_patch():
    request = parse_review(json.dumps(review(network())))
    assert allow(request) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "uid-1", "allowed": True},
    }
    assert "patch" not in allow(request, [])["response"]
    ops = [{"op": "add", "path": "/spec/NetworkType", "value": "ipvlan"}]
    response = allow(request, ops)["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops


def test_deny_carries_status_and_echoes_version():
    body = review(network(), api_version="admission.k8s.io/v1beta1", uid="u-9")
    request = parse_review(json.dumps(body))
    assert deny(request, "no") == {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "u-9",
            "allowed": False,
            "status": {"code": 403, "reason": "Forbidden", "message": "no"},
        },
    }
    assert deny(request, "bad", code=400)["response"]["status"]["reason"] == "BadRequest"
