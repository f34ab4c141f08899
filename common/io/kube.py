"""The one door to the Kubernetes API: a thin adapter over the official client, plus retry.

Why it exists: callers (IPAM, the watchers, the webhook's lookups) need get/list/watch/create/
replace/patch/delete on both core and DANM custom kinds, as plain JSON dicts, with errors they can
``except`` on without knowing which HTTP library sits underneath. The official client's generated
models are slow to deserialise and differ between core and custom kinds, so ``KubernetesApi``
sends raw REST requests through ``ApiClient.call_api`` (which keeps the client's auth, TLS and
kubeconfig handling) and parses the JSON itself. ``import kubernetes`` happens only when a
``KubernetesApi`` is constructed: the CNI binary imports this module's types but must not pay the
client's import cost on every pod start. What a verb sends and how its answer reads is
``RestVerbs``, shared with the CNI path's ``common.io.kube_lean.LeanKubeApi``; each adapter adds
only its transport and its ``watch``.

Error vocabulary (every error is raised ``from`` the library error that caused it)::

    KubeError                      anything that went wrong talking to the API
    ├── KubeUnavailable            no HTTP answer: connection refused/reset, TLS, timeout   RETRY
    ├── RetryDeadlineExceeded      update_with_retry gave up after repeated conflicts       fatal
    └── KubeApiError               the server answered with a status >= 400 (.status, .reason,
        │                          .message, .details from the Status body)
        ├── BadRequest        400  malformed request (our bug)                                fatal
        ├── Unauthorized      401  credentials missing/expired                                fatal
        ├── Forbidden         403  RBAC says no                                               fatal
        ├── NotFound          404  object, namespace or kind does not exist                   fatal
        ├── AlreadyExists     409  create of a name that exists (reason AlreadyExists)        fatal
        ├── Conflict          409  stale resourceVersion on write (reason Conflict)  RE-READ + RETRY
        ├── Gone              410  resourceVersion too old for watch/list continue    RELIST
        ├── Invalid           422  object failed validation or admission                      fatal
        ├── TooManyRequests   429  API priority & fairness throttling                         RETRY
        └── ServerError       5xx  apiserver/etcd trouble, webhook timeouts                   RETRY

"RETRY" errors carry ``retryable = True`` (see ``is_retryable``): the same request may succeed
later, so callers with a deadline may back off and repeat it. ``Conflict`` is not blindly
retryable (repeating the same write fails again); ``update_with_retry`` handles it by re-reading.
``Gone`` means "start a fresh list", which only the caller's watch loop can do.
"""

from __future__ import annotations

import json
import random
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, ClassVar, Literal, Protocol, Self, TypeAlias
from urllib.parse import urlencode

from common.io.watch import EventStream
from common.io.watch import WatchEvent as WatchEvent
from common.io.watch import WatchStream as WatchStream
from common.model import copy_json
from common.model.resources import Resource

JsonObject: TypeAlias = dict[str, Any]
PatchType: TypeAlias = Literal["merge", "json", "strategic"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

#: Longest slice of a non-Status error body we copy into messages (kopf does the same).
TEXT_ERROR_MAX_SIZE = 256
DEFAULT_PAGE_SIZE = 500


# --------------------------------------------------------------------------------------------
# Errors


class KubeError(Exception):
    """Base of every error this adapter raises."""

    retryable: ClassVar[bool] = False


class KubeUnavailable(KubeError):
    """The API server could not be reached or did not answer in time."""

    retryable: ClassVar[bool] = True


class KubeApiError(KubeError):
    """The API server answered with an error status."""

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"{status} {reason}: {message}" if reason else f"{status}: {message}")


class BadRequest(KubeApiError):
    pass


class Unauthorized(KubeApiError):
    pass


class Forbidden(KubeApiError):
    pass


class NotFound(KubeApiError):
    pass


class AlreadyExists(KubeApiError):
    pass


class Conflict(KubeApiError):
    pass


class Gone(KubeApiError):
    """The requested resourceVersion is too old (watch or list continue token expired)."""


class Invalid(KubeApiError):
    pass


class TooManyRequests(KubeApiError):
    retryable: ClassVar[bool] = True


class ServerError(KubeApiError):
    retryable: ClassVar[bool] = True


