"""Kubernetes Events on the Services svcwatcher cannot serve, without flooding the API.

Why it exists: a user who mistypes ``danm.k8s.io/selector`` looks at ``kubectl describe service``,
not at the controller's logs, so the complaint must land on the Service as a core/v1 Event (the
original recorded Events but had no RBAC for them, danm-behaviour.md §13.28). A controller
re-checks every Service on each resync, so the same complaint comes back again and again; like
client-go's event correlator we fold repeats into one Event whose ``count`` grows, and we bump it
at most once per ``repeat_interval_s``.

Recording never raises: an Event is a courtesy, and failing to write one must not fail the
reconcile that found the problem (it is logged instead).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.io.kube import KubeApi, KubeError, NotFound
from common.model.resources import EVENTS

log = logging.getLogger(__name__)

COMPONENT = "danm-svcwatcher"


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Recorded:
    name: str
    count: int
    last_sent: float


class EventRecorder:
    """Writes Warning/Normal Events about API objects, folding repeats into one Event."""

    def __init__(
        self,
        api: KubeApi,
        *,
        instance: str,
        repeat_interval_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self._api = api
        self._instance = instance
        self._repeat_interval_s = repeat_interval_s
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._recorded: dict[tuple[str, ...], _Recorded] = {}

    def record(
        self, involved: Mapping[str, Any], event_type: str, reason: str, message: str
    ) -> None:
        """Record ``reason``/``message`` on ``involved`` (an API object as a dict)."""
        metadata = involved.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        name = str(metadata.get("name") or "")
        uid = str(metadata.get("uid") or "")
        key = (namespace, name, uid, event_type, reason, message)
        with self._lock:
            previous = self._recorded.get(key)
            if previous and self._clock() - previous.last_sent < self._repeat_interval_s:
                previous.count += 1
                return
        stamp = rfc3339(self._now())
        try:
            if previous is not None:
                try:
                    self._api.patch(
                        EVENTS,
                        namespace,
                        previous.name,
                        {"count": previous.count + 1, "lastTimestamp": stamp},
                    )
                    with self._lock:
                        previous.count += 1
                        previous.last_sent = self._clock()
                    return
                except NotFound:
                    pass  # NB: Events expire (1 h by default); start a new one.
            event_name = f"{name}.{time.time_ns():x}"
            self._api.create(
                EVENTS,
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": event_name, "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": str(involved.get("apiVersion") or "v1"),
                        "kind": str(involved.get("kind") or "Service"),
                        "namespace": namespace,
                        "name": name,
                        "uid": uid,
                        "resourceVersion": str(metadata.get("resourceVersion") or ""),
                    },
                    "reason": reason,
                    "message": message,
                    "type": event_type,
                    "source": {"component": COMPONENT},
                    "reportingComponent": COMPONENT,
                    "reportingInstance": self._instance,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                },
            )
            with self._lock:
                self._recorded[key] = _Recorded(event_name, 1, self._clock())
        except KubeError as error:
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                namespace,
                name,
                error,
                extra={"service": f"{namespace}/{name}", "reason": reason},
            )

    def forget(self, namespace: str, name: str) -> None:
        """Drop what we remember about an object (it was deleted)."""
        with self._lock:
            for key in [k for k in self._recorded if k[0] == namespace and k[1] == name]:
                del self._recorded[key]
