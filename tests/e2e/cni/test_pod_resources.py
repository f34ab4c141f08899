"""SR-IOV device IDs through the real ``danm`` ADD path, taken from a kubelet Pod Resources API.

A real gRPC server (``FakeKubelet``, grpcio) plays the kubelet's ``PodResourcesLister`` on a
unix socket; a checkpoint file with DIFFERENT IDs for the same Pod sits next to it, so the ID
the delegate receives shows which source ``danm`` used. The ``sriov`` delegate is a stand-in
that records its config and makes a veth named like the Pod interface in the Pod namespace (no
VFs on a test host); everything else (API, IPAM, DanmEp, node record, DEL) is the real thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.io.podresources import ContainerDevices, ContainerResources, PodResources
from tests.e2e.cni.conftest import Node
from tests.e2e.cni.harness import DANM_TIMEOUT_S, Cluster, CniOutcome, links
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.e2e, pytest.mark.netns, requires_netns]

grpc_tests = pytest.importorskip("tests.unit.common.io.test_podresources_grpc")

NS = "team-sriov"
POOL = "nokia.k8s.io/sriov_ens1f0"
API_IDS = ("0000:af:06.2", "0000:af:06.1")
CHECKPOINT_IDS = ["0000:af:0a.0", "0000:af:0a.1"]

FAKE_SRIOV = '''#!{python}
"""Stand-in sriov plugin: records its stdin config, makes/removes a veth in the Pod netns."""
import json, os, subprocess, sys

config = json.load(sys.stdin)
command = os.environ["CNI_COMMAND"]
ifname = os.environ.get("CNI_IFNAME", "")
netns = os.environ.get("CNI_NETNS", "")
with open(os.path.join({record!r}, command + "-" + ifname + ".json"), "w") as out:
    json.dump(config, out)
if command == "ADD":
    subprocess.run(
        ["nsenter", "--net=" + netns, "ip", "link", "add", ifname, "type", "veth",
         "peer", "name", "vf-" + ifname],
        check=True,
    )
    json.dump(
        {{"cniVersion": config["cniVersion"],
          "interfaces": [{{"name": ifname, "sandbox": netns}}]}},
        sys.stdout,
    )
elif command == "DEL" and netns and os.path.exists(netns):
    subprocess.run(["nsenter", "--net=" + netns, "ip", "link", "del", ifname], check=False)
'''


def _sriov_setup(cluster: Cluster, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The SR-IOV network, the Pod, the fake plugin dir and its record dir, and the Pod."""
    cluster.namespace(NS)
    cluster.network("DanmNet", "sriov-a", namespace=NS, network_type="sriov", device_pool=POOL)
    pod = cluster.pod(
        "vnf-0",
        NS,
        connections=[{"network": "sriov-a"}, {"network": "sriov-a"}],
    )
    bin_dir, record_dir = tmp_path / "fake-bin", tmp_path / "sriov-calls"
    bin_dir.mkdir()
    record_dir.mkdir()
    plugin = bin_dir / "sriov"
    plugin.write_text(FAKE_SRIOV.format(python=sys.executable, record=str(record_dir)))
    plugin.chmod(0o755)
    return bin_dir, record_dir, pod


def _checkpoint(path: Path, pod_uid: str) -> None:
    entry = {
        "PodUID": pod_uid,
        "ContainerName": "app",
        "ResourceName": POOL,
        "DeviceIDs": {"0": CHECKPOINT_IDS},
        "AllocResp": "",
    }
    path.write_text(json.dumps({"Data": {"PodDeviceEntries": [entry]}, "Checksum": 0}))


def _run(
    node: Node, bin_dir: Path, command: str, config: dict[str, Any], **kwargs: Any
) -> CniOutcome:
    argv, env = node.runner.command(command, **kwargs)
    env["CNI_PATH"] = f"{bin_dir}{os.pathsep}{env['CNI_PATH']}"
    done = subprocess.run(
        argv,
        input=json.dumps(config).encode(),
        env=env,
        capture_output=True,
        timeout=DANM_TIMEOUT_S,
        check=False,
    )
    return CniOutcome(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode())


def _device_ids_given(record_dir: Path) -> dict[str, str]:
    """Interface name → the ``deviceID`` of the sriov config ADD was delegated with."""
    return {
        path.stem.removeprefix("ADD-"): json.loads(path.read_text())["deviceID"]
        for path in record_dir.glob("ADD-*.json")
    }