class RetryDeadlineExceeded(KubeError):
    """``update_with_retry`` kept losing the optimistic-concurrency race until its deadline."""

    def __init__(self, what: str, attempts: int, deadline_s: float) -> None:
        self.what = what
        self.attempts = attempts
        self.deadline_s = deadline_s
        super().__init__(
            f"gave up updating {what} after {attempts} attempts in {deadline_s:g} s: "
            "every write hit a 409 Conflict (another writer kept changing it)"
        )


def is_retryable(error: BaseException) -> bool:
    """True if repeating the same request later may succeed (see the tree in the docstring)."""
    return isinstance(error, KubeError) and error.retryable


_BY_STATUS: dict[int, type[KubeApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def _truncate(text: str) -> str:
    if len(text) <= TEXT_ERROR_MAX_SIZE:
        return text
    return text[:TEXT_ERROR_MAX_SIZE] + f"... ({len(text)} chars)"


def error_from_status(status: int, body: bytes | str | Mapping[str, Any] | None) -> KubeApiError:
    """Build the right ``KubeApiError`` subclass from an HTTP status and the response body.

    ``body`` is normally a ``Status`` object; anything else (HTML from a proxy, plain text) is
    truncated into ``message`` so a misbehaving middlebox cannot flood the logs.
    """
    parsed: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    reason, message, details = "", "", {}
    if isinstance(parsed, Mapping) and parsed.get("kind") == "Status":
        reason = str(parsed.get("reason") or "")
        message = str(parsed.get("message") or "")
        raw_details = parsed.get("details")
        details = dict(raw_details) if isinstance(raw_details, Mapping) else {}
        status = int(parsed.get("code") or status)
    elif isinstance(parsed, str):
        message = _truncate(parsed.strip())
    elif parsed is not None:
        message = _truncate(json.dumps(parsed))
    cls: type[KubeApiError]
    if status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, KubeApiError)
    return cls(status, reason, message, details)


# --------------------------------------------------------------------------------------------
# The interface


class KubeApi(Protocol):
    """What callers need from the API server; ``KubernetesApi`` is the real one.

    ``namespace`` is ignored-by-contract for cluster-scoped kinds (pass ``None``); for list and
    watch on a namespaced kind, ``None`` means all namespaces. Objects are JSON dicts exactly as
    the server sent them.
    """

    def get(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
    ) -> JsonObject: ...

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> JsonObject: ...

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject: ...

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject: ...

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: JsonObject | Sequence[JsonObject],
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JsonObject: ...

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> JsonObject: ...

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_s: int | None = None,
        allow_bookmarks: bool = False,
    ) -> WatchStream: ...


def _ns(resource: Resource, namespace: str | None) -> str | None:
    return namespace if resource.namespaced else None


