"""A recording in-memory ``KubeApi`` for the controller's unit tests (no list/watch needed)."""

from __future__ import annotations

import copy
from collections.abc import Generator, Sequence
from typing import Any

from common.io.kube import (
    DEFAULT_PAGE_SIZE,
    AlreadyExists,
    Conflict,
    JsonObject,
    KubeApi,
    NotFound,
    PatchType,
    WatchEvent,
)
from common.model.resources import Resource


class FakeKube:
    """Objects by (plural, namespace, name); every write is appended to ``calls``."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], JsonObject] = {}
        self.calls: list[tuple[str, str, str, str]] = []
        self.conflicts_to_inject = 0
        #: What a test has already fed back to the controller as "seen by the informers".
        self.echoed: dict[tuple[str, str, str], JsonObject] = {}
        self._rv = 0

    def _key(self, resource: Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (resource.plural, namespace or "", name)

    def _stamp(self, obj: JsonObject) -> JsonObject:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        obj["metadata"].setdefault("uid", f"uid-{self._rv}")
        return obj

    def put(self, resource: Resource, obj: JsonObject) -> JsonObject:
        """Seed an object as if someone else had written it."""
        meta = obj["metadata"]
        stored = self._stamp(copy.deepcopy(obj))
        self.objects[self._key(resource, meta.get("namespace"), meta["name"])] = stored
        return copy.deepcopy(stored)

    def writes(self, verb: str | None = None, plural: str | None = None) -> list[Any]:
        return [
            c
            for c in self.calls
            if (verb is None or c[0] == verb) and (plural is None or c[1] == plural)
        ]

    def get(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        found = self.objects.get(self._key(resource, namespace, name))
        if found is None:
            raise NotFound(404, "NotFound", f"{resource.plural} {name!r} not found")
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
        items = [
            copy.deepcopy(o)
            for (plural, ns, _), o in self.objects.items()
            if plural == resource.plural and (namespace is None or ns == namespace)
        ]
        return {"metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject:
        name = body["metadata"]["name"]
        self.calls.append(("create", resource.plural, namespace or "", name))
        key = self._key(resource, namespace, name)
        if key in self.objects:
            raise AlreadyExists(409, "AlreadyExists", f"{name!r} already exists")
        stored = self._stamp(copy.deepcopy(body))
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        self.calls.append(("replace", resource.plural, namespace or "", name))
        key = self._key(resource, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise NotFound(404, "NotFound", f"{name!r} not found")
        if self.conflicts_to_inject > 0:
            self.conflicts_to_inject -= 1
            self._stamp(current)
            raise Conflict(409, "Conflict", "the object has been modified")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        stored = copy.deepcopy(body)
        stored["metadata"]["uid"] = current["metadata"]["uid"]
        self.objects[key] = self._stamp(stored)
        return copy.deepcopy(stored)

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
        self.calls.append(("patch", resource.plural, namespace or "", name))
        key = self._key(resource, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise NotFound(404, "NotFound", f"{name!r} not found")
        assert isinstance(patch, dict)
        current.update(copy.deepcopy(patch))
        return copy.deepcopy(self._stamp(current))

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
        self.calls.append(("delete", resource.plural, namespace or "", name))
        key = self._key(resource, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise NotFound(404, "NotFound", f"{name!r} not found")
        if uid is not None and current["metadata"]["uid"] != uid:
            raise Conflict(409, "Conflict", "uid precondition failed")
        return self.objects.pop(key)

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
    ) -> Generator[WatchEvent, None, None]:
        raise AssertionError("the controller unit tests drive handlers directly; no watch")


_check: KubeApi = FakeKube()
