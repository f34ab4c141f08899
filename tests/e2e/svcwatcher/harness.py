"""A small cluster around tests/kubeapi for svcwatcher: create what a runtime + DANM would.

Pods are created through the API and then given a status through the ``status`` subresource,
as a kubelet would; DanmEps are created as the CNI would. ``wait_for`` polls the API (never our
controller's caches) until a condition holds, with a generous deadline that only bounds a hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from common.io.kube import AlreadyExists, KubernetesApi, NotFound
from common.model.resources import (
    CRDS,
    DANMEPS,
    ENDPOINTS,
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    Resource,
)
from svcwatcher import endpoints as ep
from tests.unit.svcwatcher.builders import pod_status

REPO = Path(__file__).resolve().parents[3]
DANMEP_CRD = REPO / "integration/crds/lightweight/DanmEp.yaml"
DANMNET_CRD = REPO / "integration/crds/lightweight/DanmNet.yaml"
WAIT_S = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class View:
    """What the API holds for one Service, reduced to what tests compare."""

    ready: frozenset[str]
    not_ready: frozenset[str]
    slices: Mapping[str, frozenset[tuple[str, bool, bool, bool]]]
    endpoints: dict[str, Any] | None
    slice_objects: list[dict[str, Any]]

    def summary(self) -> str:
        """Short enough for an assertion message (the full objects can be megabytes)."""
        return (
            f"endpoints={'present' if self.endpoints else 'absent'} ready={sorted(self.ready)} "
            f"not_ready={sorted(self.not_ready)} slices={len(self.slice_objects)} "
            f"slice_ips={sorted(self.slice_ips)}"
        )[:2000]

    @property
    def slice_ips(self) -> frozenset[str]:
        return frozenset(ip for entries in self.slices.values() for ip, *_ in entries)


class Cluster:
    def __init__(self, api: KubernetesApi) -> None:
        self.api = api

    def install_crds(self) -> None:
        for path in (DANMEP_CRD, DANMNET_CRD):
            self.create(CRDS, yaml.safe_load(path.read_text()))
        self.wait_for(lambda: self._served(DANMEPS), "the DanmEp CRD to be served")

    def _served(self, resource: Resource) -> bool:
        try:
            self.api.list(resource, "default")
        except NotFound:
            return False
        return True

    def ensure_namespace(self, name: str) -> None:
        self.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    def create(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        namespace = (obj.get("metadata") or {}).get("namespace")
        try:
            return self.api.create(resource, namespace, dict(obj))
        except AlreadyExists:
            return self.api.get(resource, namespace, obj["metadata"]["name"])

    def create_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        """Create the Pod, then set its status as the kubelet would (create drops status)."""
        meta = pod["metadata"]
        body = {k: v for k, v in pod.items() if k != "status"}
        body["metadata"] = {k: v for k, v in meta.items() if k not in ("uid",)}
        self.api.create(PODS, meta["namespace"], body)
        return self.api.patch(
            PODS, meta["namespace"], meta["name"], {"status": pod["status"]}, subresource="status"
        )

    def create_pods(self, pods: Iterable[Mapping[str, Any]], threads: int = 4) -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self.create_pod, pods))

    def create_all(self, resource: Resource, objs: Iterable[Mapping[str, Any]]) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda o: self.create(resource, o), objs))

    def pod_uid(self, namespace: str, name: str) -> str:
        return str(self.api.get(PODS, namespace, name)["metadata"]["uid"])

    def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        self.api.patch(PODS, namespace, name, {"status": pod_status(ready)}, subresource="status")

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        self.api.patch(PODS, namespace, name, {"metadata": {"labels": dict(labels)}})

    def view(self, namespace: str, service: str) -> View:
        try:
            endpoints: dict[str, Any] | None = self.api.get(ENDPOINTS, namespace, service)
        except NotFound:
            endpoints = None
        ready: set[str] = set()
        not_ready: set[str] = set()
        for subset in (endpoints or {}).get("subsets") or ():
            ready.update(a["ip"] for a in subset.get("addresses") or ())
            not_ready.update(a["ip"] for a in subset.get("notReadyAddresses") or ())
        slice_objects = self.api.list(
            ENDPOINTSLICES, namespace, label_selector=f"{ep.LABEL_SERVICE_NAME}={service}"
        )["items"]
        slices: dict[str, set[tuple[str, bool, bool, bool]]] = {}
        for body in slice_objects:
            for entry in body.get("endpoints") or ():
                conditions = entry.get("conditions") or {}
                slices.setdefault(body["addressType"], set()).add(
                    (
                        entry["addresses"][0],
                        bool(conditions.get("ready")),
                        bool(conditions.get("serving")),
                        bool(conditions.get("terminating")),
                    )
                )
        return View(
            frozenset(ready),
            frozenset(not_ready),
            {k: frozenset(v) for k, v in slices.items()},
            endpoints,
            slice_objects,
        )

    def wait_for(
        self, condition: Callable[[], T | None], what: str, timeout_s: float = WAIT_S
    ) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
            time.sleep(0.05)

    def wait_view(
        self, namespace: str, service: str, check: Callable[[View], bool], what: str
    ) -> View:
        last: list[View] = []

        def probe() -> View | None:
            view = self.view(namespace, service)
            last[:] = [view]
            return view if check(view) else None

        try:
            return self.wait_for(probe, f"{namespace}/{service}: {what}")
        except AssertionError as error:
            raise AssertionError(
                f"{error}; last seen: {last[0].summary() if last else None}"
            ) from None


def ready_v4(view: View) -> frozenset[str]:
    return frozenset(ip for ip, ready, *_ in view.slices.get("IPv4", ()) if ready)