def _with_query(path: str, query: Sequence[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


# --------------------------------------------------------------------------------------------
# What both adapters send for every verb but watch, and how they read the answer


def parse_object(data: bytes) -> JsonObject:
    """The JSON object in the body of a 2xx answer; an empty body is ``{}``.

    Any other body means a misbehaving server or proxy: ``KubeApiError`` with reason
    ``BadResponse`` and the body truncated, as for error bodies.
    """
    try:
        parsed = json.loads(data) if data else {}
    except ValueError as exc:
        raise KubeApiError(200, "BadResponse", _truncate(data.decode("utf-8", "replace"))) from exc
    if not isinstance(parsed, dict):
        raise KubeApiError(200, "BadResponse", _truncate(json.dumps(parsed)))
    return parsed


def list_page_path(base: str, query: Sequence[tuple[str, str]], page_size: int, token: str) -> str:
    """The path of one page of a list; ``token`` is the previous page's continue token, or ""."""
    page_query = [*query, ("limit", str(page_size))]
    if token:
        page_query.append(("continue", token))
    return _with_query(base, page_query)


def watch_path(
    resource: Resource,
    namespace: str | None,
    *,
    resource_version: str | None,
    label_selector: str | None,
    field_selector: str | None,
    timeout_s: int | None,
    allow_bookmarks: bool,
) -> str:
    """The path of a watch request with the ``KubeApi.watch`` arguments as its query."""
    query = [("watch", "true"), *_selectors(label_selector, field_selector)]
    if resource_version is not None:
        query.append(("resourceVersion", resource_version))
    if timeout_s is not None:
        query.append(("timeoutSeconds", str(timeout_s)))
    if allow_bookmarks:
        query.append(("allowWatchBookmarks", "true"))
    return _with_query(resource.collection_path(_ns(resource, namespace)), query)


def parse_watch_line(line: bytes) -> WatchEvent | None:
    """One line of a watch stream as ``(type, object)``; None for a blank keep-alive line.

    An ERROR event raises its Status as our exception; an undecodable line raises BadResponse.
    """
    if not line.strip():
        return None
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise KubeApiError(200, "BadResponse", f"undecodable watch event: {exc}") from exc
    event_type = str(event.get("type", ""))
    obj = event.get("object") or {}
    if event_type == "ERROR":
        raise error_from_status(int(obj.get("code") or 500), obj)
    return event_type, obj


def continue_token(page: JsonObject) -> str:
    """The token that fetches the page after ``page``; "" when ``page`` is the last."""
    return str((page.get("metadata") or {}).get("continue") or "")


def merge_list_pages(resource: Resource, pages: Sequence[JsonObject]) -> JsonObject:
    """The pages of one list as the single ``*List`` dict an unpaged answer would be.

    Items get ``apiVersion``/``kind`` filled in, in place (the server omits them inside lists),
    so that callers can convert them like objects read one by one. ``metadata`` is the first
    page's without its paging fields: its ``resourceVersion`` is the snapshot a following watch
    should start from.
    """
    first = pages[0]
    items: list[JsonObject] = []
    for page in pages:
        for item in page.get("items") or ():
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
            items.append(item)
    metadata = dict(first.get("metadata") or {})
    metadata.pop("continue", None)
    metadata.pop("remainingItemCount", None)
    return {
        "apiVersion": first.get("apiVersion", resource.api_version),
        "kind": first.get("kind", f"{resource.kind}List"),
        "metadata": metadata,
        "items": items,
    }


def patch_body(patch: JsonObject | Sequence[JsonObject], patch_type: PatchType) -> Any:
    """The request body of a ``patch_type`` patch; TypeError if ``patch`` has the wrong shape.

    A JSON patch (RFC 6902) is a list of operations, the other two are a JSON object.
    """
    if (patch_type == "json") == isinstance(patch, Mapping):
        raise TypeError(
            f"{patch_type} patch needs a "
            + ("list of operations" if patch_type == "json" else "JSON object")
        )
    # NB: the official client rewrites json-patch to strategic-merge unless the body is a real
    # list; the lean client sends whatever it gets, so both get the same plain types.
    return list(patch) if patch_type == "json" else dict(patch)  # type: ignore[arg-type]


def delete_options(
    *,
    resource_version: str | None = None,
    uid: str | None = None,
    propagation_policy: str | None = None,
) -> JsonObject:
    """The ``DeleteOptions`` body: preconditions make deleting a changed or recreated object
    a ``Conflict`` instead of deleting something the caller never saw."""
    options: JsonObject = {"kind": "DeleteOptions", "apiVersion": "v1"}
    preconditions = {
        key: value
        for key, value in (("resourceVersion", resource_version), ("uid", uid))
        if value is not None
    }
    if preconditions:
        options["preconditions"] = preconditions
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    return options


def config_load_error(kubeconfig: str | PathLike[str] | None, cause: BaseException) -> KubeError:
    """What ``connect`` raises when the kubeconfig (None: the in-cluster config) is unusable."""
    source = "in-cluster service account" if kubeconfig is None else str(kubeconfig)
    return KubeError(f"cannot load Kubernetes client config from {source}: {cause}")


class RestVerbs(ABC):
    """Every ``KubeApi`` verb but ``watch``, as REST requests through one ``_request`` hook.

    Both adapters inherit it and add only their transport (``_request``, ``close``) and
    ``watch``, whose streaming is transport-specific. So the path, query and body each verb
    sends, and the paging of ``list``, are written once and the two cannot drift apart.
    """

    @abstractmethod
    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = "application/json"
    ) -> JsonObject:
        """Send one request and return :func:`parse_object` of its 2xx answer; raise an error
        of the tree in the module docstring for anything else."""

    @abstractmethod
    def close(self) -> None:
        """Close the adapter's connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def get(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        path = resource.object_path(_ns(resource, namespace), name, subresource)
        return self._request("GET", path)

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> JsonObject:
        """Every matching object over all ``continue`` pages, as one ``*List`` dict (see
        :func:`merge_list_pages`)."""
        base = resource.collection_path(_ns(resource, namespace))
        query = _selectors(label_selector, field_selector)
        pages = [self._request("GET", list_page_path(base, query, page_size, ""))]
        while token := continue_token(pages[-1]):
            pages.append(self._request("GET", list_page_path(base, query, page_size, token)))
        return merge_list_pages(resource, pages)

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject:
        path = resource.collection_path(_ns(resource, namespace))
        return self._request("POST", path, body=body)

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        """PUT ``body``; its ``metadata.resourceVersion`` makes the write conditional."""
        path = resource.object_path(_ns(resource, namespace), name, subresource)
        return self._request("PUT", path, body=body)

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: JsonObject | Sequence[JsonObject],
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JsonObject:
        """Apply a merge (RFC 7386), JSON (RFC 6902) or strategic-merge patch."""
        path = resource.object_path(_ns(resource, namespace), name, subresource)
        body = patch_body(patch, patch_type)
        return self._request("PATCH", path, body=body, content_type=PATCH_CONTENT_TYPES[patch_type])

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> JsonObject:
        """Delete, with the preconditions of :func:`delete_options`.

        Returns what the server answers: the object (possibly still terminating) or a Status.
        """
        path = resource.object_path(_ns(resource, namespace), name)
        options = delete_options(
            resource_version=resource_version, uid=uid, propagation_policy=propagation_policy
        )
        return self._request("DELETE", path, body=options)


# --------------------------------------------------------------------------------------------
# The real adapter


@dataclass
class KubernetesApi(RestVerbs):
    """``KubeApi`` over the official ``kubernetes`` client: its transport and ``watch`` (the
    other verbs are :class:`RestVerbs`').

    Build it with ``KubernetesApi.connect(kubeconfig_path)``, or ``KubernetesApi.connect()`` for
    the in-cluster service account. Thread-safe: the underlying urllib3 pool is.
    """

    api_client: Any
    request_timeout_s: float = 30.0
    _unavailable_errors: tuple[type[BaseException], ...] = field(default=(), repr=False)
    _api_exception: type[BaseException] = field(default=Exception, repr=False)

    @classmethod
    def connect(
        cls,
        kubeconfig: str | PathLike[str] | None = None,
        *,
        context: str | None = None,
        request_timeout_s: float = 30.0,
    ) -> KubernetesApi:
        """Load a kubeconfig file, or the in-cluster config when ``kubeconfig`` is None."""
        # NB: imported here, not at module top, so that the CNI path never loads the client.
        from kubernetes import client, config

        # NB: the client's annotations are partial; treat it as untyped at this edge.
        k8s_client: Any = client
        k8s_config: Any = config

        configuration = k8s_client.Configuration()
        try:
            if kubeconfig is None:
                k8s_config.load_incluster_config(client_configuration=configuration)
            else:
                k8s_config.load_kube_config(
                    config_file=str(kubeconfig),
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except k8s_config.ConfigException as exc:
            raise config_load_error(kubeconfig, exc) from exc
        return cls.from_api_client(
            k8s_client.ApiClient(configuration=configuration), request_timeout_s=request_timeout_s
        )

    @classmethod
    def from_api_client(cls, api_client: Any, *, request_timeout_s: float = 30.0) -> KubernetesApi:
        """Wrap an already configured ``kubernetes.client.ApiClient``."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        return cls(
            api_client=api_client,
            request_timeout_s=request_timeout_s,
            _unavailable_errors=(urllib3.exceptions.HTTPError, OSError),
            _api_exception=ApiException,
        )

    def close(self) -> None:
        """Close every pooled connection now."""
        # NB: urllib3 2's PoolManager.clear() (what ApiClient.close() calls) only forgets its
        # pools and leaves sockets to the garbage collector, so a response object kept alive
        # (say by an exception's traceback) would pin a connection open; close them outright.
        pools = self.api_client.rest_client.pool_manager.pools
        for key in pools.keys():
            pool = pools.get(key)
            if pool is not None:
                pool.close()
        self.api_client.close()

    # ---- transport

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float | None] | None = None,
    ) -> Any:
        """Send one request; return the still-unread urllib3 response for a 2xx status."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            _, url, headers, body, _ = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout if timeout is not None else self.request_timeout_s,
            )
        except self._unavailable_errors as exc:
            raise KubeUnavailable(f"{method} {path}: API server unreachable: {exc}") from exc
        except self._api_exception as exc:
            # NB: the client raises ApiException(status=0) for TLS failures: no HTTP answer.
            status = getattr(exc, "status", 0) or 0
            if not status:
                raise KubeUnavailable(f"{method} {path}: {exc}") from exc
            raise error_from_status(status, getattr(exc, "body", None)) from exc
        raw = response.response
        if response.status >= 400:
            try:
                data = raw.data
            finally:
                raw.release_conn()
            raise error_from_status(response.status, data)
        return raw

    def _request(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        raw = self._send(method, path, **kwargs)
        try:
            data = raw.data
        except self._unavailable_errors as exc:
            raise KubeUnavailable(f"{method} {path}: reading the answer failed: {exc}") from exc
        finally:
            raw.release_conn()
        return parse_object(data)

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_s: int | None = None,
        allow_bookmarks: bool = False,
    ) -> WatchStream:
        """Yield ``(type, object)`` until the server ends the watch (``timeout_s``), the caller
        stops iterating or cancels. An expired ``resource_version`` raises ``Gone``: relist, then
        re-watch.
        """
        path = watch_path(
            resource,
            namespace,
            resource_version=resource_version,
            label_selector=label_selector,
            field_selector=field_selector,
            timeout_s=timeout_s,
            allow_bookmarks=allow_bookmarks,
        )
        # NB: the read timeout must outlast the server-side one, or we would cut a healthy but
        # quiet watch; with no server timeout the stream is open-ended by design.
        read_timeout = None if timeout_s is None else timeout_s + self.request_timeout_s
        raw = self._send("GET", path, timeout=(self.request_timeout_s, read_timeout))
        return EventStream(
            self._watch_events(raw, path),
            interrupt=lambda: self._interrupt_response(raw),
            release=lambda: self._release_response(raw),
        )

    def _watch_events(self, raw: Any, path: str) -> Generator[WatchEvent, None, None]:
        try:
            for line in raw:
                event = parse_watch_line(line)
                if event is not None:
                    yield event
        except self._unavailable_errors as exc:
            raise KubeUnavailable(f"watch {path} broke off: {exc}") from exc

    @staticmethod
    def _interrupt_response(raw: Any) -> None:
        """Wake a thread blocked reading the urllib3 response ``raw``; from any other thread."""
        shutdown = getattr(raw, "shutdown", None)
        if callable(shutdown):
            shutdown()  # NB: urllib3 >= 2.3 documents this as the way to unblock a read.
            return
        # NB: older urllib3: shut the socket down ourselves; closing it would not wake a recv.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            raw.close()

    @staticmethod
    def _release_response(raw: Any) -> None:
        # NB: close, not release: a half-read stream must not go back into the pool.
        raw.close()
        raw.release_conn()


# --------------------------------------------------------------------------------------------
# Optimistic-concurrency update loop


def _describe(resource: Resource, namespace: str | None, name: str) -> str:
    where = f"{namespace}/{name}" if resource.namespaced and namespace else name
    return f"{resource.kind} {where}"


def update_with_retry(
    api: KubeApi,
    resource: Resource,
    namespace: str | None,
    name: str,
    mutate: Callable[[JsonObject], JsonObject | None],
    *,
    deadline_s: float = 30.0,
    initial_backoff_s: float = 0.01,
    max_backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> JsonObject:
    """Read → ``mutate`` → conditional replace, re-reading and retrying on 409 Conflict.

    ``mutate`` gets a private deep copy of the current object and returns the object to write,
    or ``None`` (or an equal object) for "nothing to change", in which case nothing is written
    and the current object is returned. It may run several times, so it must derive its answer
    from its argument only; it may raise to abort, and that exception propagates unchanged.

    Between attempts it sleeps a full-jitter exponential backoff (``initial_backoff_s`` doubling
    up to ``max_backoff_s``); when the next attempt would start after ``deadline_s`` it raises
    ``RetryDeadlineExceeded``. Errors other than Conflict (NotFound, Invalid, ...) propagate.
    """
    started = clock()
    attempts = 0
    while True:
        attempts += 1
        current = api.get(resource, namespace, name)
        desired = mutate(copy_json(current))
        if desired is None or desired == current:
            return current
        metadata = desired.setdefault("metadata", {})
        # NB: always write against the version we read, even if mutate dropped or changed it.
        metadata["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        try:
            return api.replace(resource, namespace, name, desired)
        except Conflict as conflict:
            ceiling = min(max_backoff_s, initial_backoff_s * 2.0 ** min(attempts - 1, 64))
            pause = ceiling * jitter()
            if clock() + pause - started > deadline_s:
                raise RetryDeadlineExceeded(
                    _describe(resource, namespace, name), attempts, deadline_s
                ) from conflict
            sleep(pause)
