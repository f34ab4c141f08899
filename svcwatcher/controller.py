"""The svcwatcher control loop: informers in, one reconcile per Service, minimal writes out.

Why it exists: the original reacted to each Pod/DanmEp/Service event by patching Endpoints in
place inside the event handler, which lost updates, rewrote foreign Endpoints and created nothing
when the object was missing (danm-behaviour.md §10.5, §13.28). Here, as in kube's own endpoint
controllers, events only say *which Service* needs a look:

* informer handlers (``on_*``) reduce each object to the facts the computation needs
  (``svcwatcher.endpoints``), keep them in ``ClusterFacts`` and enqueue the affected Service keys
  (``namespace/name``) on a de-duplicating ``WorkQueue``, so a burst of Pod changes is one
  reconcile and one write per Service;
* a worker pops a key, computes the desired Endpoints and EndpointSlices from the facts and hands
  them to ``Writer``, which creates what is missing, updates only what differs and deletes the
  slices no longer wanted; failures go back on the queue with backoff;
* only objects carrying our managed-by label are ever updated or deleted; a same-named
  Endpoints or EndpointSlice that is not ours is reported (Event + log) and left alone.
"""

from __future__ import annotations

import copy
import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from common.io.informer import EventType, Informer
from common.io.kube import (
    AlreadyExists,
    Conflict,
    JsonObject,
    KubeApi,
    KubeApiError,
    KubeError,
    NotFound,
)
from common.model.errors import ModelError
from common.model.resources import DANMEPS, ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES, Resource
from common.workqueue import WorkQueue
from svcwatcher import endpoints as ep
from svcwatcher.events import EventRecorder

log = logging.getLogger(__name__)

REASON_INVALID = "InvalidDanmAnnotation"
REASON_NOT_OURS = "EndpointsNotManaged"
REASON_WRITE_FAILED = "FailedToUpdateEndpoints"


class NotOurs(Exception):
    """An object we wanted to write exists and is managed by someone else."""


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def _meta(obj: JsonObject) -> dict[str, Any]:
    metadata: dict[str, Any] = obj.get("metadata") or {}
    return metadata


def _now_rfc3339_nano() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# What we know about the cluster, fed by the informers


@dataclass
class ServiceEntry:
    """The last seen Service: the object, and its verdict (ours and valid / ours but invalid)."""

    obj: JsonObject
    danm: ep.DanmService | None = None
    invalid: str = ""


@dataclass
class ClusterFacts:
    """Thread-safe facts for the reconciler; the informers' handlers keep it current."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    services: dict[str, ServiceEntry] = field(default_factory=dict)
    pods: dict[str, dict[str, ep.PodFacts]] = field(default_factory=dict)
    interfaces: dict[str, dict[str, ep.InterfaceFacts]] = field(default_factory=dict)
    endpoints: dict[str, JsonObject] = field(default_factory=dict)
    slices: dict[str, dict[str, JsonObject]] = field(default_factory=dict)

    #: Valid DANM Services by namespace and key: what Pod/DanmEp events are matched against.
    danm_by_namespace: dict[str, dict[str, ep.DanmService]] = field(default_factory=dict)

    def set_service(self, key: str, entry: ServiceEntry | None) -> ServiceEntry | None:
        """Store (or with ``None`` drop) a Service; returns the previous entry (hold the lock)."""
        namespace = key.partition("/")[0]
        in_namespace = self.danm_by_namespace.setdefault(namespace, {})
        in_namespace.pop(key, None)
        if entry is None:
            return self.services.pop(key, None)
        if entry.danm is not None:
            in_namespace[key] = entry.danm
        previous = self.services.get(key)
        self.services[key] = entry
        return previous

    def danm_services_in(self, namespace: str) -> list[ep.DanmService]:
        """Valid DANM Services of one namespace (caller holds the lock)."""
        return list(self.danm_by_namespace.get(namespace, {}).values())


# --------------------------------------------------------------------------------------------
# Writing


@dataclass
class WriteStats:
    """Counters of API writes, for tests, benchmarks and the logs."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted


