"""Dynamic admission control for the API stand-in: the caller side of admission webhooks.

DANM's webhook is only proven correct once a real API server has called it: picked it by its
rules and selectors, sent it an ``AdmissionReview`` over verified HTTPS, applied its JSON patch
and turned its denial into the error ``kubectl`` prints. This module does what kube-apiserver's
``MutatingAdmissionWebhook`` and ``ValidatingAdmissionWebhook`` plugins do, following
``k8s.io/apiserver/pkg/admission/plugin/webhook`` (dispatchers, ``predicates/{rules,namespace,
object}``, ``request``, ``errors``) and the "Dynamic Admission Control" documentation.

How a request goes through (``AdmissionChain``):

* configurations are read fresh on every request, sorted by ``metadata.name``; webhooks keep
  their order inside a configuration. Requests on webhook configurations themselves are exempt.
* a webhook is called when its ``namespaceSelector`` and ``objectSelector`` (labels of the new
  or the old object) match and one of its ``rules`` does (operations, apiGroups, apiVersions,
  ``resource``/``resource/subresource`` with ``*``, scope).
* mutating webhooks run one after the other, each seeing the object patched by the ones before;
  ``reinvocationPolicy: IfNeeded`` webhooks are called once more if a later webhook changed the
  object. Validating webhooks run concurrently.
* a webhook that cannot be called or answers nonsense is skipped under ``failurePolicy: Ignore``
  and fails the request with 500 ``InternalError`` under ``Fail`` (the default):
  ``Internal error occurred: failed calling webhook "<name>": <why>``.
* a denial becomes ``admission webhook "<name>" denied the request: <status.message>`` (or
  ``status.reason``, or ``without explanation``) with the webhook's ``status.code``, raised to
  at least 400, and its ``status.reason`` passed through unchanged (possibly empty).
* on a dry run, a webhook whose ``sideEffects`` is not ``None``/``NoneOnDryRun`` fails the
  request with 400 ``BadRequest`` (``admission webhook "<name>" does not support dry run``)
  whatever its failure policy, exactly as the real server does; it is not silently skipped.
* a patch that cannot be applied is a 500 ``InternalError`` whatever the failure policy (the
  webhook answered, the answer is wrong); an undecodable one follows the failure policy.

Simplifications, on purpose:

* ``matchPolicy: Equivalent`` behaves like ``Exact``: the stand-in serves one version of each
  resource, so there is nothing equivalent to convert to.
* ``matchConditions`` (CEL) are not evaluated. A matching webhook that has them is treated as if
  evaluating them had failed: skipped under ``Ignore``, 403 ``Forbidden`` under ``Fail``.
* without a ``get_namespace_labels`` callback, every namespace exists and carries only the label
  the real server puts on all namespaces, ``kubernetes.io/metadata.name: <name>``.
* a configuration dict is read leniently with the v1 defaults (``failurePolicy: Fail``,
  ``timeoutSeconds: 10``, empty selectors, ``matchPolicy`` ignored); validating it on create is
  the server's business.
* warnings and audit annotations from webhooks are logged, not returned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import math
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from tests.kubeapi import jsonpatch

__all__ = [
    "AdmissionAttributes",
    "AdmissionChain",
    "AdmissionDenied",
    "ReviewResponse",
    "WebhookResponseError",
    "build_admission_review",
    "denial_from_status",
    "parse_review_response",
    "rule_matches",
    "selector_matches",
]

_log = logging.getLogger(__name__)

MUTATING_CONFIGS = "mutatingwebhookconfigurations"
VALIDATING_CONFIGS = "validatingwebhookconfigurations"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_TIMEOUT_SECONDS = 10
_SUPPORTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_EXEMPT_KINDS = frozenset(
    {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    }
)
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

ListConfigs = Callable[[str], list[dict[str, Any]]]
GetNamespaceLabels = Callable[[str], dict[str, str] | None]
ResolveService = Callable[[str, str, int], str]


@dataclass(frozen=True)
class AdmissionAttributes:
    """What the server knows about one write, as admission webhooks get to see it."""

    operation: str  # "CREATE" | "UPDATE" | "DELETE"
    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str | None
    name: str
    obj: dict[str, Any] | None  # None for DELETE
    old_obj: dict[str, Any] | None  # None for CREATE
    dry_run: bool
    user: str
    groups: list[str] = field(default_factory=list)


class AdmissionDenied(Exception):
    """The request must fail with this HTTP ``code``, Status ``reason`` and ``message``.

    Raised for webhook denials and for every admission failure the real server reports as a
    Status (calling errors under ``Fail``, bad patches, unsupported dry run, missing namespace).
    ``reason`` is empty when a denying webhook gave none, as on the real server.
    """

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def to_status(self) -> dict[str, Any]:
        """The ``meta/v1`` Status body the server should answer with."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            status["reason"] = self.reason
        return status


