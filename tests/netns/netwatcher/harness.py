"""Shared set-up for netwatcher's real-kernel tests and benchmark.

A "node" is a throwaway namespace (``danmt-<pid>-...``, removed even on failure) holding veth
parents with addresses; netwatcher manages that namespace (``Settings.netns``), never the
runner's own. Links are read back with ``ip -j -d``, not with the adapter under test. Network
objects go to the API stand-in (tests/kubeapi) through the real ``KubernetesApi``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.io.kube import KubeApi, KubernetesApi, NotFound
from common.model.resources import CLUSTERNETWORKS, CRDS, DANMNETS, TENANTNETWORKS, Resource
from netwatcher.controller import Netwatcher, Settings
from tests.kubeapi.testing import RunningKubeApi
from tests.netns_helpers import add_address, create_veth_pair, ip, netns_path, throwaway_netns

REPO = Path(__file__).resolve().parents[3]
CRD_FILES = {
    "DanmNet": REPO / "integration/crds/lightweight/DanmNet.yaml",
    "TenantNetwork": REPO / "integration/crds/production/TenantNetwork.yaml",
    "ClusterNetwork": REPO / "integration/crds/production/ClusterNetwork.yaml",
}
RESOURCES: dict[str, Resource] = {
    "DanmNet": DANMNETS,
    "TenantNetwork": TENANTNETWORKS,
    "ClusterNetwork": CLUSTERNETWORKS,
}
NAMESPACE = "default"
WAIT_S = 30.0


def connect(kubeapi: RunningKubeApi) -> KubernetesApi:
    return KubernetesApi.from_api_client(kubeapi.api_client())


def install_crds(
    api: KubeApi, kinds: Sequence[str] = ("DanmNet", "TenantNetwork", "ClusterNetwork")
) -> None:
    for kind in kinds:
        api.create(CRDS, None, yaml.safe_load(CRD_FILES[kind].read_text()))
    for kind in kinds:
        wait_until(functools.partial(_served, api, RESOURCES[kind]), f"{kind} CRD served")


def _served(api: KubeApi, resource: Resource) -> bool:
    try:
        api.list(resource, NAMESPACE if resource.namespaced else None)
    except NotFound:
        return False
    return True


def network(
    kind: str, name: str, *, network_id: str | None = None, **options: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if RESOURCES[kind].namespaced:
        metadata["namespace"] = NAMESPACE
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": {"NetworkID": network_id or name, "NetworkType": "ipvlan", "Options": options},
    }


def create_network(api: KubeApi, body: dict[str, Any]) -> dict[str, Any]:
    resource = RESOURCES[body["kind"]]
    return api.create(resource, body["metadata"].get("namespace"), body)


def patch_options(api: KubeApi, kind: str, name: str, **options: Any) -> None:
    resource = RESOURCES[kind]
    api.patch(
        resource, NAMESPACE if resource.namespaced else None, name, {"spec": {"Options": options}}
    )


def delete_network(api: KubeApi, kind: str, name: str) -> None:
    resource = RESOURCES[kind]
    api.delete(resource, NAMESPACE if resource.namespaced else None, name)


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``condition`` until truthy (returned) or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class Node:
    """A throwaway namespace standing in for a node's root namespace."""

    netns: str

    @property
    def path(self) -> str:
        return netns_path(self.netns)

    def links(self) -> dict[str, dict[str, Any]]:
        out = ip("-j", "-d", "-n", self.netns, "link", "show").stdout
        return {link["ifname"]: link for link in json.loads(out)}

    def link(self, name: str) -> dict[str, Any] | None:
        return self.links().get(name)

    def ip(self, *args: str) -> None:
        ip("-n", self.netns, *args)

    def add_parent(self, name: str, cidr: str | None) -> None:
        """A veth ``name`` (peer ``<name>p``), up, with ``cidr`` when given."""
        create_veth_pair(self.netns, name, f"{name}p")
        if cidr:
            add_address(self.netns, name, cidr)

    def wait_link(
        self, name: str, check: Callable[[dict[str, Any]], bool] = lambda _: True, what: str = ""
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            link = self.link(name)
            return link if link is not None and is_up(link) and check(link) else None

        found: dict[str, Any] = wait_until(ready, what or f"{name} up in {self.netns}")
        return found

    def wait_gone(self, name: str) -> None:
        wait_until(lambda: self.link(name) is None, f"{name} gone from {self.netns}")


def is_up(link: dict[str, Any]) -> bool:
    return "UP" in link.get("flags", [])


def info(link: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = link.get("linkinfo", {}).get("info_data", {})
    return data


@contextlib.contextmanager
def node_with_parents(
    parents: dict[str, str | None], *, igmp_max_memberships: int | None = None
) -> Iterator[Node]:
    """A node with veth ``parents`` (name -> address or None).

    ``igmp_max_memberships`` sets that per-namespace sysctl: every VxLAN link joins its multicast
    group through one shared socket, so more than 20 (the default) need it raised.
    """
    with throwaway_netns() as netns:
        node = Node(netns)
        if igmp_max_memberships is not None:
            subprocess.run(
                ["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
                 f"net.ipv4.igmp_max_memberships={igmp_max_memberships}"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        for name, cidr in parents.items():
            node.add_parent(name, cidr)
        yield node


@contextlib.contextmanager
def running_netwatcher(api: KubeApi, node: Node, **settings: Any) -> Iterator[Netwatcher]:
    """An in-process netwatcher managing ``node``; stopped afterwards even on failure."""
    options: dict[str, Any] = {"resync_s": 30.0, "absent_retry_s": 0.3, **settings}
    watcher = Netwatcher(api, Settings(node_name="node-a", netns=node.path, **options))
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()
