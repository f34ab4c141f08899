"""Status-to-exception mapping and the retryability rules of ``common.io.kube``."""

from __future__ import annotations

import json

import pytest

from common.io import kube


def _status(code: int, reason: str, message: str = "m", **details: object) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadRequest", kube.BadRequest),
        (401, "Unauthorized", kube.Unauthorized),
        (403, "Forbidden", kube.Forbidden),
        (404, "NotFound", kube.NotFound),
        (409, "AlreadyExists", kube.AlreadyExists),
        (409, "Conflict", kube.Conflict),
        (409, "", kube.Conflict),
        (410, "Expired", kube.Gone),
        (422, "Invalid", kube.Invalid),
        (429, "TooManyRequests", kube.TooManyRequests),
        (500, "InternalError", kube.ServerError),
        (503, "ServiceUnavailable", kube.ServerError),
        (504, "Timeout", kube.ServerError),
        (418, "Teapot", kube.KubeApiError),
    ],
)
def test_status_picks_the_exception_class(
    status: int, reason: str, expected: type[kube.KubeApiError]
) -> None:
    error = kube.error_from_status(status, _status(status, reason))
    assert type(error) is expected
    assert error.status == status
    assert error.reason == reason
    assert isinstance(error, kube.KubeError)


def test_status_body_fields_are_kept() -> None:
    body = _status(404, "NotFound", 'danmnets "x" not found', name="x", kind="danmnets")
    error = kube.error_from_status(404, body)
    assert error.message == 'danmnets "x" not found'
    assert error.details == {"name": "x", "kind": "danmnets"}
    assert "NotFound" in str(error)
    assert 'danmnets "x" not found' in str(error)


def test_status_body_accepts_an_already_parsed_mapping() -> None:
    error = kube.error_from_status(500, json.loads(_status(409, "AlreadyExists")))
    # NB: the Status body's own code wins over the transport status (watch ERROR events).
    assert type(error) is kube.AlreadyExists


def test_non_json_body_is_truncated_into_the_message() -> None:
    html = "<html>" + "x" * 10_000 + "</html>"
    error = kube.error_from_status(502, html.encode())
    assert type(error) is kube.ServerError
    assert error.reason == ""
    assert len(error.message) < kube.TEXT_ERROR_MAX_SIZE + 40
    assert error.message.startswith("<html>xxx")
    assert "10013 chars" in error.message


def test_json_that_is_not_a_status_is_shown_truncated() -> None:
    error = kube.error_from_status(400, json.dumps({"oops": "y" * 1000}).encode())
    assert type(error) is kube.BadRequest
    assert error.message.startswith('{"oops": "yyy')
    assert len(error.message) < kube.TEXT_ERROR_MAX_SIZE + 40


def test_empty_body() -> None:
    error = kube.error_from_status(404, b"")
    assert type(error) is kube.NotFound
    assert error.message == ""


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (kube.KubeUnavailable("down"), True),
        (kube.ServerError(503), True),
        (kube.TooManyRequests(429), True),
        (kube.Conflict(409), False),
        (kube.NotFound(404), False),
        (kube.Gone(410), False),
        (kube.Invalid(422), False),
        (kube.RetryDeadlineExceeded("DanmNet a/b", 3, 1.0), False),
        (ValueError("not ours"), False),
    ],
)
def test_retryable_is_decided_in_one_place(error: BaseException, retryable: bool) -> None:
    assert kube.is_retryable(error) is retryable


def test_deadline_error_names_the_object_and_attempts() -> None:
    error = kube.RetryDeadlineExceeded("DanmNet ns1/net1", 7, 2.5)
    assert "DanmNet ns1/net1" in str(error)
    assert "7 attempts" in str(error)
    assert "2.5 s" in str(error)
