"""AdmissionReview in, AdmissionReview out: the wire format between the API server and us.

Pure dict-in/dict-out, so that everything the API server can send (and everything a broken
client can send) is tested without a socket. ``admission.k8s.io/v1`` and ``v1beta1`` share one
shape; the answer echoes the request's ``apiVersion`` because a v1 API server rejects a response
that lacks it (the original answered ``{"response": ...}`` only, which v1 does not accept).

Two kinds of bad input, two outcomes:

* the body is not an AdmissionReview we can answer (not JSON, not an object, no ``request``, no
  ``uid``): :class:`ReviewError`, which the server turns into HTTP 400, since without a uid no
  well-formed response exists;
* the review is well formed but its content is unusable (unknown operation, missing or malformed
  object): a normal denial, built by the caller with :func:`deny`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final

from webhook.patch import JsonPatch

V1: Final = "admission.k8s.io/v1"
V1BETA1: Final = "admission.k8s.io/v1beta1"
SUPPORTED_VERSIONS: Final = (V1, V1BETA1)
OPERATIONS: Final = ("CREATE", "UPDATE", "DELETE", "CONNECT")

#: HTTP-like codes put into a denial's ``status.code``; the API server returns them to clients.
CODE_FORBIDDEN: Final = 403
CODE_BAD_REQUEST: Final = 400


class ReviewError(ValueError):
    """The body cannot be answered with an AdmissionReview (the server answers HTTP 400)."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """The parts of ``AdmissionReview.request`` DANM looks at.

    ``kind`` is the kind of the object under review (``request.kind.kind``, falling back to the
    object's own ``kind``); ``obj``/``old_obj`` are the decoded objects or ``None``.
    """

    api_version: str
    uid: str
    operation: str
    kind: str
    name: str
    namespace: str
    obj: dict[str, Any] | None
    old_obj: dict[str, Any] | None
    dry_run: bool


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def parse_review(body: bytes | str) -> AdmissionRequest:
    """Decode an AdmissionReview body; :class:`ReviewError` when it cannot be answered at all."""
    if not body:
        raise ReviewError("Received review request is empty!")
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ReviewError(f"the body is not JSON: {error}") from None
    if not isinstance(review, dict):
        raise ReviewError("the body is not a JSON object, so it is not an AdmissionReview")
    api_version = review.get("apiVersion")
    if api_version is None:
        # NB: the original accepted reviews without apiVersion; answer them in v1beta1 style.
        api_version = V1BETA1
    if api_version not in SUPPORTED_VERSIONS:
        raise ReviewError(
            f"apiVersion {api_version!r} is not supported; expected one of "
            f"{', '.join(SUPPORTED_VERSIONS)}"
        )
    kind = review.get("kind")
    if kind not in (None, "AdmissionReview"):
        raise ReviewError(f"kind {kind!r} is not AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("the AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing, so no response could be matched to it")
    obj = _object(request.get("object"))
    old_obj = _object(request.get("oldObject"))
    gvk = request.get("kind")
    review_kind = _str(gvk.get("kind")) if isinstance(gvk, dict) else ""
    if not review_kind:
        review_kind = _str((obj or old_obj or {}).get("kind"))
    return AdmissionRequest(
        api_version=api_version,
        uid=uid,
        operation=_str(request.get("operation")),
        kind=review_kind,
        name=_str(request.get("name"))
        or _str(((obj or old_obj or {}).get("metadata") or {}).get("name")),
        namespace=_str(request.get("namespace")),
        obj=obj,
        old_obj=old_obj,
        dry_run=request.get("dryRun") is True,
    )


def _review(request: AdmissionRequest, response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}


def allow(request: AdmissionRequest, patch: JsonPatch | None = None) -> dict[str, Any]:
    """An allowing response, with ``patch`` (base64 JSONPatch) only when it has ops."""
    response: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if patch:
        encoded = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode())
        response["patch"] = encoded.decode("ascii")
        response["patchType"] = "JSONPatch"
    return _review(request, response)


def deny(request: AdmissionRequest, message: str, *, code: int = CODE_FORBIDDEN) -> dict[str, Any]:
    """A denying response; ``message`` is what ``kubectl`` shows after "denied the request:"."""
    reason = "BadRequest" if code == CODE_BAD_REQUEST else "Forbidden"
    status = {"code": code, "reason": reason, "message": message}
    return _review(request, {"uid": request.uid, "allowed": False, "status": status})