class Writer:
    """Turns "existing vs desired" for one Service into the fewest API writes, ours only."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api
        self.stats = WriteStats()
        self._stats_lock = threading.Lock()

    def _count(self, what: str) -> None:
        with self._stats_lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    @staticmethod
    def _stamped(desired: JsonObject, trigger_time: str | None) -> JsonObject:
        body = copy.deepcopy(desired)
        if trigger_time:
            body["metadata"].setdefault("annotations", {})[ep.ANNOTATION_TRIGGER_TIME] = (
                trigger_time
            )
        return body

    def ensure(
        self,
        resource: Resource,
        existing: JsonObject | None,
        desired: JsonObject,
        is_ours: Callable[[JsonObject], bool],
        trigger_time: str | None,
    ) -> bool:
        """Make ``desired`` true; ``existing`` is our cached copy (None if we know of none).

        Returns True if something was written. Raises ``NotOurs`` for a foreign object of that
        name and ``Conflict`` when the object keeps changing under us (the caller retries).
        """
        namespace = str(desired["metadata"]["namespace"])
        name = str(desired["metadata"]["name"])
        if existing is None:
            try:
                self._api.create(resource, namespace, self._stamped(desired, trigger_time))
                self._count("created")
                return True
            except AlreadyExists:
                # NB: our cache lags behind our own create, or the name is taken by someone else.
                existing = self._api.get(resource, namespace, name)
        for attempt in (1, 2):
            if not is_ours(existing):
                raise NotOurs(f"{resource.kind} {namespace}/{name} exists and is not managed by us")
            if ep.same_content(existing, desired):
                return False
            body = self._stamped(desired, trigger_time)
            body["metadata"]["resourceVersion"] = _meta(existing).get("resourceVersion")
            try:
                self._api.replace(resource, namespace, name, body)
                self._count("updated")
                return True
            except NotFound:
                self._api.create(resource, namespace, self._stamped(desired, trigger_time))
                self._count("created")
                return True
            except Conflict:
                if attempt == 2:
                    raise
                existing = self._api.get(resource, namespace, name)
        return False  # pragma: no cover - the loop returns or raises

    def remove(self, resource: Resource, existing: JsonObject) -> bool:
        """Delete one of our objects (precondition: same uid); gone already is fine."""
        metadata = _meta(existing)
        try:
            self._api.delete(
                resource,
                metadata.get("namespace"),
                str(metadata.get("name")),
                uid=metadata.get("uid") or None,
            )
        except NotFound:
            return False
        self._count("deleted")
        return True


# --------------------------------------------------------------------------------------------
# The controller


@dataclass(frozen=True)
class Options:
    resync_s: float = 60.0
    workers: int = 2
    watch_timeout_s: int = 300
    max_endpoints_per_slice: int = ep.MAX_ENDPOINTS_PER_SLICE


class SvcWatcher:
    """Informers + work queue + workers. ``start``, then ``stop``; safe to ``stop`` twice."""

    def __init__(
        self,
        api: KubeApi,
        *,
        options: Options | None = None,
        recorder: EventRecorder | None = None,
        instance: str = "svcwatcher",
    ) -> None:
        self.options = options or Options()
        self._api = api
        self.facts = ClusterFacts()
        self.queue: WorkQueue[str] = WorkQueue()
        self.writer = Writer(api)
        self.recorder = recorder or EventRecorder(api, instance=instance)
        self.syncs = 0
        self._trigger_times: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self._workers: list[threading.Thread] = []
        self._announced = False
        self._stopping = threading.Event()
        common: dict[str, Any] = {
            "resync_s": self.options.resync_s,
            "watch_timeout_s": self.options.watch_timeout_s,
        }
        self.informers = [
            Informer(api, SERVICES, on_change=self.on_service, name="services", **common),
            Informer(api, PODS, on_change=self.on_pod, name="pods", **common),
            Informer(api, DANMEPS, on_change=self.on_danmep, name="danmeps", **common),
            Informer(
                api,
                ENDPOINTS,
                label_selector=f"{ep.LABEL_ENDPOINTS_MANAGED_BY}={ep.CONTROLLER_NAME}",
                on_change=self.on_endpoints,
                name="endpoints",
                **common,
            ),
            Informer(
                api,
                ENDPOINTSLICES,
                label_selector=f"{ep.LABEL_SLICE_MANAGED_BY}={ep.CONTROLLER_NAME}",
                on_change=self.on_slice,
                name="endpointslices",
                **common,
            ),
        ]

    # ---- lifecycle

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        for index in range(max(1, self.options.workers)):
            worker = threading.Thread(
                target=self._work, name=f"svcwatcher-worker-{index}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def wait_synced(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(i.wait_synced(max(0.0, deadline - time.monotonic())) for i in self.informers)

    @property
    def synced(self) -> bool:
        return all(i.synced for i in self.informers)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self.queue.shutdown()
        for informer in self.informers:
            informer.stop(timeout_s)
        for worker in self._workers:
            worker.join(timeout_s)

    def alive_reason(self) -> str | None:
        """None while every worker thread runs; else why not (for /healthz)."""
        dead = [w.name for w in self._workers if not w.is_alive()]
        if dead and not self._stopping.is_set():
            return "worker threads died: " + ", ".join(dead)
        return None

    # ---- informer handlers: update facts, enqueue keys (quick, on the informer threads)

    def _enqueue(self, keys: Iterable[str], changed: bool) -> None:
        stamp = _now_rfc3339_nano() if changed else None
        for key in keys:
            if stamp:
                with self.facts.lock:
                    self._trigger_times[key] = stamp
            self.queue.add(key)

    def on_service(self, event: EventType, obj: JsonObject) -> None:
        metadata = _meta(obj)
        key = _key(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        entry: ServiceEntry | None = None
        if event != "DELETED":
            entry = ServiceEntry(obj)
            try:
                entry.danm = ep.parse_service(obj)
            except ep.InvalidDanmAnnotation as error:
                entry.invalid = str(error)
        with self.facts.lock:
            previous = self.facts.set_service(key, entry)
        if entry is None and previous is None:
            return
        self._enqueue([key], changed=event != "RESYNC")

    def _affected_by_pod(
        self, namespace: str, old: ep.PodFacts | None, new: ep.PodFacts | None
    ) -> list[str]:
        keys = []
        with self.facts.lock:
            for service in self.facts.danm_services_in(namespace):
                if (old and service.selects(old.labels)) or (new and service.selects(new.labels)):
                    keys.append(service.key)
        return keys

    def on_pod(self, event: EventType, obj: JsonObject) -> None:
        new = None if event == "DELETED" else ep.pod_facts(obj)
        metadata = _meta(obj)
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        with self.facts.lock:
            in_namespace = self.facts.pods.setdefault(namespace, {})
            old = in_namespace.pop(name, None)
            if new is not None:
                in_namespace[name] = new
        if old == new:
            return
        self._enqueue(self._affected_by_pod(namespace, old, new), changed=True)

    def on_danmep(self, event: EventType, obj: JsonObject) -> None:
        metadata = _meta(obj)
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        new: ep.InterfaceFacts | None = None
        if event != "DELETED":
            try:
                new = ep.danmep_facts(obj)
            except ModelError as error:
                # NB: treated as absent; the CNI owns DanmEps, we only read them.
                log.warning("ignoring malformed DanmEp: %s", error, extra={"danmep": name})
        with self.facts.lock:
            in_namespace = self.facts.interfaces.setdefault(namespace, {})
            old = in_namespace.pop(name, None)
            if new is not None:
                in_namespace[name] = new
            if old == new:
                return
            pods = self.facts.pods.get(namespace, {})
            keys = []
            for service in self.facts.danm_services_in(namespace):
                for iface in (old, new):
                    if iface is None or iface.network not in service.networks:
                        continue
                    pod = pods.get(iface.pod)
                    if pod is None or service.selects(pod.labels):
                        keys.append(service.key)
                        break
        self._enqueue(keys, changed=True)

    def on_endpoints(self, event: EventType, obj: JsonObject) -> None:
        metadata = _meta(obj)
        key = _key(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        with self.facts.lock:
            if event == "DELETED":
                self.facts.endpoints.pop(key, None)
            else:
                self.facts.endpoints[key] = obj
        if event != "RESYNC":
            self.queue.add(key)

    def on_slice(self, event: EventType, obj: JsonObject) -> None:
        metadata = _meta(obj)
        service_name = str((metadata.get("labels") or {}).get(ep.LABEL_SERVICE_NAME) or "")
        key = _key(str(metadata.get("namespace") or ""), service_name)
        name = str(metadata.get("name") or "")
        with self.facts.lock:
            if event == "DELETED":
                self.facts.slices.get(key, {}).pop(name, None)
            else:
                self.facts.slices.setdefault(key, {})[name] = obj
        if service_name and event != "RESYNC":
            self.queue.add(key)

    # ---- workers

    def _work(self) -> None:
        # NB: no reconcile before every cache is filled: with Services not yet listed, our own
        # Endpoints would look orphaned and be deleted.
        while not self.wait_synced(0.5):
            if self._stopping.is_set():
                return
        with self.facts.lock:
            first, self._announced = not self._announced, True
        if first:
            log.info("caches synced; reconciling Services")
        while True:
            key = self.queue.get()
            if key is None:
                return
            self.process(key)

    def process(self, key: str) -> None:
        """Reconcile a key handed out by ``queue.get``; on failure park it with backoff."""
        try:
            self.sync(key)
            self.queue.forget(key)
        except Exception as error:
            if not self._stopping.is_set():
                delay = self.queue.rate_limit_delay(key)
                log.warning(
                    "reconciling Service %s failed, retrying in %.2f s: %s",
                    key,
                    delay,
                    error,
                    extra={"service": key},
                    exc_info=not isinstance(error, KubeError),
                )
                self.queue.add_after(key, delay)
                self._report_write_failure(key, error)
        finally:
            self.queue.done(key)

    def sync(self, key: str) -> None:
        """Reconcile one Service key: make its Endpoints and EndpointSlices match the facts."""
        namespace, name = _split(key)
        with self.facts.lock:
            self.syncs += 1
            entry = self.facts.services.get(key)
            trigger_time = self._trigger_times.pop(key, None)
            existing_endpoints = self.facts.endpoints.get(key)
            existing_slices = dict(self.facts.slices.get(key, {}))
            service = entry.danm if entry else None
            pods: list[ep.PodFacts] = []
            interfaces: list[ep.InterfaceFacts] = []
            if service is not None:
                pods = [
                    p
                    for p in self.facts.pods.get(namespace, {}).values()
                    if service.selects(p.labels)
                ]
                interfaces = list(self.facts.interfaces.get(namespace, {}).values())
        if entry is not None and entry.invalid:
            self._report_invalid(key, entry)
            return
        self._reported.pop(key, None)
        if service is None:
            self._remove_all(key, existing_endpoints, existing_slices)
            if entry is None:
                self.recorder.forget(namespace, name)
            return
        assert entry is not None
        desired = ep.desired_state(
            service,
            pods,
            interfaces,
            max_endpoints_per_slice=self.options.max_endpoints_per_slice,
        )
        writes = 0
        try:
            writes += self.writer.ensure(
                ENDPOINTS,
                existing_endpoints,
                desired.endpoints,
                ep.is_ours_endpoints,
                trigger_time,
            )
            for slice_name, body in desired.slices.items():
                writes += self.writer.ensure(
                    ENDPOINTSLICES,
                    existing_slices.get(slice_name),
                    body,
                    ep.is_ours_slice,
                    trigger_time,
                )
        except NotOurs as error:
            message = f"{error}; svcwatcher leaves it alone (delete it to let svcwatcher manage it)"
            log.warning(message, extra={"service": key})
            self.recorder.record(entry.obj, "Warning", REASON_NOT_OURS, message)
            return
        # NB: deletes after creates, so a consumer never sees the Service with no slices at all.
        for slice_name, body in existing_slices.items():
            if slice_name not in desired.slices and ep.is_ours_slice(body):
                writes += self.writer.remove(ENDPOINTSLICES, body)
        if writes:
            addresses = sum(len(b["endpoints"]) for b in desired.slices.values())
            log.info(
                "Service %s: %d endpoint addresses in %d slices (%d writes)",
                key,
                addresses,
                len(desired.slices),
                writes,
                extra={"service": key, "writes": writes},
            )

    def _report_write_failure(self, key: str, error: Exception) -> None:
        """An API refusal that retrying will not fix (e.g. 403, 422) goes on the Service too."""
        if not isinstance(error, KubeApiError) or isinstance(error, Conflict) or error.retryable:
            return
        with self.facts.lock:
            entry = self.facts.services.get(key)
        if entry is not None:
            self.recorder.record(entry.obj, "Warning", REASON_WRITE_FAILED, str(error))

    def _report_invalid(self, key: str, entry: ServiceEntry) -> None:
        if self._reported.get(key) != entry.invalid:
            self._reported[key] = entry.invalid
            log.warning(
                "Service %s: %s; its Endpoints are left as they are",
                key,
                entry.invalid,
                extra={"service": key, "reason": REASON_INVALID},
            )
        self.recorder.record(entry.obj, "Warning", REASON_INVALID, entry.invalid)

    def _remove_all(
        self, key: str, endpoints: JsonObject | None, slices: dict[str, JsonObject]
    ) -> None:
        removed = 0
        if endpoints is not None and ep.is_ours_endpoints(endpoints):
            removed += self.writer.remove(ENDPOINTS, endpoints)
        for body in slices.values():
            if ep.is_ours_slice(body):
                removed += self.writer.remove(ENDPOINTSLICES, body)
        if removed:
            log.info(
                "Service %s is gone or no longer DANM's: removed %d objects",
                key,
                removed,
                extra={"service": key},
            )
