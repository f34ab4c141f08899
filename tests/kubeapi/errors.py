"""kube-apiserver's error vocabulary: every failure is a ``Status`` object.

Clients branch on ``reason`` and ``code`` (the official client maps them to ``ApiException``,
kubectl prints ``message``), so the bodies here follow k8s.io/apimachinery's
``pkg/api/errors`` constructors field by field, including which ``details`` keys exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GroupResource:
    group: str
    resource: str

    def __str__(self) -> str:
        # NB: schema.GroupResource.String(): no trailing dot for the core group.
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class Cause:
    """One field error: ``type`` is a CauseType, ``message`` the error body (no field)."""

    type: str
    field: str
    message: str

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(Exception):
    """A failure that the HTTP layer turns into a ``Status`` response verbatim."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(gr: GroupResource | None, name: str = "", **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if gr is not None and gr.group:
        details["group"] = gr.group
    if gr is not None and gr.resource:
        details["kind"] = gr.resource
    details.update({k: v for k, v in extra.items() if v})
    return details


def not_found(gr: GroupResource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{gr} "{name}" not found', _details(gr, name))


def already_exists(gr: GroupResource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{gr} "{name}" already exists', _details(gr, name))


def conflict(gr: GroupResource, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {gr} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(gr, name))


OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    qualified_kind = f"{kind}.{group}" if group else kind
    texts = [c.text() for c in causes]
    # NB: field.ErrorList.ToAggregate(): one error prints bare, several as "[a, b]".
    aggregate = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": c.type, "message": c.message, "field": c.field} for c in causes]
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {aggregate}', details)


def invalid_value_body(value: Any, detail: str) -> str:
    """field.Invalid's ErrorBody: ``Invalid value: "x": detail`` (strings quoted)."""
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return f"Invalid value: {shown}: {detail}"


def unprocessable(message: str = "") -> ApiError:
    """NewGenericServerResponse(422, ...): what a failed JSON patch ``test`` op yields."""
    del message  # NB: the real server drops the patch library's text (causes stay nil).
    return ApiError(
        422, "Invalid", "the server rejected our request due to an error in our request", {}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(gr: GroupResource, name: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{gr} "{name}" is forbidden: {why}', _details(gr, name))


def method_not_allowed(gr: GroupResource, action: str) -> ApiError:
    message = f'{action} is not supported on resources of kind "{gr}"'
    return ApiError(405, "MethodNotAllowed", message, _details(gr))


def method_not_allowed_generic() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def unsupported_media_type(accepted: list[str], detail: str = "") -> ApiError:
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted)
    )
    if detail:
        message += f" ({detail})"
    return ApiError(415, "UnsupportedMediaType", message)


def expired(message: str) -> ApiError:
    """NewResourceExpired: HTTP 410 with reason ``Expired`` (watch/continue too old)."""
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def path_not_found() -> ApiError:
    """An unknown URL: the real server's NotFound for paths nobody serves."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def internal(message: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )
