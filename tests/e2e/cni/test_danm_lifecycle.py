"""The hard parts of the real ``danm`` binary's life cycle: rollback, idempotency, DEL without
the API or the netns, CHECK, STATUS, GC, and many concurrent ADDs on one /24."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cni.conftest import PARENT, Node
from tests.e2e.cni.harness import (
    DANM_TIMEOUT_S,
    Cluster,
    CniOutcome,
    DanmRunner,
    allocated_offsets,
    links,
)
from tests.netns_helpers import ip, requires_netns

pytestmark = [pytest.mark.e2e, pytest.mark.netns, requires_netns]

NS = "team-b"
EMPTY = {0, 255}


def _net(cluster: Cluster, name: str = "ext", cidr: str = "10.80.0.0/24", **extra: Any) -> None:
    cluster.namespace(NS)
    options: dict[str, Any] = {"host_device": PARENT, "cidr": cidr, **extra}
    cluster.network("DanmNet", name, namespace=NS, network_type="macvlan", **options)


def _alloc(cluster: Cluster, name: str = "ext") -> set[int]:
    return allocated_offsets(cluster.get_network("DanmNet", name, NS))


def _one_pod(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], name: str
) -> tuple[str, dict[str, Any]]:
    cluster.pod(name, NS, connections=[{"network": "ext", "ip": "dynamic"}])
    netns = pod_netns()
    result = node.runner.run("ADD", container_id=f"c-{name}", netns=netns, pod=(NS, name)).ok()
    return netns, result


def test_rollback_when_one_of_three_connections_fails(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    cluster.network(
        "DanmNet",
        "broken",
        namespace=NS,
        network_type="macvlan",
        host_device="danmtnope0",
        cidr="10.81.0.0/24",
    )
    connections = [
        {"network": "ext", "ip": "dynamic"},
        {"network": "ext", "ip": "dynamic", "ip6": "none"},
        {"network": "broken", "ip": "dynamic"},
    ]
    cluster.pod("partial", NS, connections=connections)
    netns = pod_netns()

    outcome = node.runner.run("ADD", container_id="c-partial", netns=netns, pod=(NS, "partial"))

    assert outcome.returncode == 1
    body = outcome.body
    assert "team-b/partial" in body["msg"]
    assert "1 of 3" in body["msg"]
    assert "connection no.:2 (eth2)" in body["msg"]
    assert "network:broken" in body["msg"]
    assert body["details"] == "everything this ADD had created was removed again"
    assert set(links(netns)) == {"lo"}
    assert _alloc(cluster) == EMPTY
    assert _alloc(cluster, "broken") == EMPTY
    assert cluster.danmeps(NS) == []
    assert node.runner.records() == []


def test_add_is_idempotent(cluster: Cluster, node: Node, pod_netns: Callable[[], str]) -> None:
    _net(cluster)
    netns, first = _one_pod(cluster, node, pod_netns, "again")

    second = node.runner.run("ADD", container_id="c-again", netns=netns, pod=(NS, "again")).ok()

    assert second == first
    assert len(cluster.danmeps(NS)) == 1
    assert len(_alloc(cluster) - EMPTY) == 1
    node.runner.run("DEL", container_id="c-again", netns=netns, pod=(NS, "again")).ok()


def test_del_twice_and_del_of_unknown_container_succeed(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    netns, _ = _one_pod(cluster, node, pod_netns, "twice")
    for _ in range(2):
        node.runner.run("DEL", container_id="c-twice", netns=netns, pod=(NS, "twice")).ok()
    node.runner.run("DEL", container_id="c-never", netns=netns, pod=(NS, "never")).ok()
    assert _alloc(cluster) == EMPTY
    assert node.runner.records() == []


def test_del_with_the_api_down_then_the_next_del_finishes(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    netns, _ = _one_pod(cluster, node, pod_netns, "offline")

    node.api_down()
    node.runner.run("DEL", container_id="c-offline", netns=netns, pod=(NS, "offline")).ok()

    assert "eth0" not in links(netns)
    assert node.runner.records() == ["c-offline.json"]
    record = json.loads((node.runner.state_dir / "c-offline.json").read_text())
    assert record["attachments"][0]["done"] == ["delegate"]
    assert len(_alloc(cluster) - EMPTY) == 1

    node.api_up()
    node.runner.run("DEL", container_id="c-offline", netns="", pod=(NS, "offline")).ok()
    assert _alloc(cluster) == EMPTY
    assert cluster.danmeps(NS) == []
    assert node.runner.records() == []


def test_del_after_the_netns_is_gone(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    netns, _ = _one_pod(cluster, node, pod_netns, "gone")
    ip("netns", "delete", Path(netns).name)

    node.runner.run("DEL", container_id="c-gone", netns=netns, pod=(NS, "gone")).ok()
    node.runner.run("DEL", container_id="c-gone", netns="", pod=(NS, "gone")).ok()

    assert _alloc(cluster) == EMPTY
    assert cluster.danmeps(NS) == []
    assert node.runner.records() == []


def test_del_without_a_record_falls_back_to_danmeps(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    netns, _ = _one_pod(cluster, node, pod_netns, "lost")
    (node.runner.state_dir / "c-lost.json").unlink()

    node.runner.run("DEL", container_id="c-lost", netns=netns, pod=(NS, "lost")).ok()

    assert "eth0" not in links(netns)
    assert _alloc(cluster) == EMPTY
    assert cluster.danmeps(NS) == []


def test_check_passes_then_reports_a_missing_interface(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    netns, result = _one_pod(cluster, node, pod_netns, "checked")
    config = node.runner.config(prevResult=result)

    node.runner.run(
        "CHECK", config=config, container_id="c-checked", netns=netns, pod=(NS, "checked")
    ).ok()

    ip("-n", Path(netns).name, "link", "delete", "eth0")
    failed = node.runner.run(
        "CHECK", config=config, container_id="c-checked", netns=netns, pod=(NS, "checked")
    )
    assert failed.returncode == 1
    assert "team-b/checked" in failed.body["msg"]
    assert "eth0 is missing" in failed.body["details"]
    node.runner.run("DEL", container_id="c-checked", netns=netns, pod=(NS, "checked")).ok()


def test_check_runs_the_delegates_own_check_with_its_add_result(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    # NB: a MAC changed behind the Pod's back is invisible to DANM's own checks (name and
    # addresses); only the macvlan plugin's CHECK compares it with the prevResult it is given.
    _net(cluster)
    netns, result = _one_pod(cluster, node, pod_netns, "mac")
    config = node.runner.config(prevResult=result)
    node.runner.run("CHECK", config=config, container_id="c-mac", netns=netns, pod=(NS, "mac")).ok()

    ip("-n", Path(netns).name, "link", "set", "eth0", "address", "0a:58:0a:50:00:99")
    failed = node.runner.run(
        "CHECK", config=config, container_id="c-mac", netns=netns, pod=(NS, "mac")
    )
    assert failed.returncode == 1
    assert "delegate macvlan of eth0 failed its CHECK" in failed.body["details"]
    node.runner.run("DEL", container_id="c-mac", netns=netns, pod=(NS, "mac")).ok()


def test_status_is_50_when_the_api_is_unreachable(cluster: Cluster, node: Node) -> None:
    config = node.runner.config(cniVersion="1.1.0")
    node.runner.run("STATUS", config=config).ok()
    node.api_down()
    outcome = node.runner.run("STATUS", config=config)
    assert outcome.returncode == 1
    assert outcome.body["code"] == 50


def test_gc_releases_attachments_that_are_no_longer_valid(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _net(cluster)
    keep_netns, keep = _one_pod(cluster, node, pod_netns, "keep")
    drop_netns, _ = _one_pod(cluster, node, pod_netns, "drop")
    valid = [{"containerID": "c-keep", "ifname": "eth0"}]
    config = node.runner.config(cniVersion="1.1.0", **{"cni.dev/valid-attachments": valid})

    node.runner.run("GC", config=config).ok()

    assert "eth0" not in links(drop_netns)
    assert "eth0" in links(keep_netns)
    assert node.runner.records() == ["c-keep.json"]
    (ep,) = cluster.danmeps(NS)
    assert ep["spec"]["CID"] == "c-keep"
    kept_offset = int(keep["ips"][0]["address"].split("/")[0].rsplit(".", 1)[1])
    assert _alloc(cluster) == EMPTY | {kept_offset}
    node.runner.run("DEL", container_id="c-keep", netns=keep_netns, pod=(NS, "keep")).ok()


def _finish(process: subprocess.Popen[bytes], stdin: bytes) -> CniOutcome:
    out, err = process.communicate(stdin, timeout=DANM_TIMEOUT_S)
    return CniOutcome(process.returncode, out.decode(), err.decode())


def test_fifty_concurrent_adds_from_different_nodes_get_distinct_addresses(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    count = 50
    _net(cluster)
    pods = [f"p{i}" for i in range(count)]
    for name in pods:
        cluster.pod(name, NS, connections=[{"network": "ext", "ip": "dynamic"}])
    netnses = {name: pod_netns() for name in pods}
    # NB: one state directory per process = one node each; all share the network object.
    runners = {
        name: DanmRunner(node.host, node.runner.kubeconfig, tmp_path / f"node-{name}")
        for name in pods
    }

    def run_all(command: str) -> dict[str, CniOutcome]:
        started = {
            name: (
                runners[name].start(
                    command, container_id=f"c-{name}", netns=netnses[name], pod=(NS, name)
                ),
                json.dumps(runners[name].config(delegateTimeoutSeconds=120)).encode(),
            )
            for name in pods
        }
        return {name: _finish(proc, stdin) for name, (proc, stdin) in started.items()}

    added = run_all("ADD")
    addresses = [added[name].ok()["ips"][0]["address"] for name in pods]

    assert len(set(addresses)) == count
    offsets = {int(a.split("/")[0].rsplit(".", 1)[1]) for a in addresses}
    assert _alloc(cluster) == EMPTY | offsets
    assert len(cluster.danmeps(NS)) == count

    removed = run_all("DEL")
    for name in pods:
        removed[name].ok()
    assert _alloc(cluster) == EMPTY
    assert cluster.danmeps(NS) == []
