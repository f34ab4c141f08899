"""Where ADD takes SR-IOV device IDs from: the Pod Resources API first, the checkpoint second.

``choose_devices`` is driven with fake node readers; each test says which source answered,
which one must not be touched, and what the error names when neither gives enough devices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from common.cni.types import CniError
from common.io.devices import DeviceReadError
from common.io.podresources import DEFAULT_TIMEOUT_S, PodResourcesError
from danm.add import NodeFiles, choose_devices
from danm.config import DanmConfig, parse_config
from danm.plan import PlannedAttachment, PodInfo

POOL = "nokia.k8s.io/sriov_ens1f0"
SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
CHECKPOINT = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
POD = PodInfo(name="web-0", namespace="team-a", uid="uid-1")


@dataclass(frozen=True)
class _Planned:
    index: int
    device_pool: str


def planned(*pools: str) -> Sequence[PlannedAttachment]:
    # NB: choose_devices reads only index and device_pool of a planned attachment.
    return cast(Sequence[PlannedAttachment], [_Planned(i, p) for i, p in enumerate(pools)])


def api_pod(*ids: str, resource: str = POOL) -> dict[str, Any]:
    return {
        "name": POD.name,
        "namespace": POD.namespace,
        "containers": [
            {"name": "app", "devices": [{"resourceName": resource, "deviceIds": list(ids)}]}
        ],
    }


def checkpoint(*ids: str) -> bytes:
    entry = {
        "PodUID": POD.uid,
        "ContainerName": "app",
        "ResourceName": POOL,
        "DeviceIDs": list(ids),
    }
    return json.dumps({"Data": {"PodDeviceEntries": [entry]}, "Checksum": 1}).encode()


class Node:
    """Fake node readers: an API answer (or error) and checkpoint bytes (or error)."""

    def __init__(
        self,
        *,
        api: Mapping[str, Any] | Exception | None = None,
        checkpoint: bytes | Exception | None = None,
    ) -> None:
        self.api = api
        self.checkpoint = checkpoint
        self.api_calls: list[tuple[str, str, str, float]] = []
        self.checkpoint_reads: list[str] = []

    def _api(
        self, socket: str, namespace: str, name: str, timeout: float
    ) -> Mapping[str, Any] | None:
        self.api_calls.append((socket, namespace, name, timeout))
        if isinstance(self.api, Exception):
            raise self.api
        return self.api

    def _checkpoint(self, path: str) -> bytes | None:
        self.checkpoint_reads.append(path)
        if isinstance(self.checkpoint, Exception):
            raise self.checkpoint
        return self.checkpoint

    def files(self) -> NodeFiles:
        return NodeFiles(
            read_file=lambda _: None,
            read_checkpoint=self._checkpoint,
            pf_name=lambda _: "",
            pod_resources=self._api,
        )

    def choose(
        self, *pools: str, socket: str = SOCKET, checkpoint_file: str = CHECKPOINT
    ) -> dict[int, str]:
        return choose_devices(
            planned(*pools), POD, checkpoint_file, self.files(), pod_resources_socket=socket
        )


def test_api_is_the_source_when_it_answers():
    node = Node(api=api_pod("0000:af:06.1", "0000:af:06.0"), checkpoint=checkpoint("other"))
    assert node.choose(POOL, POOL) == {0: "0000:af:06.0", 1: "0000:af:06.1"}
    assert node.api_calls == [(SOCKET, "team-a", "web-0", DEFAULT_TIMEOUT_S)]
    assert node.checkpoint_reads == []


@pytest.mark.parametrize(
    ("api", "note"),
    [
        (PodResourcesError(SOCKET, "the socket does not exist", absent=True), "does not exist"),
        (PodResourcesError(SOCKET, "List: no answer before the deadline"), "no answer"),
        (None, "does not list the Pod"),
        ({"containers": "nonsense"}, "'containers' must be a list"),
    ],
)
def test_checkpoint_is_the_fallback(api, note):
    node = Node(api=api, checkpoint=checkpoint("0000:af:06.3"))
    assert node.choose(POOL) == {0: "0000:af:06.3"}
    assert node.checkpoint_reads == [CHECKPOINT]
    # When the fallback cannot serve either, the error names both sources.
    short = Node(api=api, checkpoint=checkpoint("0000:af:06.3"))
    with pytest.raises(CniError) as caught:
        short.choose(POOL, POOL)
    details = caught.value.details
    assert "devicePool nokia.k8s.io/sriov_ens1f0 is exhausted" in details
    assert f"device IDs from the kubelet checkpoint {CHECKPOINT}" in details
    assert f"kubelet Pod Resources API {SOCKET}" in details
    assert note in details


def test_api_switched_off_reads_only_the_checkpoint():
    node = Node(api=AssertionError("must not be called"), checkpoint=checkpoint("d0"))
    assert node.choose(POOL, socket="") == {0: "d0"}
    assert node.api_calls == []


def test_no_sriov_connection_touches_no_source():
    node = Node(api=AssertionError("no"), checkpoint=DeviceReadError("no"))
    assert node.choose("", "") == {}
    assert (node.api_calls, node.checkpoint_reads) == ([], [])


def test_api_answer_without_the_pool_is_final_and_names_both_sources():
    node = Node(api=api_pod("g0", resource="nvidia.com/gpu"), checkpoint=checkpoint("d0"))
    with pytest.raises(CniError) as caught:
        node.choose(POOL)
    assert caught.value.msg == "cannot pick devices for Pod team-a/web-0"
    assert caught.value.details == (
        "failed to retrieve resources of DevicePool nokia.k8s.io/sriov_ens1f0 for the Pod "
        "team-a/web-0: it holds devices only of nvidia.com/gpu; request "
        "nokia.k8s.io/sriov_ens1f0 in a container's resources.limits "
        f"(device IDs from the kubelet Pod Resources API {SOCKET}; "
        f"kubelet checkpoint {CHECKPOINT}: not read)"
    )
    assert node.checkpoint_reads == []


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (
            DeviceReadError(f"cannot read kubelet checkpoint {CHECKPOINT}: Permission denied"),
            "Permission denied",
        ),
        (b"{not json", "not valid JSON"),
    ],
)
def test_unreadable_checkpoint_after_api_failure_names_both(content, text):
    node = Node(
        api=PodResourcesError(SOCKET, "List failed with gRPC status UNAVAILABLE"),
        checkpoint=content,
    )
    with pytest.raises(CniError) as caught:
        node.choose(POOL)
    assert text in caught.value.details
    assert f"kubelet checkpoint {CHECKPOINT}" in caught.value.details
    assert f"kubelet Pod Resources API {SOCKET}: List failed with gRPC status UNAVAILABLE" in (
        caught.value.details
    )


@pytest.mark.parametrize(
    ("checkpoint_file", "content", "text"),
    [
        (CHECKPOINT, None, f"kubelet checkpoint {CHECKPOINT}: does not exist"),
        ("", b"", "kubelet checkpoint: not configured"),
    ],
)
def test_no_source_at_all(checkpoint_file, content, text):
    node = Node(
        api=PodResourcesError(SOCKET, "the socket does not exist", absent=True), checkpoint=content
    )
    with pytest.raises(CniError) as caught:
        node.choose(POOL, checkpoint_file=checkpoint_file)
    assert "there were no Devices allocated for the Pod team-a/web-0" in caught.value.details
    assert text in caught.value.details
    assert f"kubelet Pod Resources API {SOCKET}: the socket does not exist" in caught.value.details


def test_the_real_lookup_falls_back_when_the_socket_is_absent(tmp_path: Path):
    path = tmp_path / "checkpoint"
    path.write_bytes(checkpoint("0000:af:06.7"))

    def read(p: str) -> bytes | None:
        return Path(p).read_bytes()

    # NB: NodeFiles' default pod_resources is the real client.
    files = NodeFiles(read_file=read, read_checkpoint=read, pf_name=lambda _: "")
    chosen = choose_devices(
        planned(POOL), POD, str(path), files, pod_resources_socket=str(tmp_path / "none.sock")
    )
    assert chosen == {0: "0000:af:06.7"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, SOCKET),
        ({"podResourcesSocket": ""}, ""),
        ({"podResourcesSocket": "/run/kubelet/pr.sock"}, "/run/kubelet/pr.sock"),
    ],
)
def test_config_key(config, expected):
    base = {"cniVersion": "1.0.0", "name": "danm", "type": "danm"}
    assert parse_config({**base, **config}, {}).pod_resources_socket == expected
    assert DanmConfig().pod_resources_socket == SOCKET


@pytest.mark.parametrize("value", ["relative.sock", 5])
def test_config_key_errors(value):
    with pytest.raises(CniError, match="podResourcesSocket"):
        parse_config({"podResourcesSocket": value}, {})
