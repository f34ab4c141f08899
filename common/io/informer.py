"""A list-then-watch cache of one resource that tells handlers what changed (client-go style).

Why it exists: netwatcher and svcwatcher must act on every DanmNet, DanmEp, Pod and Service
change without missing one across API restarts, expired watches or a CRD that is installed after
the controller started. A bare watch loses deletes that happen while it is down; this keeps a
cache and, on every (re)list, emits the difference between the cache and the server's answer, so
handlers see a DELETED for an object removed while nobody was looking.

The loop (on one daemon thread per informer):

* list → diff against the cache → emit ADDED / MODIFIED / DELETED → watch from the list's
  resourceVersion, with bookmarks, re-opening the watch when the server ends it;
* ``410 Gone`` → relist at once; ``404`` on the collection (the CRD is not installed) → empty
  the cache (DELETED for each object), ``served = False``, ``synced = True``, retry every
  ``absent_retry_s``; any other error → log, jittered exponential backoff, relist;
* every ``resync_s`` → RESYNC for each cached object, so level-triggered reconcilers repair
  drift they would otherwise never hear about.

Handlers run on the informer's thread, after the cache was updated, one event at a time in the
server's order; they get a private copy of the object and should only enqueue work.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias

from common.io.kube import Gone, JsonObject, KubeApi, NotFound, WatchStream
from common.model import copy_json, copy_json_object
from common.model.resources import Resource
from common.workqueue import backoff_delay

EventType: TypeAlias = Literal["ADDED", "MODIFIED", "DELETED", "RESYNC"]
ChangeHandler: TypeAlias = Callable[[EventType, JsonObject], None]
ObjectKey: TypeAlias = tuple[str, str]
"""``(namespace or "", name)``."""

log = logging.getLogger(__name__)


def object_key(obj: JsonObject) -> ObjectKey:
    """The cache key of an object: its namespace ("" when cluster-scoped) and name."""
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def resource_version(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _uid(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def is_newer(candidate: str, cached: str) -> bool:
    """Whether ``candidate`` supersedes ``cached``.

    resourceVersions are opaque by contract but etcd-backed servers (and our stand-in) use
    integers; compare numerically when both are, otherwise any difference counts as newer.
    """
    if candidate.isdigit() and cached.isdigit():
        return int(candidate) > int(cached)
    return candidate != cached


def diff_listing(
    cached: dict[ObjectKey, JsonObject], listed: Iterable[JsonObject]
) -> tuple[dict[ObjectKey, JsonObject], list[tuple[EventType, JsonObject]]]:
    """Compare the cache with a fresh list: the new cache and the events that explain the change.

    Removals come first (as DELETED with the last object we knew), then additions and changes in
    the listing's order. An object that was deleted and recreated under the same name while we
    were not watching (a new uid) is reported as DELETED of the old one, then ADDED.
    """
    fresh = {object_key(obj): obj for obj in listed}
    events: list[tuple[EventType, JsonObject]] = [
        ("DELETED", old) for key, old in cached.items() if key not in fresh
    ]
    merged: dict[ObjectKey, JsonObject] = {}
    for key, obj in fresh.items():
        old = cached.get(key)
        if old is None:
            events.append(("ADDED", obj))
        elif _uid(old) and _uid(obj) and _uid(old) != _uid(obj):
            events += [("DELETED", old), ("ADDED", obj)]
        elif is_newer(resource_version(obj), resource_version(old)):
            events.append(("MODIFIED", obj))
        else:
            # NB: a stale or identical listing never rolls the cache back.
            obj = old
        merged[key] = obj
    return merged, events


class _Stopping(Exception):
    """Internal: the informer was stopped while it was waiting or reading."""


class Informer:
    """Cache of one resource (optionally one namespace and selectors) kept by list + watch."""

    def __init__(
        self,
        api: KubeApi,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_s: float = 300.0,
        absent_retry_s: float = 5.0,
        watch_timeout_s: int = 300,
        on_change: ChangeHandler | None = None,
        name: str | None = None,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
    ) -> None:
        if watch_timeout_s < 1:
            raise ValueError(f"watch_timeout_s must be at least 1 s, got {watch_timeout_s}")
        self._api = api
        self._resource = resource
        self._namespace = namespace if resource.namespaced else None
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._resync_s = resync_s
        self._absent_retry_s = absent_retry_s
        self._watch_timeout_s = watch_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self.name = name or f"informer-{resource.plural}"
        self._handlers: list[ChangeHandler] = [on_change] if on_change else []

        # NB: one lock for the cache and the state flags; handlers are never called under it.
        self._lock = threading.Lock()
        self._cache: dict[ObjectKey, JsonObject] = {}
        self._resource_version: str | None = None
        self._served = False
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self._next_resync = math.inf
        self._log_extra: dict[str, Any] = {"informer": self.name, "resource": resource.plural}

    # ---- public face

    def add_handler(self, handler: ChangeHandler) -> None:
        """Register another handler; add them before ``start`` to see the initial ADDEDs."""
        with self._lock:
            self._handlers.append(handler)

    def start(self) -> None:
        """Start the list/watch thread (once)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self.name} was already started")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, interrupting an open watch, and wait up to ``timeout_s`` for it."""
        with self._lock:
            self._stopping.set()
            stream, thread = self._stream, self._thread
        if stream is not None:
            stream.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning(
                    "%s did not stop within %g s", self.name, timeout_s, extra=self._log_extra
                )

    def wait_synced(self, timeout_s: float) -> bool:
        """Wait until the first list finished (or the resource was found absent)."""
        return self._synced.wait(timeout_s)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def served(self) -> bool:
        """True once a list succeeded; False while the collection answers 404."""
        with self._lock:
            return self._served

    def items(self) -> list[JsonObject]:
        """A deep copy of every cached object."""
        with self._lock:
            return [copy_json_object(obj) for obj in self._cache.values()]

    def get(self, name: str, namespace: str | None = None) -> JsonObject | None:
        """A deep copy of one cached object, or None."""
        key = ((namespace or "") if self._resource.namespaced else "", name)
        with self._lock:
            found = self._cache.get(key)
            return copy_json_object(found) if found is not None else None

    # ---- the loop

    def _run(self) -> None:
        failures = 0
        while True:
            delay = 0.0  # NB: after a 410 the relist is immediate.
            try:
                self._relist()
                failures = 0
                self._watch_until_expired()
            except _Stopping:
                break
            except NotFound as missing:
                self._mark_absent(missing)
                delay = self._absent_retry_s
            except Exception as error:
                if self._stopping.is_set():
                    break
                failures += 1
                delay = backoff_delay(
                    failures,
                    base_s=self._min_backoff_s,
                    max_s=self._max_backoff_s,
                    jitter=random.random(),
                )
                log.warning(
                    "%s: list/watch failed (%s); relisting in %.2f s",
                    self.name,
                    error,
                    delay,
                    extra={**self._log_extra, "failures": failures},
                )
            if self._stopping.wait(delay):
                break
        log.debug("%s stopped", self.name, extra=self._log_extra)

    def _relist(self) -> None:
        listing = self._api.list(
            self._resource,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )
        listed_version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        with self._lock:
            self._cache, events = diff_listing(self._cache, listing.get("items") or [])
            self._resource_version = listed_version or None
            was_served, self._served = self._served, True
        if not was_served:
            log.info("%s: listed %d objects", self.name, len(self._cache), extra=self._log_extra)
        self._next_resync = time.monotonic() + self._resync_s if self._resync_s > 0 else math.inf
        self._emit_all(events)
        self._synced.set()

    def _mark_absent(self, missing: NotFound) -> None:
        with self._lock:
            gone = list(self._cache.values())
            self._cache = {}
            self._resource_version = None
            was_served, self._served = self._served, False
        if was_served or not self._synced.is_set():
            log.info(
                "%s: the API does not serve %s (%s); retrying every %g s",
                self.name,
                self._resource.collection_path(self._namespace),
                missing.message or missing.reason or missing.status,
                self._absent_retry_s,
                extra=self._log_extra,
            )
        self._emit_all(("DELETED", obj) for obj in gone)
        self._synced.set()

    def _watch_until_expired(self) -> None:
        """Re-open the watch whenever the server ends it; return on 410 so the caller relists."""
        while not self._stopping.is_set():
            self._resync_if_due()
            with self._lock:
                since = self._resource_version
            now = time.monotonic()
            # NB: a watch never outlives the next resync, so RESYNC fires on this thread even
            # when the stream is quiet (timeoutSeconds is whole seconds, at least 1).
            timeout_s = max(1, min(self._watch_timeout_s, math.ceil(self._next_resync - now)))
            try:
                stream = self._api.watch(
                    self._resource,
                    self._namespace,
                    resource_version=since,
                    label_selector=self._label_selector,
                    field_selector=self._field_selector,
                    timeout_s=timeout_s,
                    allow_bookmarks=True,
                )
                self._consume(stream)
            except Gone as expired:
                log.info(
                    "%s: resourceVersion %s expired (%s); relisting",
                    self.name,
                    since,
                    expired.message or expired.reason,
                    extra=self._log_extra,
                )
                return
            except Exception:
                if self._stopping.is_set():
                    raise _Stopping from None
                raise

    def _consume(self, stream: WatchStream) -> None:
        with self._lock:
            if self._stopping.is_set():
                stream.close()
                raise _Stopping
            self._stream = stream
        try:
            for event_type, obj in stream:
                if self._stopping.is_set():
                    raise _Stopping
                self._apply(event_type, obj)
                self._resync_if_due()
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def _apply(self, event_type: str, obj: JsonObject) -> None:
        version = resource_version(obj)
        event: tuple[EventType, JsonObject] | None = None
        with self._lock:
            if version:
                self._resource_version = version
            if event_type in ("ADDED", "MODIFIED"):
                key = object_key(obj)
                old = self._cache.get(key)
                if old is None or is_newer(version, resource_version(old)):
                    self._cache[key] = obj
                    event = ("ADDED" if old is None else "MODIFIED", obj)
            elif event_type == "DELETED":
                # NB: a delete of something we never announced needs no DELETED either.
                if self._cache.pop(object_key(obj), None) is not None:
                    event = ("DELETED", obj)
            elif event_type != "BOOKMARK":
                log.warning(
                    "%s: ignoring watch event of unknown type %r",
                    self.name,
                    event_type,
                    extra=self._log_extra,
                )
        if event is not None:
            self._emit(*event)

    def _resync_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_resync:
            return
        self._next_resync = now + self._resync_s
        with self._lock:
            cached = list(self._cache.values())
        self._emit_all(("RESYNC", obj) for obj in cached)

    def _emit_all(self, events: Iterable[tuple[EventType, JsonObject]]) -> None:
        for event_type, obj in events:
            self._emit(event_type, obj)

    def _emit(self, event_type: EventType, obj: JsonObject) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            try:
                handler(event_type, copy_json(obj))
            except Exception:
                # NB: one broken handler must not stop the cache or the other handlers.
                key = object_key(obj)
                log.exception(
                    "%s: handler failed on %s %s/%s",
                    self.name,
                    event_type,
                    *key,
                    extra=self._log_extra,
                )
