"""Fixtures of the ``danm`` end-to-end tier: an API stand-in with the DANM CRDs, a throwaway
host namespace with a veth parent the API is reachable from, Pod namespaces, and a runner.

Runs only as root with ``ip`` available; everything it creates is removed even on failure
(namespaces by ``throwaway_netns``, leftovers by the session sweep of ``danmt-`` names).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.io.kube import KubernetesApi
from tests.e2e.cni.harness import Cluster, DanmRunner, NetnsForwarder
from tests.kubeapi.testing import RunningKubeApi
from tests.netns_helpers import (
    add_address,
    create_netns,
    create_veth_pair,
    delete_netns,
    kernel_tests_unavailable,
    remove_leftovers,
    throwaway_netns,
)

PARENT = "parent0"
PEER = "peer0"


@pytest.fixture(scope="session", autouse=True)
def _sweep_leftover_namespaces() -> Iterator[None]:
    yield
    if kernel_tests_unavailable() is None:
        remove_leftovers()


@dataclass
class Node:
    """One simulated node: its host namespace (with ``parent0``) and the API forwarder."""

    host: str
    forwarder: NetnsForwarder | None
    runner: DanmRunner
    api_address: tuple[str, int]

    def api_down(self) -> None:
        """Make the API unreachable from the node (connections refused)."""
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder = None

    def api_up(self) -> None:
        if self.forwarder is None:
            self.forwarder = NetnsForwarder(self.host, self.api_address)


@pytest.fixture
def cluster(kubeapi: RunningKubeApi) -> Iterator[Cluster]:
    api = KubernetesApi.from_api_client(kubeapi.api_client())
    try:
        created = Cluster(api)
        created.install_crds()
        yield created
    finally:
        api.close()


@pytest.fixture
def node(kubeapi: RunningKubeApi, cluster: Cluster, tmp_path: Path) -> Iterator[Node]:
    reason = kernel_tests_unavailable()
    if reason:
        pytest.skip(reason)
    url = urlparse(kubeapi.url)
    with throwaway_netns() as host, throwaway_netns() as peer:
        create_veth_pair(host, PARENT, PEER, peer_netns=peer)
        add_address(host, PARENT, "10.90.0.254/24")
        address = (url.hostname or "127.0.0.1", url.port or 443)
        runner = DanmRunner(host, kubeapi.kubeconfig_path, tmp_path / "node")
        runner.cni_dir.mkdir(parents=True)
        created = Node(host, NetnsForwarder(host, address), runner, address)
        try:
            yield created
        finally:
            created.api_down()


@pytest.fixture
def pod_netns() -> Iterator[Callable[[], str]]:
    """A factory of throwaway Pod namespaces (paths), all deleted at the end."""
    created: list[str] = []

    def make() -> str:
        name = create_netns()
        created.append(name)
        return f"/var/run/netns/{name}"

    try:
        yield make
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                delete_netns(name)
