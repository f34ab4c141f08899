"""The unit tests' one in-memory ``KubeApi``: a small API server in a dict.

It keeps what a client of the real server can observe: objects by kind, namespace and name; one
cluster-wide resourceVersion counter stamped on every write; uids; optimistic concurrency (409
``Conflict`` on a stale write or failed delete precondition, 409 ``AlreadyExists`` on a duplicate
create); label and field selectors; the three patch formats; and an event log that a watch
replays from a resourceVersion and then follows live, with BOOKMARKs, its server-side timeout,
410 ``Gone`` from before a compaction, and ``cancel()`` waking a blocked reader. It raises the
``common.io.kube`` errors an adapter would. Selectors and patches are the API stand-in's own
pure functions (``tests/kubeapi``), so this fake and the server the e2e tests use cannot
disagree on them.

What a real client could not do is for the tests to drive: ``put``/``remove`` objects behind the
code's back, hold watch delivery, compact the history, end open watches, stop serving a kind
(404, as when its CRD is missing), take the API ``down``, script failures per verb
(``fail_next``), lose replace races (``conflicts_to_inject``) and forbid verbs a component must
never call. Every call is recorded in ``calls`` and every watch's parameters in ``watches``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from common.io.kube import (
    DEFAULT_PAGE_SIZE,
    AlreadyExists,
    BadRequest,
    Conflict,
    Gone,
    Invalid,
    JsonObject,
    KubeApi,
    KubeApiError,
    KubeUnavailable,
    NotFound,
    PatchType,
)
from common.io.watch import EventStream, WatchEvent, WatchStream
from common.model.resources import Resource
from tests.kubeapi.patches import (
    PatchApplyError,
    PatchFormatError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from tests.kubeapi.resources import BUILTINS, META_FIELDS
from tests.kubeapi.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

ObjectKey: TypeAlias = tuple[str, str, str]
"""``(plural, namespace or "", name)``; the namespace is "" for cluster-scoped kinds."""
Matcher: TypeAlias = Callable[[JsonObject], bool]

WRITE_VERBS = frozenset({"create", "replace", "patch", "delete"})
WAIT_S = 10.0  # NB: an upper bound for a hung test only; nothing asserts on speed.
_FIELD_SELECTORS = {(r.group, r.plural): r.supported_field_selectors for r in BUILTINS}


def _is_custom(resource: Resource) -> bool:
    return (resource.group, resource.plural) not in _FIELD_SELECTORS


class KubeCall(NamedTuple):
    verb: str
    plural: str
    namespace: str
    name: str


@dataclass(frozen=True)
class WatchRequest:
    plural: str
    namespace: str | None
    resource_version: str | None
    label_selector: str | None
    field_selector: str | None
    timeout_s: int | None
    allow_bookmarks: bool


@dataclass(frozen=True)
class _Change:
    """One entry of the event log; ``before`` is None for ADDED and BOOKMARK."""

    rv: int
    plural: str
    event_type: str
    obj: JsonObject
    before: JsonObject | None


@dataclass
class _OpenWatch:
    request: WatchRequest
    cursor: int
    """Where in the event log this watch reads next."""
    expired: Gone | None = None
    end_at: int | None = None
    """Set when the server ends the watch: it delivers the log up to there, then ends."""
    cut: bool = False
    next_bookmark: float = math.inf


def _key(resource: Resource, namespace: str | None, name: str) -> ObjectKey:
    return (resource.plural, (namespace or "") if resource.namespaced else "", name)


def _matcher(resource: Resource, label_selector: str | None, field_selector: str | None) -> Matcher:
    fields = _FIELD_SELECTORS.get((resource.group, resource.plural), META_FIELDS)
    try:
        labels = parse_label_selector(label_selector or "")
        wanted = parse_field_selector(field_selector or "", fields, custom=_is_custom(resource))
    except SelectorError as error:
        raise BadRequest(400, "BadRequest", str(error)) from error
    return lambda obj: (
        labels_match(labels, obj["metadata"].get("labels")) and fields_match(wanted, obj)
    )


def _patched(
    resource: Resource,
    current: JsonObject,
    patch: JsonObject | Sequence[JsonObject],
    patch_type: PatchType,
) -> JsonObject:
    if (patch_type == "json") == isinstance(patch, Mapping):
        raise TypeError(f"{patch_type} patch of the wrong shape: {patch!r}")
    try:
        if patch_type == "json":
            result = json_patch(current, list(patch))
        elif patch_type == "merge":
            result = merge_patch(current, patch)
        elif _is_custom(resource):
            raise KubeApiError(
                415, "UnsupportedMediaType", "strategic merge patch is not supported for CRs"
            )
        else:
            result = strategic_merge_patch(current, patch)
    except PatchFormatError as error:
        raise BadRequest(400, "BadRequest", str(error)) from error
    except PatchApplyError as error:
        raise Invalid(422, "Invalid", str(error)) from error
    if not isinstance(result, dict):
        raise BadRequest(400, "BadRequest", "the patch result is not a JSON object")
    return result


def _modified(resource: Resource, name: str) -> Conflict:
    return Conflict(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.plural} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _not_found(resource: Resource, name: str) -> NotFound:
    return NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')


class FakeKube:
    """``KubeApi`` over a dict, thread-safe; see the module docstring for the test controls.

    ``forbidden`` maps verbs the code under test must never call to why: calling one is an
    ``AssertionError`` (a CNI that never watches, an informer that never writes).
    """

    def __init__(self, *, forbidden: Mapping[str, str] | None = None) -> None:
        self.objects: dict[ObjectKey, JsonObject] = {}
        self.rv = 0
        self.calls: list[KubeCall] = []
        self.watches: list[WatchRequest] = []
        self.forbidden = dict(forbidden or {})
        #: Every call fails with ``KubeUnavailable`` while set.
        self.down = False
        #: How many replaces lose a race: another writer moves the object on first, then 409.
        self.conflicts_to_inject = 0
        #: A quiet watch that asked for bookmarks gets one this often (None: only on request).
        self.bookmark_interval_s: float | None = None
        #: Guards everything; notified on every call and change, so tests can ``wait_for``.
        self.cond = threading.Condition()
        self._failures: dict[str, list[Exception]] = {}
        self._unserved: set[str] = set()
        self._log: list[_Change] = []
        self._compacted_rv = 0
        self._open: list[_OpenWatch] = []
        self._held = False

    # ---- test controls

    def put(self, resource: Resource, obj: JsonObject) -> JsonObject:
        """Store ``obj`` as another client's write would (whatever its resourceVersion)."""
        stored = copy.deepcopy(obj)
        metadata = stored.setdefault("metadata", {})
        stored.setdefault("apiVersion", resource.api_version)
        stored.setdefault("kind", resource.kind)
        with self.cond:
            key = _key(resource, metadata.get("namespace"), metadata["name"])
            current = self.objects.get(key)
            if "uid" not in metadata:
                metadata["uid"] = (current or {}).get("metadata", {}).get("uid") or self._uid()
            return self._write(resource, key, stored, current)

    def remove(self, resource: Resource, namespace: str | None, name: str) -> JsonObject:
        """Delete an object as another client would; KeyError if there is none."""
        with self.cond:
            return self._delete(resource, _key(resource, namespace, name))

    def of(self, resource: Resource) -> list[JsonObject]:
        """Copies of every stored object of one kind, oldest first."""
        with self.cond:
            return [copy.deepcopy(o) for k, o in self.objects.items() if k[0] == resource.plural]

    def writes(self, verb: str | None = None, plural: str | None = None) -> list[KubeCall]:
        return [
            call
            for call in self.calls
            if call.verb in WRITE_VERBS
            and (verb is None or call.verb == verb)
            and (plural is None or call.plural == plural)
        ]

    def count(self, verb: str) -> int:
        return sum(1 for call in self.calls if call.verb == verb)

    def fail_next(self, verb: str, *errors: Exception) -> None:
        """The next calls of ``verb`` raise ``errors``, one each, in order."""
        with self.cond:
            self._failures.setdefault(verb, []).extend(errors)

    def unserve(self, resource: Resource) -> None:
        """Answer 404 for the kind from now on (its CRD is gone) and end its open watches."""
        with self.cond:
            self._unserved.add(resource.plural)
            self._end_watches(resource.plural)

    def serve(self, resource: Resource) -> None:
        with self.cond:
            self._unserved.discard(resource.plural)

    def compact(self) -> None:
        """Forget the history so far: a watch from an older resourceVersion gets 410 Gone."""
        with self.cond:
            self._compacted_rv = self.rv

    def end_watches(self) -> None:
        """End every open watch cleanly, as its server-side timeout would."""
        with self.cond:
            self._end_watches(None)

    def send_bookmarks(self) -> None:
        """A BOOKMARK at the current resourceVersion to every watch that asked for them."""
        with self.cond:
            bookmark = {"metadata": {"resourceVersion": str(self.rv)}}
            self._append(_Change(self.rv, "", "BOOKMARK", bookmark, None))

    @contextlib.contextmanager
    def watches_held(self) -> Iterator[None]:
        """Open watches deliver nothing inside the block (they lag), then catch up; one ended
        inside the block ends without delivering what it lagged behind on."""
        with self.cond:
            self._held = True
        try:
            yield
        finally:
            with self.cond:
                self._held = False
                self.cond.notify_all()

    @property
    def open_watches(self) -> int:
        with self.cond:
            return len(self._open)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout_s)

    # ---- KubeApi

    def get(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        with self.cond:
            self._enter("get", resource, namespace, name)
            found = self.objects.get(_key(resource, namespace, name))
            if found is None or subresource not in (None, "status"):
                raise _not_found(resource, name)
            return copy.deepcopy(found)

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> JsonObject:
        with self.cond:
            self._enter("list", resource, namespace, "")
            matches = _matcher(resource, label_selector, field_selector)
            return {
                "apiVersion": resource.api_version,
                "kind": f"{resource.kind}List",
                "metadata": {"resourceVersion": str(self.rv)},
                "items": [copy.deepcopy(o) for o in self._listing(resource, namespace, matches)],
            }

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject:
        stored = copy.deepcopy(body)
        metadata = stored.setdefault("metadata", {})
        name = str(metadata.get("name") or "")
        stored.setdefault("apiVersion", resource.api_version)
        stored.setdefault("kind", resource.kind)
        with self.cond:
            self._enter("create", resource, namespace, name)
            if not name:
                raise Invalid(422, "Invalid", "metadata.name: Required value: name is required")
            if resource.namespaced:
                if not namespace or metadata.get("namespace") not in (None, "", namespace):
                    raise BadRequest(
                        400, "BadRequest", "the namespace of the object does not match the request"
                    )
                metadata["namespace"] = namespace
            key = _key(resource, namespace, name)
            if key in self.objects:
                raise AlreadyExists(
                    409, "AlreadyExists", f'{resource.plural} "{name}" already exists'
                )
            metadata["uid"] = self._uid()
            return self._write(resource, key, stored, None)

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        with self.cond:
            self._enter("replace", resource, namespace, name)
            key = _key(resource, namespace, name)
            current = self.objects.get(key)
            if current is None or subresource not in (None, "status"):
                raise _not_found(resource, name)
            if self.conflicts_to_inject > 0:
                self.conflicts_to_inject -= 1
                self._write(resource, key, copy.deepcopy(current), current)
                raise _modified(resource, name)
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"].get("resourceVersion"):
                raise _modified(resource, name)
            if subresource == "status":
                stored = {**copy.deepcopy(current), "status": copy.deepcopy(body.get("status"))}
            else:
                stored = copy.deepcopy(body)
            return self._write(resource, key, self._same_identity(stored, current, name), current)

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
        with self.cond:
            self._enter("patch", resource, namespace, name)
            key = _key(resource, namespace, name)
            current = self.objects.get(key)
            if current is None or subresource not in (None, "status"):
                raise _not_found(resource, name)
            patched = _patched(resource, current, patch, patch_type)
            rv = (patched.get("metadata") or {}).get("resourceVersion")
            if rv != current["metadata"].get("resourceVersion"):
                raise _modified(resource, name)
            return self._write(resource, key, self._same_identity(patched, current, name), current)

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
        with self.cond:
            self._enter("delete", resource, namespace, name)
            key = _key(resource, namespace, name)
            current = self.objects.get(key)
            if current is None:
                raise _not_found(resource, name)
            metadata = current["metadata"]
            for field, wanted in (("uid", uid), ("resourceVersion", resource_version)):
                if wanted is not None and metadata.get(field) != wanted:
                    raise Conflict(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {resource.plural} "{name}": '
                        f"Precondition failed: {field} in precondition: {wanted}, "
                        f"{field} in object meta: {metadata.get(field)}",
                    )
            return self._delete(resource, key)

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
        """Replay the changes after ``resource_version`` (None or "0": an ADDED for every
        matching object, then what follows), then follow live changes."""
        request = WatchRequest(
            resource.plural,
            namespace if resource.namespaced else None,
            resource_version,
            label_selector,
            field_selector,
            timeout_s,
            allow_bookmarks,
        )
        with self.cond:
            self._enter("watch", resource, namespace, "")
            self.watches.append(request)
            matches = _matcher(resource, label_selector, field_selector)
            opened = _OpenWatch(request, cursor=len(self._log))
            initial: Sequence[WatchEvent] = ()
            if resource_version in (None, "", "0"):
                listing = self._listing(resource, namespace, matches)
                initial = [("ADDED", copy.deepcopy(o)) for o in listing]
            elif not resource_version.isdigit():
                raise BadRequest(400, "BadRequest", f"invalid resourceVersion {resource_version}")
            elif int(resource_version) < self._compacted_rv:
                # NB: the server answers 200 and sends the 410 as the first event.
                opened.expired = Gone(
                    410, "Expired", f"too old resource version: {resource_version}"
                )
            else:
                since = int(resource_version)
                opened.cursor = next(
                    (at for at, change in enumerate(self._log) if change.rv > since), opened.cursor
                )
            self._open.append(opened)
            self.cond.notify_all()
        return EventStream(
            self._follow(resource, opened, matches, initial),
            interrupt=lambda: self._cut(opened),
            release=lambda: self._close_watch(opened),
        )

    # ---- inside (every method below runs with ``cond`` held, or takes it)

    def _enter(self, verb: str, resource: Resource, namespace: str | None, name: str) -> None:
        """Record a call, then raise whatever the test arranged for it."""
        self.calls.append(KubeCall(verb, resource.plural, _key(resource, namespace, "")[1], name))
        self.cond.notify_all()
        if verb in self.forbidden:
            raise AssertionError(f"unexpected {verb} of {resource.plural}: {self.forbidden[verb]}")
        if self.down:
            raise KubeUnavailable(f"{verb} {resource.plural} {name}: connection refused")
        if self._failures.get(verb):
            raise self._failures[verb].pop(0)
        if resource.plural in self._unserved:
            raise NotFound(404, "NotFound", "the server could not find the requested resource")

    def _uid(self) -> str:
        return f"uid-{self.rv + 1}"

    def _listing(
        self, resource: Resource, namespace: str | None, matches: Matcher
    ) -> Sequence[JsonObject]:
        return [
            obj
            for (plural, ns, _), obj in sorted(self.objects.items())
            if plural == resource.plural
            and (namespace is None or not resource.namespaced or ns == namespace)
            and matches(obj)
        ]

    @staticmethod
    def _same_identity(stored: JsonObject, current: JsonObject, name: str) -> JsonObject:
        """What an update may not change: name, namespace, uid, apiVersion and kind."""
        metadata = stored.setdefault("metadata", {})
        if metadata.get("name", name) != name:
            raise BadRequest(400, "BadRequest", "metadata.name: the name cannot change")
        metadata["name"] = name
        for field in ("namespace", "uid"):
            if field in current["metadata"]:
                metadata[field] = current["metadata"][field]
        for field in ("apiVersion", "kind"):
            if field in current:
                stored[field] = current[field]
        return stored

    def _write(
        self, resource: Resource, key: ObjectKey, stored: JsonObject, before: JsonObject | None
    ) -> JsonObject:
        self.rv += 1
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = stored
        event_type = "ADDED" if before is None else "MODIFIED"
        self._append(
            _Change(
                self.rv,
                resource.plural,
                event_type,
                copy.deepcopy(stored),
                copy.deepcopy(before),
            )
        )
        return copy.deepcopy(stored)

    def _delete(self, resource: Resource, key: ObjectKey) -> JsonObject:
        gone = self.objects.pop(key)
        self.rv += 1
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._append(_Change(self.rv, resource.plural, "DELETED", gone, copy.deepcopy(gone)))
        return copy.deepcopy(gone)

    def _append(self, change: _Change) -> None:
        self._log.append(change)
        self.cond.notify_all()

    def _end_watches(self, plural: str | None) -> None:
        for opened in self._open:
            if plural is None or opened.request.plural == plural:
                # NB: what was sent before the end still arrives, unless the watch is held back.
                opened.end_at = opened.cursor if self._held else len(self._log)
        self.cond.notify_all()

    def _cut(self, opened: _OpenWatch) -> None:
        with self.cond:
            opened.cut = True
            self.cond.notify_all()

    def _close_watch(self, opened: _OpenWatch) -> None:
        with self.cond:
            self._open.remove(opened)
            self.cond.notify_all()

    def _seen_as(self, change: _Change, opened: _OpenWatch, matches: Matcher) -> WatchEvent | None:
        """The event ``change`` is for one watch, or None when the watch does not see it.

        NB: with a selector, an object that starts (stops) matching is ADDED (DELETED).
        """
        request = opened.request
        if change.event_type == "BOOKMARK":
            return ("BOOKMARK", copy.deepcopy(change.obj)) if request.allow_bookmarks else None
        namespace = change.obj["metadata"].get("namespace")
        if change.plural != request.plural or request.namespace not in (None, namespace):
            return None
        now = change.event_type != "DELETED" and matches(change.obj)
        before = change.before is not None and matches(change.before)
        if now:
            return ("MODIFIED" if before else "ADDED", copy.deepcopy(change.obj))
        return ("DELETED", copy.deepcopy(change.obj)) if before else None

    def _follow(
        self,
        resource: Resource,
        opened: _OpenWatch,
        matches: Matcher,
        initial: Sequence[WatchEvent],
    ) -> Generator[WatchEvent, None, None]:
        if opened.expired is not None:
            raise opened.expired
        yield from initial
        timeout_s = opened.request.timeout_s
        deadline = time.monotonic() + (math.inf if timeout_s is None else timeout_s)
        while True:
            with self.cond:
                event = self._next_event(resource, opened, matches, deadline)
            if event is None:
                return
            yield event

    def _next_event(
        self, resource: Resource, opened: _OpenWatch, matches: Matcher, deadline: float
    ) -> WatchEvent | None:
        """Wait for the next event this watch sees; None when the watch ends."""
        interval_s = self.bookmark_interval_s if opened.request.allow_bookmarks else None
        while True:
            if opened.cut:
                raise KubeUnavailable(f"watch {resource.plural} broke off: connection shut down")
            limit = len(self._log) if opened.end_at is None else opened.end_at
            while not self._held and opened.cursor < limit:
                change = self._log[opened.cursor]
                opened.cursor += 1
                event = self._seen_as(change, opened, matches)
                if event is not None:
                    opened.next_bookmark = math.inf
                    return event
            now = time.monotonic()
            if opened.end_at is not None or now >= deadline:
                return None
            if not self._held:
                if interval_s is not None and math.isinf(opened.next_bookmark):
                    opened.next_bookmark = now + interval_s
                if now >= opened.next_bookmark:
                    opened.next_bookmark = math.inf
                    return ("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv)}})
            wait_s = min(deadline, opened.next_bookmark) - now
            self.cond.wait(None if math.isinf(wait_s) else wait_s)


_check: KubeApi = FakeKube()
