"""Node-local records: building, strict round-trip encoding, and what DEL/GC must still do."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from common.model import NetworkConnection, NetworkKind, network_from_dict
from danm.delegates import macvlan_config
from danm.plan import Backend, PodInfo, network_ref, plan_attachments
from danm.state import (
    AttachmentRecord,
    DelegateRecord,
    NodeRecord,
    Phase,
    StateRecordError,
    TeardownStep,
    decode_record,
    encode_record,
    is_finished,
    mark_created,
    mark_done,
    new_record,
    pending_teardown,
    record_file_name,
    stale_records,
    with_attachment,
)

POD = PodInfo(name="web-0", namespace="prod", uid="uid-1")
CID = "c0ffee"


def network(kind: str, name: str, network_type: str) -> Any:
    metadata = {"name": name} if kind == "ClusterNetwork" else {"name": name, "namespace": "prod"}
    return network_from_dict(
        {
            "apiVersion": "danm.k8s.io/v1",
            "kind": kind,
            "metadata": metadata,
            "spec": {
                "NetworkID": name,
                "NetworkType": network_type,
                "Options": {"host_device": "ens3", "cidr": "10.0.0.0/24"},
            },
        }
    )


def planned_record() -> NodeRecord:
    nets = [network("DanmNet", "int", "ipvlan"), network("ClusterNetwork", "ext", "macvlan")]
    table = {network_ref(n.network_kind, n.name, "prod"): n for n in nets}
    connections = [
        NetworkConnection(kind=NetworkKind.DANMNET, name="int", ip="dynamic"),
        NetworkConnection(kind=NetworkKind.CLUSTER_NETWORK, name="ext", ip="dynamic"),
    ]
    planned = plan_attachments(POD, connections, table, naming_scheme="")
    return new_record(
        container_id=CID,
        pod_uid=POD.uid,
        pod_name=POD.name,
        pod_namespace=POD.namespace,
        netns="/proc/42/ns/net",
        ifname="eth0",
        planned=planned,
    )


def full_record() -> NodeRecord:
    record = planned_record()
    record = with_attachment(record, 0, ip4="10.0.0.1/24", danmep="ep-0", phase=Phase.CREATED)
    delegate = macvlan_config(network_id="ext", master="ens3", ip4="10.0.0.2/24")
    record = with_attachment(
        record, 1, ip4="10.0.0.2/24", danmep="ep-1", delegate=DelegateRecord.of(delegate)
    )
    return mark_created(record, 1)


def test_new_record_describes_the_plan():
    record = planned_record()
    assert record.container_id == CID
    assert record.attachments == (
        AttachmentRecord(
            index=0,
            ifname="eth0",
            network_kind=NetworkKind.DANMNET,
            network_name="int",
            network_namespace="prod",
            network_type="ipvlan",
            backend=Backend.BUILTIN_IPVLAN,
            danm_ipam=True,
        ),
        AttachmentRecord(
            index=1,
            ifname="eth1",
            network_kind=NetworkKind.CLUSTER_NETWORK,
            network_name="ext",
            network_namespace="",
            network_type="macvlan",
            backend=Backend.DYNAMIC_DELEGATE,
            danm_ipam=True,
        ),
    )
    assert all(a.phase is Phase.PLANNED for a in record.attachments)


def test_round_trip_keeps_everything_including_exact_delegate_bytes():
    record = mark_done(full_record(), 1, TeardownStep.DELEGATE)
    record = dataclasses.replace(record, result={"cniVersion": "1.0.0", "interfaces": []})
    raw = encode_record(record)
    assert raw.endswith(b"\n")
    assert decode_record(raw, container_id=CID, pod_uid="uid-1") == record
    body = json.loads(raw)
    assert body["version"] == 1
    delegate = body["attachments"][1]["delegate"]
    recorded = record.attachment(1).delegate
    assert recorded is not None
    assert base64.b64decode(delegate["config"]) == recorded.config
    assert body["attachments"][1]["done"] == ["delegate"]
    assert body["attachments"][0]["network"] == {
        "kind": "DanmNet",
        "name": "int",
        "namespace": "prod",
        "type": "ipvlan",
    }


def test_planned_record_round_trip_without_result():
    record = planned_record()
    decoded = decode_record(encode_record(record))
    assert decoded == record
    assert decoded.result is None
    assert "result" not in json.loads(encode_record(record))


def test_delegate_record_converts_back():
    delegate = macvlan_config(network_id="ext", master="ens3")
    assert DelegateRecord.of(delegate).to_delegate_config() == delegate


def valid_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode_record(full_record()))
    return body


def corrupt(path: str, value: Any) -> bytes:
    body = valid_body()
    target: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return json.dumps(body).encode()


DELETE = object()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"{", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[]", r"\(top level\): expected an object, got list"),
        (corrupt("version", 2), "version: format version 2 is not supported"),
        (corrupt("version", True), "version: expected an integer, got a boolean"),
        (corrupt("containerID", DELETE), "containerID: missing"),
        (corrupt("attachments", {}), "attachments: wrong type dict"),
        (corrupt("attachments.0", "x"), r"attachments\[0\]: expected an object, got str"),
        (corrupt("attachments.0.index", -1), r"attachments\[0\].index: must not be negative"),
        (corrupt("attachments.1.index", 0), "duplicate attachment indices"),
        (corrupt("attachments.0.network.kind", "Pod"), r"network.kind: 'Pod' is not one of"),
        (corrupt("attachments.0.backend", "magic"), r"backend: 'magic' is not one of"),
        (corrupt("attachments.0.phase", "done"), r"phase: 'done' is not one of planned"),
        (corrupt("attachments.0.done", ["explode"]), "unknown teardown step 'explode'"),
        (corrupt("attachments.0.ips", None), r"attachments\[0\].ips: missing|wrong type"),
        (corrupt("attachments.1.delegate.config", "!!"), "delegate.config: not valid base64"),
        (corrupt("attachments.1.delegate.pluginTypes", []), "non-empty list of binary names"),
        (corrupt("attachments.1.delegate.pluginTypes", ["a", "b"]), "exactly one plugin type"),
        (corrupt("result", [1]), "result: wrong type list"),
    ],
)
def test_corrupt_records_name_the_source_and_field(raw, text):
    with pytest.raises(StateRecordError, match=text) as caught:
        decode_record(raw, source="/var/lib/danm/c0ffee.json")
    assert str(caught.value).startswith("corrupt DANM node record /var/lib/danm/c0ffee.json: ")


def test_record_of_another_container_or_pod_is_refused():
    raw = encode_record(full_record())
    with pytest.raises(StateRecordError, match="belongs to container 'c0ffee', not 'other'"):
        decode_record(raw, container_id="other")
    with pytest.raises(StateRecordError, match="belongs to Pod UID 'uid-1', not 'uid-2'"):
        decode_record(raw, pod_uid="uid-2")


def test_null_result_reads_as_none():
    assert decode_record(corrupt("result", None)).result is None


def steps(record: NodeRecord) -> list[tuple[int, TeardownStep]]:
    return [(action.index, action.step) for action in pending_teardown(record)]


def test_pending_teardown_order():
    assert steps(full_record()) == [
        (1, TeardownStep.DELEGATE),
        (1, TeardownStep.IPS),
        (1, TeardownStep.DANMEP),
        (0, TeardownStep.LINK),
        (0, TeardownStep.IPS),
        (0, TeardownStep.DANMEP),
    ]


def test_planned_record_without_anything_done_only_removes_links():
    # nothing reserved, no delegate config recorded: the delegate never ran
    assert steps(planned_record()) == [(0, TeardownStep.LINK)]


def test_steps_are_done_once_and_the_record_finishes():
    record = full_record()
    for action in pending_teardown(record):
        record = mark_done(record, action.index, action.step)
        # NB: decoding what would be on disk must not bring a finished step back
        record = decode_record(encode_record(record))
        assert (action.index, action.step) not in steps(record)
    assert all(a.phase is Phase.RELEASED for a in record.attachments)
    assert is_finished(record)
    assert not is_finished(full_record())


def test_addresses_are_released_once_even_if_the_danmep_step_failed():
    record = mark_done(full_record(), 0, TeardownStep.LINK)
    record = mark_done(record, 0, TeardownStep.IPS)
    assert (0, TeardownStep.IPS) not in steps(record)
    assert (0, TeardownStep.DANMEP) in steps(record)
    assert record.attachment(0).phase is Phase.CREATED


def test_unknown_attachment_index():
    with pytest.raises(StateRecordError, match="has no attachment number 7"):
        with_attachment(full_record(), 7, ip4="x")


@pytest.mark.parametrize("cid", ["", "-x", "a/b", "../x", "a b"])
def test_record_file_name_refuses_unsafe_ids(cid):
    with pytest.raises(StateRecordError, match="cannot name a node record"):
        record_file_name(cid)


def test_record_file_name():
    assert record_file_name("c0ffee.1_2-3") == "c0ffee.1_2-3.json"


def test_stale_records_for_gc():
    keep = full_record()
    other = dataclasses.replace(keep, container_id="dead")
    wrong_if = dataclasses.replace(keep, container_id="k2", ifname="net1")
    valid: list[Any] = [
        {"containerID": CID, "ifname": "eth0"},
        {"containerID": "k2", "ifname": "eth0"},
        5,
    ]
    assert stale_records([keep, other, wrong_if], valid) == [other, wrong_if]