@pytest.mark.parametrize("get_mode", ["served", "disabled"])
def test_device_ids_come_from_the_pod_resources_api(
    cluster: Cluster,
    node: Node,
    pod_netns: Callable[[], str],
    tmp_path: Path,
    get_mode: str,
) -> None:
    bin_dir, record_dir, pod = _sriov_setup(cluster, tmp_path)
    checkpoint = tmp_path / "kubelet_internal_checkpoint"
    _checkpoint(checkpoint, pod["metadata"]["uid"])
    other_pod = PodResources(
        "vnf-0", "elsewhere", (ContainerResources("app", (ContainerDevices(POOL, ("x",)),)),)
    )
    ours = PodResources(
        "vnf-0", NS, (ContainerResources("app", (ContainerDevices(POOL, API_IDS),)),)
    )
    kubelet = grpc_tests.FakeKubelet(tmp_path / "kubelet.sock", [other_pod, ours], get=get_mode)
    try:
        config = node.runner.config(
            podResourcesSocket=kubelet.socket, checkpointFile=str(checkpoint)
        )
        netns = pod_netns()
        result = _run(
            node, bin_dir, "ADD", config, container_id="c-vnf", netns=netns, pod=(NS, "vnf-0")
        ).ok()
        calls = list(kubelet.calls)
    finally:
        kubelet.stop()

    assert calls == (["Get"] if get_mode == "served" else ["Get", "List"])
    first, second = (iface["name"] for iface in result["interfaces"])
    assert first == "eth0"
    # The API's IDs, sorted, one per connection in annotation order; none from the checkpoint.
    given = _device_ids_given(record_dir)
    assert given == {first: min(API_IDS), second: max(API_IDS)}
    endpoints = {ep["spec"]["Interface"]["Name"]: ep for ep in cluster.danmeps(NS)}
    assert {n: ep["spec"]["Interface"]["DeviceID"] for n, ep in endpoints.items()} == given
    assert {first, second} <= set(links(netns))

    _run(node, bin_dir, "DEL", config, container_id="c-vnf", netns=netns, pod=(NS, "vnf-0")).ok()
    assert cluster.danmeps(NS) == []
    assert node.runner.records() == []


def test_absent_socket_falls_back_to_the_checkpoint(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    bin_dir, record_dir, pod = _sriov_setup(cluster, tmp_path)
    checkpoint = tmp_path / "kubelet_internal_checkpoint"
    _checkpoint(checkpoint, pod["metadata"]["uid"])
    config = node.runner.config(
        podResourcesSocket=str(tmp_path / "no-kubelet.sock"), checkpointFile=str(checkpoint)
    )
    netns = pod_netns()

    result = _run(
        node, bin_dir, "ADD", config, container_id="c-vnf", netns=netns, pod=(NS, "vnf-0")
    ).ok()

    first, second = (iface["name"] for iface in result["interfaces"])
    assert _device_ids_given(record_dir) == {first: CHECKPOINT_IDS[0], second: CHECKPOINT_IDS[1]}
    _run(node, bin_dir, "DEL", config, container_id="c-vnf", netns=netns, pod=(NS, "vnf-0")).ok()


def test_failing_api_and_missing_checkpoint_name_both_sources(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    bin_dir, _, _ = _sriov_setup(cluster, tmp_path)
    kubelet = grpc_tests.FakeKubelet(
        tmp_path / "kubelet.sock", [], error=(grpc_tests.grpc.StatusCode.UNAVAILABLE, "restarting")
    )
    missing = tmp_path / "no-checkpoint"
    try:
        config = node.runner.config(podResourcesSocket=kubelet.socket, checkpointFile=str(missing))
        outcome = _run(
            node, bin_dir, "ADD", config, container_id="c-vnf", netns=pod_netns(), pod=(NS, "vnf-0")
        )
    finally:
        kubelet.stop()

    assert outcome.returncode == 1
    body = outcome.body
    assert body["msg"] == f"cannot pick devices for Pod {NS}/vnf-0"
    assert f"kubelet checkpoint {missing}: does not exist" in body["details"]
    assert (
        f"kubelet Pod Resources API {kubelet.socket}: Get failed with gRPC status UNAVAILABLE: "
        "restarting" in body["details"]
    )
    assert node.runner.records() == []