class WebhookResponseError(Exception):
    """A webhook's HTTP answer that is not a usable AdmissionReview response.

    ``stage`` tells where the real server would have noticed: ``decode`` while reading the body
    into an AdmissionReview (reported as ``failed to call webhook: ...``), ``verify`` when
    checking its contents (``received invalid webhook response: ...``).
    """

    def __init__(self, stage: Literal["decode", "verify"], message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class ReviewResponse:
    """The parts of an AdmissionReview ``response`` the caller acts on."""

    allowed: bool
    status: dict[str, Any] | None
    patch: bytes | None
    patch_type: str
    warnings: list[str]
    audit_annotations: dict[str, str]


class _CallingWebhookError(Exception):
    """The webhook could not be called or answered nonsense: subject to ``failurePolicy``."""

    def __init__(self, webhook_name: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{webhook_name}": {reason}')


class _SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class _Webhook:
    uid: str
    configuration: str
    name: str
    mutating: bool
    spec: dict[str, Any]

    @property
    def ignores_failures(self) -> bool:
        return self.spec.get("failurePolicy") == "Ignore"

    @property
    def timeout_seconds(self) -> float:
        value = self.spec.get("timeoutSeconds")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return float(DEFAULT_TIMEOUT_SECONDS)

    @property
    def reinvocable(self) -> bool:
        return self.mutating and self.spec.get("reinvocationPolicy") == "IfNeeded"


# --- pure matching ---------------------------------------------------------------------------


def _exact_or_wildcard(items: Any, requested: str) -> bool:
    return isinstance(items, list) and any(item in ("*", requested) for item in items)


def _namespace_name(attrs: AdmissionAttributes) -> str:
    # NB: the real server sets the namespace of a request on a Namespace to that namespace's
    # own name; callers of this module may leave it empty, so fill it in the same way.
    if _is_namespace_object(attrs) and not attrs.namespace:
        return attrs.name
    return attrs.namespace or ""


def _is_namespace_object(attrs: AdmissionAttributes) -> bool:
    return (attrs.group, attrs.version, attrs.resource) == ("", "v1", "namespaces")


def rule_matches(rule: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    """Whether one ``RuleWithOperations`` covers the request (rules.Matcher in the apiserver)."""
    scope = rule.get("scope") or "*"
    if scope == "Namespaced":
        in_scope = not _is_namespace_object(attrs) and bool(attrs.namespace)
    elif scope == "Cluster":
        in_scope = _is_namespace_object(attrs) or not attrs.namespace
    else:
        in_scope = scope == "*"
    if not in_scope:
        return False
    if not _exact_or_wildcard(rule.get("operations"), attrs.operation):
        return False
    if not _exact_or_wildcard(rule.get("apiGroups"), attrs.group):
        return False
    if not _exact_or_wildcard(rule.get("apiVersions"), attrs.version):
        return False
    resources = rule.get("resources")
    if not isinstance(resources, list):
        return False
    for entry in resources:
        if not isinstance(entry, str):
            continue
        resource, _, subresource = entry.partition("/")
        # NB: a bare "*" means every resource but none of their subresources; "*/*" is both.
        if resource in ("*", attrs.resource) and subresource in ("*", attrs.subresource):
            return True
    return False


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` semantics; an empty or absent selector matches everything.

    Raises ``ValueError`` for a selector the real server could not parse.
    """
    if not selector:
        return True
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        raise _SelectorError("matchLabels must be an object")
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise _SelectorError("matchExpressions must be a list")
    for expression in expressions:
        if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
            raise _SelectorError(f"invalid label selector requirement {expression!r}")
        if not _requirement_matches(expression, labels):
            return False
    return True


def _requirement_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key: str = expression["key"]
    operator = expression.get("operator")
    values = expression.get("values") or []
    if not isinstance(values, list):
        raise _SelectorError(f"values of label selector key {key!r} must be a list")
    if operator in ("In", "NotIn"):
        if not values:
            raise _SelectorError(f"for 'in', 'notin' operators, values set can't be empty ({key})")
        if operator == "In":
            return key in labels and labels[key] in values
        return key not in labels or labels[key] not in values
    if operator in ("Exists", "DoesNotExist"):
        if values:
            raise _SelectorError(
                f"values set must be empty for exists and does not exist operators ({key})"
            )
        return (key in labels) is (operator == "Exists")
    raise _SelectorError(f"{operator!r} is not a valid label selector operator")


def _object_labels(obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not isinstance(obj, dict):
        return None
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


def _group_resource(attrs: AdmissionAttributes) -> str:
    return f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource


def _internal_error(message: str) -> AdmissionDenied:
    return AdmissionDenied(500, "InternalError", f"Internal error occurred: {message}")


# --- review construction and response parsing ------------------------------------------------


def build_admission_review(
    attrs: AdmissionAttributes, *, uid: str, review_version: str = "v1"
) -> dict[str, Any]:
    """The AdmissionReview request body the real server would send for ``attrs``."""
    kind = {"group": attrs.group, "version": attrs.version, "kind": attrs.kind}
    resource = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    user_info: dict[str, Any] = {"username": attrs.user}
    if attrs.groups:
        user_info["groups"] = list(attrs.groups)
    options: dict[str, Any] = {
        "kind": _OPTIONS_KIND.get(attrs.operation, "CreateOptions"),
        "apiVersion": "meta.k8s.io/v1",
    }
    if attrs.dry_run:
        options["dryRun"] = ["All"]
    request: dict[str, Any] = {
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": dict(kind),
        "requestResource": dict(resource),
        "operation": attrs.operation,
        "userInfo": user_info,
        "object": attrs.obj,
        "oldObject": attrs.old_obj,
        "dryRun": attrs.dry_run,
        "options": options,
    }
    # NB: the Go types mark these omitempty, so an empty value is left out rather than sent.
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    namespace = _namespace_name(attrs)
    if namespace:
        request["namespace"] = namespace
    return {
        "apiVersion": f"admission.k8s.io/{review_version}",
        "kind": "AdmissionReview",
        "request": request,
    }


def parse_review_response(
    body: bytes, *, uid: str, review_version: str, mutating: bool
) -> ReviewResponse:
    """Read and check an AdmissionReview response body (VerifyAdmissionResponse)."""
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        snippet = body[:80].decode("utf-8", "replace")
        raise WebhookResponseError(
            "decode", f"response body is not JSON ({e}): {snippet!r}"
        ) from None
    if not isinstance(review, dict):
        raise WebhookResponseError("decode", "response body is not a JSON object")
    response = review.get("response")
    if response is not None and not isinstance(response, dict):
        raise WebhookResponseError("decode", "response.response is not an object")

    if review_version == "v1":
        if response is None:
            raise WebhookResponseError("verify", "webhook response was absent")
        got_uid = response.get("uid", "")
        if got_uid != uid:
            raise WebhookResponseError("verify", f'expected response.uid="{uid}", got "{got_uid}"')
        api_version = review.get("apiVersion", "")
        kind = review.get("kind", "")
        if api_version != "admission.k8s.io/v1" or kind != "AdmissionReview":
            raise WebhookResponseError(
                "verify",
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
                f"got {api_version}, Kind={kind}",
            )
    elif response is None:
        raise WebhookResponseError("verify", "webhook response was absent")
    assert response is not None

    allowed = response.get("allowed", False)
    if not isinstance(allowed, bool):
        raise WebhookResponseError("decode", "response.allowed is not a boolean")
    status = response.get("status")
    if status is not None and not isinstance(status, dict):
        raise WebhookResponseError("decode", "response.status is not an object")
    patch = _decode_patch_field(response.get("patch"))
    raw_patch_type = response.get("patchType")
    if raw_patch_type is not None and not isinstance(raw_patch_type, str):
        raise WebhookResponseError("decode", "response.patchType is not a string")
    warnings = response.get("warnings") or []
    annotations = response.get("auditAnnotations") or {}
    if not isinstance(warnings, list) or not isinstance(annotations, dict):
        raise WebhookResponseError("decode", "response.warnings or auditAnnotations malformed")

    patch_type = ""
    if review_version != "v1":
        # NB: v1beta1 never checked patchType; a patch there is always a JSON patch, and a
        # validating webhook's patch is not even looked at.
        if not mutating or not patch:
            patch = None
        else:
            patch_type = "JSONPatch"
    elif mutating:
        if patch and raw_patch_type is None:
            raise WebhookResponseError(
                "verify", "webhook returned response.patch but not response.patchType"
            )
        if not patch and raw_patch_type is not None:
            raise WebhookResponseError(
                "verify", "webhook returned response.patchType but not response.patch"
            )
        if raw_patch_type is not None:
            if not raw_patch_type:
                raise WebhookResponseError(
                    "verify", 'webhook returned invalid response.patchType of ""'
                )
            patch_type = raw_patch_type
    else:
        if patch:
            raise WebhookResponseError("verify", "validating webhook may not return response.patch")
        if raw_patch_type is not None:
            raise WebhookResponseError(
                "verify", "validating webhook may not return response.patchType"
            )
    return ReviewResponse(
        allowed=allowed,
        status=status,
        patch=patch or None,
        patch_type=patch_type,
        warnings=[str(w) for w in warnings],
        audit_annotations={str(k): str(v) for k, v in annotations.items()},
    )


def _decode_patch_field(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebhookResponseError("decode", "response.patch is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise WebhookResponseError("decode", f"response.patch is not valid base64: {e}") from None


def denial_from_status(webhook_name: str, status: Mapping[str, Any] | None) -> AdmissionDenied:
    """A webhook's ``allowed: false`` as the real server reports it (webhook ToStatusErr)."""
    status = status or {}
    code = status.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code < 400:
        # NB: the real server forces rejections to >= 400 (kubernetes#77022), so a missing code
        # is 400, not 403, and kubectl never exits 0 on a denial.
        code = 400
    message = status.get("message") if isinstance(status.get("message"), str) else ""
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    denied_by = f'admission webhook "{webhook_name}" denied the request'
    if message:
        text = f"{denied_by}: {message}"
    elif reason:
        text = f"{denied_by}: {reason}"
    else:
        text = f"{denied_by} without explanation"
    return AdmissionDenied(code, str(reason), text)


# --- the chain -------------------------------------------------------------------------------


class AdmissionChain:
    """Calls the currently configured admission webhooks for each write.

    ``list_configs(plural)`` returns the stored configuration objects (plain dicts) for
    ``mutatingwebhookconfigurations`` or ``validatingwebhookconfigurations``.
    ``get_namespace_labels(name)`` returns a namespace's labels or ``None`` if it does not exist.
    ``resolve_service(namespace, name, port)`` maps a ``clientConfig.service`` to the base URL to
    connect to (``https://127.0.0.1:PORT``); TLS still verifies ``<name>.<namespace>.svc``.
    """

    def __init__(
        self,
        list_configs: ListConfigs,
        get_namespace_labels: GetNamespaceLabels | None = None,
        resolve_service: ResolveService | None = None,
    ) -> None:
        self._list_configs = list_configs
        self._get_namespace_labels = get_namespace_labels
        self._resolve_service = resolve_service
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._ssl_contexts: dict[str, ssl.SSLContext] = {}

    async def mutate(self, attrs: AdmissionAttributes) -> dict[str, Any] | None:
        """Run the mutating webhooks; return the object as patched (never modifies ``attrs``)."""
        if _is_exempt(attrs):
            return attrs.obj
        hooks = self._webhooks(MUTATING_CONFIGS, mutating=True)
        current = attrs.obj
        previously_invoked: set[str] = set()
        to_reinvoke: set[str] = set()
        reinvoke_round_needed = False
        for round_number in (0, 1):
            if round_number == 1 and not reinvoke_round_needed:
                break
            for hook in hooks:
                view = _with_object(attrs, current)
                if not self._should_call(hook, view):
                    continue
                # NB: like the real server, a reinvocation round only calls webhooks that asked
                # for it and ran before a later webhook changed the object.
                if round_number == 1 and hook.uid not in to_reinvoke:
                    continue
                try:
                    patched = await self._call_mutating(hook, view)
                except _CallingWebhookError as e:
                    if hook.ignores_failures:
                        _log.warning("failing open: %s", e)
                        if hook.reinvocable:
                            previously_invoked.add(hook.uid)
                        continue
                    raise _internal_error(str(e)) from None
                if patched is not None and not jsonpatch.json_equal(patched, current):
                    current = patched
                    to_reinvoke |= previously_invoked
                    previously_invoked.clear()
                    reinvoke_round_needed = True
                if hook.reinvocable:
                    previously_invoked.add(hook.uid)
        return current

    async def validate(self, attrs: AdmissionAttributes) -> None:
        """Run the validating webhooks concurrently; raise :class:`AdmissionDenied` on failure."""
        if _is_exempt(attrs):
            return
        hooks = [
            h
            for h in self._webhooks(VALIDATING_CONFIGS, mutating=False)
            if self._should_call(h, attrs)
        ]
        if not hooks:
            return
        outcomes = await asyncio.gather(*(self._validate_one(h, attrs) for h in hooks))
        # NB: the real server returns whichever failure arrives first; we take the first in
        # configuration order so the same request always fails the same way.
        for outcome in outcomes:
            if outcome is not None:
                raise outcome

    async def close(self) -> None:
        """Release the HTTP session; the chain opens a new one if used again."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # --- selection ---

    def _webhooks(self, plural: str, *, mutating: bool) -> list[_Webhook]:
        configs = [c for c in self._list_configs(plural) if isinstance(c, dict)]
        configs.sort(key=_config_name)
        hooks = []
        for config in configs:
            entries = config.get("webhooks") or []
            for index, spec in enumerate(entries if isinstance(entries, list) else []):
                if not isinstance(spec, dict):
                    continue
                name = str(spec.get("name", ""))
                uid = f"{_config_name(config)}/{index}/{name}"
                hooks.append(_Webhook(uid, _config_name(config), name, mutating, spec))
        return hooks

    def _should_call(self, hook: _Webhook, attrs: AdmissionAttributes) -> bool:
        """ShouldCallHook: selectors first, then rules; errors only for webhooks that match."""
        namespace_error: AdmissionDenied | None = None
        try:
            if not self._namespace_selector_matches(hook, attrs):
                return False
        except AdmissionDenied as e:
            namespace_error = e
        object_error: AdmissionDenied | None = None
        selector = hook.spec.get("objectSelector")
        try:
            if selector and not (
                _labels_match(selector, _object_labels(attrs.obj))
                or _labels_match(selector, _object_labels(attrs.old_obj))
            ):
                return False
        except _SelectorError as e:
            object_error = _internal_error(f"invalid objectSelector of webhook {hook.name}: {e}")
        rules = hook.spec.get("rules")
        if not isinstance(rules, list) or not any(
            isinstance(r, dict) and rule_matches(r, attrs) for r in rules
        ):
            return False
        if namespace_error is not None:
            raise namespace_error
        if object_error is not None:
            raise object_error
        if hook.spec.get("matchConditions"):
            if hook.ignores_failures:
                _log.warning("skipping webhook %s: matchConditions are not supported", hook.name)
                return False
            raise AdmissionDenied(
                403,
                "Forbidden",
                f'{_group_resource(attrs)} "{attrs.name}" is forbidden: webhook "{hook.name}" '
                "has matchConditions, which this API stand-in cannot evaluate (no CEL)",
            )
        return True

    def _namespace_selector_matches(self, hook: _Webhook, attrs: AdmissionAttributes) -> bool:
        namespace = _namespace_name(attrs)
        if not namespace and attrs.resource != "namespaces":
            return True  # NB: cluster-scoped objects are never exempted by a namespaceSelector.
        selector = hook.spec.get("namespaceSelector")
        if not selector:
            return True
        if (
            attrs.resource == "namespaces"
            and not attrs.subresource
            and attrs.operation in ("CREATE", "UPDATE")
        ):
            labels = _object_labels(attrs.obj) or {}
        elif self._get_namespace_labels is None:
            labels = {NAMESPACE_NAME_LABEL: namespace}
        else:
            found = self._get_namespace_labels(namespace)
            if found is None:
                raise AdmissionDenied(404, "NotFound", f'namespaces "{namespace}" not found')
            labels = found
        try:
            return selector_matches(selector, labels)
        except _SelectorError as e:
            raise _internal_error(f"invalid namespaceSelector of webhook {hook.name}: {e}") from e

    # --- calling ---

    async def _validate_one(
        self, hook: _Webhook, attrs: AdmissionAttributes
    ) -> AdmissionDenied | None:
        try:
            response = await self._call(hook, attrs)
        except _CallingWebhookError as e:
            if hook.ignores_failures:
                _log.warning("failing open: %s", e)
                return None
            return _internal_error(str(e))
        except AdmissionDenied as e:
            return e
        if response.allowed:
            return None
        return denial_from_status(hook.name, response.status)

    async def _call_mutating(
        self, hook: _Webhook, attrs: AdmissionAttributes
    ) -> dict[str, Any] | None:
        response = await self._call(hook, attrs)
        if not response.allowed:
            raise denial_from_status(hook.name, response.status)
        if not response.patch:
            return None
        try:
            operations = json.loads(response.patch)
        except (ValueError, UnicodeDecodeError) as e:
            raise _CallingWebhookError(
                hook.name, f"received undecodable patch in webhook response: {e}"
            ) from None
        if not isinstance(operations, list):
            raise _CallingWebhookError(
                hook.name, "received undecodable patch in webhook response: not a JSON array"
            )
        if not operations:
            return None
        if attrs.obj is None:
            raise _internal_error(
                f'admission webhook "{hook.name}" attempted to modify the object, '
                "which is not supported for this operation"
            )
        if response.patch_type != "JSONPatch":
            raise _CallingWebhookError(hook.name, f'unsupported patch type "{response.patch_type}"')
        try:
            patched = jsonpatch.apply_patch(attrs.obj, operations)
        except jsonpatch.JsonPatchError as e:
            raise _internal_error(
                f'admission webhook "{hook.name}" returned a patch that cannot be applied: {e}'
            ) from None
        if not isinstance(patched, dict):
            raise _internal_error(
                f'admission webhook "{hook.name}" patched the object into a non-object'
            )
        return patched

    async def _call(self, hook: _Webhook, attrs: AdmissionAttributes) -> ReviewResponse:
        """POST one AdmissionReview and return the checked response."""
        if attrs.dry_run:
            side_effects = hook.spec.get("sideEffects")
            if side_effects is None:
                raise _CallingWebhookError(hook.name, "Webhook SideEffects is nil")
            if side_effects not in ("None", "NoneOnDryRun"):
                raise AdmissionDenied(
                    400,
                    "BadRequest",
                    f'admission webhook "{hook.name}" does not support dry run',
                )
        review_version = _pick_review_version(hook.spec.get("admissionReviewVersions"))
        if review_version is None:
            raise _CallingWebhookError(
                hook.name,
                "could not create admission objects: webhook does not accept known "
                "AdmissionReview versions (v1, v1beta1)",
            )
        uid = str(uuid.uuid4())
        body = build_admission_review(attrs, uid=uid, review_version=review_version)
        endpoint = self._endpoint(hook)
        timeout = hook.timeout_seconds
        # NB: the Go client tells the webhook its budget as ?timeout=<whole seconds>s.
        query = f"?timeout={math.ceil(timeout)}s"
        url = endpoint.shown_url + query
        session = self._get_session()
        try:
            async with session.post(
                endpoint.connect_url + query,
                data=json.dumps(body).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    **({"Host": endpoint.host_header} if endpoint.host_header else {}),
                },
                ssl=endpoint.ssl_context,
                server_hostname=endpoint.server_hostname,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as http_response:
                payload = await http_response.read()
                status = http_response.status
        except TimeoutError:
            raise _CallingWebhookError(
                hook.name, f'failed to call webhook: Post "{url}": context deadline exceeded'
            ) from None
        except aiohttp.ClientConnectorCertificateError as e:
            cause = e.certificate_error
            why = getattr(cause, "verify_message", None) or str(cause)
            raise _CallingWebhookError(
                hook.name,
                f'failed to call webhook: Post "{url}": tls: failed to verify certificate: {why}',
            ) from None
        except aiohttp.ClientError as e:
            raise _CallingWebhookError(
                hook.name, f'failed to call webhook: Post "{url}": {e}'
            ) from None
        if not 200 <= status < 300:
            raise _CallingWebhookError(
                hook.name, f"failed to call webhook: {_http_error_text(status, payload)}"
            )
        try:
            response = parse_review_response(
                payload, uid=uid, review_version=review_version, mutating=hook.mutating
            )
        except WebhookResponseError as e:
            prefix = (
                "failed to call webhook"
                if e.stage == "decode"
                else "received invalid webhook response"
            )
            raise _CallingWebhookError(hook.name, f"{prefix}: {e}") from None
        for warning in response.warnings:
            _log.warning("webhook %s warns: %s", hook.name, warning)
        return response

    def _endpoint(self, hook: _Webhook) -> _Endpoint:
        client_config = hook.spec.get("clientConfig")
        if not isinstance(client_config, dict):
            raise _CallingWebhookError(
                hook.name, "could not get REST client: webhook has no clientConfig"
            )
        ssl_context = self._ssl_context(hook, client_config.get("caBundle"))
        service = client_config.get("service")
        if isinstance(service, dict):
            namespace = str(service.get("namespace", ""))
            name = str(service.get("name", ""))
            port = service.get("port") or 443
            path = str(service.get("path") or "")
            server_name = f"{name}.{namespace}.svc"
            url = f"https://{server_name}:{port}{path}"
            if self._resolve_service is None:
                return _Endpoint(url, url, ssl_context, None, None)
            try:
                base = self._resolve_service(namespace, name, int(port)).rstrip("/")
            except Exception as e:
                raise _CallingWebhookError(
                    hook.name, f"failed to call webhook: cannot resolve service {server_name}: {e}"
                ) from None
            return _Endpoint(url, base + path, ssl_context, server_name, f"{server_name}:{port}")
        raw_url = client_config.get("url")
        if not isinstance(raw_url, str) or not raw_url:
            raise _CallingWebhookError(
                hook.name, "webhook configuration must have either service or URL"
            )
        scheme, sep, rest = raw_url.partition("://")
        if not sep or scheme.lower() != "https" or not rest or rest.startswith("/"):
            raise _CallingWebhookError(hook.name, f'Unparsable URL: "{raw_url}" is not https://')
        return _Endpoint(raw_url, raw_url, ssl_context, None, None)

    def _ssl_context(self, hook: _Webhook, ca_bundle: Any) -> ssl.SSLContext:
        key = ca_bundle if isinstance(ca_bundle, str) else ""
        cached = self._ssl_contexts.get(key)
        if cached is not None:
            return cached
        if not key:
            # NB: with no caBundle the real server trusts the system roots, so do we.
            context = ssl.create_default_context()
        else:
            try:
                pem = base64.b64decode(key, validate=True).decode("ascii")
                context = ssl.create_default_context(cadata=pem)
            except (binascii.Error, ValueError, ssl.SSLError) as e:
                raise _CallingWebhookError(
                    hook.name, f"could not get REST client: caBundle is not base64 PEM: {e}"
                ) from None
        self._ssl_contexts[key] = context
        return context

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # NB: a session belongs to the loop it was made on; the server may recreate its loop.
            self._session = aiohttp.ClientSession()
            self._session_loop = loop
        return self._session


@dataclass(frozen=True)
class _Endpoint:
    shown_url: str  # what the real server would POST to, as its errors show it
    connect_url: str  # where we actually connect (differs for a resolved service)
    ssl_context: ssl.SSLContext
    server_hostname: str | None  # TLS name to verify when it differs from the connected host
    host_header: str | None


def _pick_review_version(versions: Any) -> str | None:
    if not isinstance(versions, list):
        return None
    for version in versions:
        if version in _SUPPORTED_REVIEW_VERSIONS:
            return str(version)
    return None


def _http_error_text(status: int, payload: bytes) -> str:
    try:
        decoded = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status" and decoded.get("message"):
        return str(decoded["message"])
    text = payload[:200].decode("utf-8", "replace").strip()
    return f'the server responded with HTTP {status} ("{text}")'


def _labels_match(selector: Mapping[str, Any], labels: dict[str, str] | None) -> bool:
    return labels is not None and selector_matches(selector, labels)


def _config_name(config: Mapping[str, Any]) -> str:
    metadata = config.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _is_exempt(attrs: AdmissionAttributes) -> bool:
    return attrs.group == "admissionregistration.k8s.io" and attrs.kind in _EXEMPT_KINDS


def _with_object(attrs: AdmissionAttributes, obj: dict[str, Any] | None) -> AdmissionAttributes:
    return attrs if obj is attrs.obj else dataclasses.replace(attrs, obj=obj)
