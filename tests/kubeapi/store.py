"""The server's state: objects, the cluster-wide resourceVersion counter and the event log.

Like etcd behind kube-apiserver, every write gets the next integer revision, which becomes
the object's ``metadata.resourceVersion``; the log keeps the last ``history`` events so a
watch can resume from a recent version and gets 410 Expired for a compacted one. The store
knows nothing about HTTP or resource semantics and is only touched from one event loop.
"""

from __future__ import annotations

import copy
import json
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

StorageKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)


class TooOldResourceVersion(Exception):
    def __init__(self, requested: int, oldest_available: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest_available})")


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    key: StorageKey
    rv: int
    obj: dict[str, Any]
    old: dict[str, Any] | None


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


class Store:
    def __init__(self, *, history: int = 1000) -> None:
        self.rv = 0
        self.history = history
        self.compacted_rv = 0  # NB: every event with rv > compacted_rv is still in the log.
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._events: deque[WatchEvent] = deque()
        self._listeners: list[Callable[[WatchEvent], None]] = []

    # -- reads -------------------------------------------------------------------------
    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._objects.get(key, {}).get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list_objects(self, key: StorageKey, namespace: str | None) -> list[dict[str, Any]]:
        bucket = self._objects.get(key, {})
        return [
            copy.deepcopy(bucket[k])
            for k in sorted(bucket)
            if namespace is None or k[0] == namespace
        ]

    def count(self, key: StorageKey, namespace: str | None = None) -> int:
        return sum(1 for k in self._objects.get(key, {}) if namespace in (None, k[0]))

    def keys(self) -> list[StorageKey]:
        return list(self._objects)

    # -- writes ------------------------------------------------------------------------
    def put(self, key: StorageKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace; the stored copy gets the next resourceVersion."""
        stored = copy.deepcopy(obj)
        bucket = self._objects.setdefault(key, {})
        old = bucket.get(object_key(stored))
        self.rv += 1
        stored["metadata"]["resourceVersion"] = str(self.rv)
        bucket[object_key(stored)] = stored
        self._record(WatchEvent("MODIFIED" if old else "ADDED", key, self.rv, stored, old))
        return copy.deepcopy(stored)

    def remove(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any]:
        """Delete; like etcd, the DELETED event carries the deletion's own revision."""
        old = self._objects[key].pop((namespace, name))
        self.rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._record(WatchEvent("DELETED", key, self.rv, gone, old))
        return copy.deepcopy(gone)

    def _record(self, event: WatchEvent) -> None:
        self._events.append(event)
        while len(self._events) > self.history:
            self.compacted_rv = self._events.popleft().rv
        for listener in list(self._listeners):
            listener(event)

    # -- watch support -----------------------------------------------------------------
    def events_after(self, rv: int) -> list[WatchEvent]:
        if rv < self.compacted_rv:
            raise TooOldResourceVersion(rv, self.compacted_rv)
        return [e for e in self._events if e.rv > rv]

    def compact(self) -> None:
        """Forget the whole event log, as etcd compaction plus a cache restart would."""
        self._events.clear()
        self.compacted_rv = self.rv

    def subscribe(self, listener: Callable[[WatchEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- persistence -------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "resourceVersion": self.rv,
            "objects": {
                f"{group}/{plural}": list(bucket.values())
                for (group, plural), bucket in self._objects.items()
                if bucket
            },
        }

    def load(self, data: dict[str, Any]) -> None:
        self.rv = int(data["resourceVersion"])
        self.compacted_rv = self.rv  # NB: the event log does not survive a restart.
        self._events.clear()
        self._objects = {}
        for joined, objects in data["objects"].items():
            group, plural = joined.split("/", 1)
            self._objects[(group, plural)] = {object_key(o): o for o in objects}


def save_atomically(store: Store, path: Path) -> None:
    """Write to a sibling temp file then rename, so a crash never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(store.dump()))
    os.replace(temporary, path)


def load_file(store: Store, path: Path) -> bool:
    if not path.exists():
        return False
    store.load(json.loads(path.read_text()))
    return True
