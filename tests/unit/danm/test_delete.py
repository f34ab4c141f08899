"""DEL, CHECK, STATUS and GC of ``danm`` against the recording fakes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from common.cni.types import CniError
from common.io.cniexec import PluginNotFound
from common.io.netlink import NetlinkFailure
from common.model.resources import DANMEPS, DANMNETS, PODS
from danm.check import CheckRequest, cmd_check
from danm.delete import DelRequest, cmd_del
from danm.gc import GcRequest, cmd_gc, valid_attachments
from danm.state import TeardownStep, with_attachment
from danm.status import cmd_status
from tests.unit.danm.fakes import FakeKube, plugin_failure
from tests.unit.danm.test_add import NETNS, NS, World, _macvlan, _network, _pod


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _del(world: World, container_id: str = "c1", netns: str = NETNS, api: bool = True) -> None:
    cmd_del(
        DelRequest(
            container_id=container_id,
            netns=netns,
            ifname="eth0",
            cni_args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NS};K8S_POD_NAME=p1",
            cni_path=("/opt/cni/bin",),
        ),
        api=world.kube if api else None,
        netlink=world.netlink,
        exec_=world.exec,
        store=world.store,
        timeout_s=5,
    )


def _added(world: World, connections: list[dict[str, object]] | None = None) -> None:
    _macvlan(world)
    world.kube.put(PODS, _pod(connections or [{"network": "ext", "ip": "dynamic"}]))
    world.add()


def test_del_undoes_delegate_ips_and_danmep_then_forgets_the_record(world: World) -> None:
    _added(world)

    _del(world)

    (call,) = world.exec.of("DEL")
    assert (call.plugin, call.request.ifname, call.request.netns) == ("macvlan", "eth0", NETNS)
    assert world.kube.of(DANMEPS) == []
    assert world.alloc() == {0, 255}
    assert world.store.container_ids() == []
    _del(world)
    assert len(world.exec.of("DEL")) == 1


def test_del_with_the_api_down_keeps_the_rest_for_the_next_del(world: World) -> None:
    _added(world)
    world.kube.down = True

    _del(world)

    record = world.store.load("c1")
    assert record is not None
    assert record.attachments[0].done == {TeardownStep.DELEGATE}
    world.kube.down = False
    _del(world, netns="")
    assert len(world.exec.of("DEL")) == 1
    assert world.alloc() == {0, 255}
    assert world.kube.of(DANMEPS) == []
    assert world.store.container_ids() == []


def test_del_without_any_api_client_still_tears_the_interface_down(world: World) -> None:
    _added(world)
    _del(world, api=False)
    assert len(world.exec.of("DEL")) == 1
    assert world.store.container_ids() == ["c1"]


def test_a_failing_delegate_del_fails_del_and_keeps_the_address(world: World) -> None:
    _added(world)
    world.exec.failures[("macvlan", "DEL")] = plugin_failure("macvlan", "DEL", "busy")

    with pytest.raises(CniError) as caught:
        _del(world)

    assert caught.value.code == 11
    assert "busy" in caught.value.details
    assert len(world.alloc() - {0, 255}) == 1
    assert len(world.kube.of(DANMEPS)) == 1


def test_a_missing_delegate_binary_does_not_wedge_del(world: World) -> None:
    _added(world)
    world.exec.failures[("macvlan", "DEL")] = PluginNotFound("macvlan", "DEL", "not found")
    _del(world)
    assert world.store.container_ids() == ["c1"]


def test_ipvlan_del_tolerates_a_vanished_netns(world: World) -> None:
    world.kube.put(DANMNETS, _network("DanmNet", "ipv", "ipvlan", host_device="parent0"))
    world.kube.put(PODS, _pod([{"network": "ipv"}]))
    world.add()
    world.netlink.gone_netns.add(NETNS)

    _del(world)

    assert world.store.container_ids() == []
    assert world.kube.of(DANMEPS) == []


def test_ipvlan_del_link_failure_is_local(world: World) -> None:
    world.kube.put(DANMNETS, _network("DanmNet", "ipv", "ipvlan", host_device="parent0"))
    world.kube.put(PODS, _pod([{"network": "ipv"}]))
    world.add()
    world.netlink.fail["delete_link"] = NetlinkFailure("delete link eth0", "EBUSY")
    with pytest.raises(CniError):
        _del(world)


def test_del_without_a_record_uses_the_danmeps_of_the_container(world: World) -> None:
    _added(world)
    Path(world.store.directory, "c1.json").unlink()

    _del(world)

    assert world.kube.of(DANMEPS) == []
    assert world.alloc() == {0, 255}


def test_check_sees_the_interfaces_and_the_reservations(world: World) -> None:
    _added(world)
    record = world.store.load("c1")
    assert record is not None
    world.netlink.links[NETNS]["eth0"] = [record.attachments[0].ip4]
    request = CheckRequest(container_id="c1", netns=NETNS)

    cmd_check(request, api=world.kube, netlink=world.netlink, store=world.store)

    (net,) = world.kube.of(DANMNETS)
    net["spec"]["Options"]["alloc"] = ""
    world.kube.put(DANMNETS, net)
    del world.netlink.links[NETNS]["eth0"]
    with pytest.raises(CniError) as caught:
        cmd_check(request, api=world.kube, netlink=world.netlink, store=world.store)
    assert "eth0 is missing" in caught.value.details
    assert "no longer reserved" in caught.value.details
    assert "ns1/p1" in caught.value.msg


def test_check_of_an_unknown_container(world: World) -> None:
    with pytest.raises(CniError) as caught:
        cmd_check(
            CheckRequest(container_id="zz", netns=NETNS),
            api=world.kube,
            netlink=world.netlink,
            store=world.store,
        )
    assert caught.value.code == 3


def test_status(tmp_path: Path) -> None:
    kube = FakeKube()
    cmd_status(api=kube, api_problem="", state_dir=str(tmp_path / "s"))
    kube.down = True
    with pytest.raises(CniError) as caught:
        cmd_status(api=kube, api_problem="", state_dir=str(tmp_path / "s"))
    assert caught.value.code == 50
    with pytest.raises(CniError) as caught:
        cmd_status(api=None, api_problem="no kubeconfig", state_dir=str(tmp_path / "s"))
    assert (caught.value.code, caught.value.details) == (50, "no kubeconfig")


def test_gc_tears_down_invalid_records_and_orphan_danmeps(world: World) -> None:
    _macvlan(world)
    for name in ("keep", "drop"):
        world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}], name=name))
        world.add(f"c-{name}", name)
    orphan = json.loads(json.dumps(world.kube.of(DANMEPS)[0]))
    orphan["metadata"]["name"] = "orphan"
    orphan["spec"]["CID"] = "c-orphan"
    orphan["spec"]["Interface"]["Address"] = "10.0.0.77/24"
    world.kube.put(DANMEPS, orphan)
    valid = valid_attachments(
        {"cni.dev/valid-attachments": [{"containerID": "c-keep", "ifname": "eth0"}]}
    )

    cmd_gc(
        GcRequest(valid=valid, cni_path=("/opt/cni/bin",), hostname="node-1", timeout_s=5),
        api=world.kube,
        netlink=world.netlink,
        exec_=world.exec,
        store=world.store,
    )

    assert world.store.container_ids() == ["c-keep"]
    assert [ep["spec"]["CID"] for ep in world.kube.of(DANMEPS)] == ["c-keep"]
    assert len(world.alloc() - {0, 255}) == 1


def test_valid_attachments_reads_both_spellings_and_refuses_garbage() -> None:
    both = {
        "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}],
        "cni.dev/attachments": [{"containerID": "b", "ifname": "eth0"}],
    }
    assert [v["containerID"] for v in valid_attachments(both)] == ["a", "b"]
    with pytest.raises(CniError):
        valid_attachments({"cni.dev/valid-attachments": "x"})


def test_del_gives_the_delegate_its_own_add_result_as_prev_result(world: World) -> None:
    _added(world)
    record = world.store.load("c1")
    assert record is not None
    recorded = record.attachments[0].delegate
    assert recorded is not None
    assert recorded.result is not None
    (add,) = world.exec.of("ADD")
    assert recorded.result["interfaces"][0]["name"] == add.request.ifname

    _del(world)

    (call,) = world.exec.of("DEL")
    assert call.config["prevResult"] == recorded.result


def test_del_of_a_delegate_whose_add_never_answered_goes_without_prev_result(
    world: World,
) -> None:
    _added(world)
    record = world.store.load("c1")
    assert record is not None
    delegate = record.attachments[0].delegate
    assert delegate is not None
    world.store.save(
        with_attachment(record, 0, delegate=dataclasses.replace(delegate, result=None))
    )

    _del(world)

    (call,) = world.exec.of("DEL")
    assert "prevResult" not in call.config


def test_check_asks_the_delegate_with_its_add_result(world: World) -> None:
    _added(world)
    record = world.store.load("c1")
    assert record is not None
    world.netlink.links[NETNS]["eth0"] = [record.attachments[0].ip4]
    request = CheckRequest(container_id="c1", netns=NETNS, cni_path=("/opt/cni/bin",))

    cmd_check(request, api=world.kube, netlink=world.netlink, store=world.store, exec_=world.exec)

    (call,) = world.exec.of("CHECK")
    assert call.plugin == "macvlan"
    assert call.config["prevResult"] == record.attachments[0].delegate.result  # type: ignore[union-attr]
    world.exec.failures[("macvlan", "CHECK")] = plugin_failure("macvlan", "CHECK", "mac differs")
    with pytest.raises(CniError) as caught:
        cmd_check(
            request, api=world.kube, netlink=world.netlink, store=world.store, exec_=world.exec
        )
    assert "delegate macvlan of eth0 failed its CHECK" in caught.value.details
    assert "mac differs" in caught.value.details
