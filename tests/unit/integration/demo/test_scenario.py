"""The demo's story as data: adapted networks, Pods, expected endpoints, probes, the table."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.demo import probe, scenario
from integration.demo.scenario import Attachment, DemoService, PodPlan, Probe, ProbeResult

EXAMPLE = Path(__file__).resolve().parents[4] / "example" / "svcwatcher_demo"


def _load(folder: str) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted((EXAMPLE / folder).glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _net(name: str, **options: Any) -> dict[str, Any]:
    return {
        "kind": "DanmNet",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"NetworkID": name, "NetworkType": options.pop("type", None), "Options": options},
    }


# ---- networks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "network_type", "vlan", "notes"),
    [
        (_net("a", type="ipvlan", host_device="ens3"), "macvlan", None, ["ipvlan -> macvlan"]),
        (_net("b", host_device="ens3"), "macvlan", None, ["ipvlan -> macvlan"]),
        (_net("c", type="macvlan", host_device="ens4"), "macvlan", None, []),
        (
            _net("d", type="ipvlan", host_device="ens4", vlan=300),
            "macvlan",
            None,
            ["ipvlan -> macvlan", "vlan 300 dropped"],
        ),
        (_net("e", type="ipvlan", host_device="ens4", vxlan=600), "macvlan", None, ["ipvlan"]),
    ],
)
def test_adapt_network(
    network: dict[str, Any], network_type: str, vlan: int | None, notes: list[str]
) -> None:
    before = json.dumps(network)
    adapted, said = scenario.adapt_network(network)
    assert adapted["spec"]["NetworkType"] == network_type
    assert adapted["spec"]["Options"].get("vlan") == vlan
    assert adapted["spec"]["Options"]["host_device"] == network["spec"]["Options"]["host_device"]
    assert len(said) == len(notes)
    for note, expected in zip(said, notes, strict=True):
        assert expected in note
    assert json.dumps(network) == before, "the input is left alone"


def test_adapt_keeps_the_vxlan_of_the_example_internal_network() -> None:
    adapted = [scenario.adapt_network(d)[0] for d in _load("danmnets")]
    by_name = {(n["metadata"]["namespace"], n["metadata"]["name"]): n for n in adapted}
    assert by_name[("example-vnf", "internal")]["spec"]["Options"]["vxlan"] == 600
    assert all(n["spec"]["NetworkType"] == "macvlan" for n in adapted)
    assert all("vlan" not in n["spec"]["Options"] for n in adapted)


# ---- Pods ----------------------------------------------------------------------------------


def test_pods_from_the_example_deployments() -> None:
    pods = scenario.pods_from_deployments(_load("deployments"))
    assert [(p.namespace, p.name, p.node) for p in pods] == [
        ("external-client", "external-client-1", "danmdemo-node1"),
        ("example-vnf", "internal-processor-1", "danmdemo-node2"),
        ("example-vnf", "internal-processor-2", "danmdemo-node1"),
        ("example-vnf", "internal-processor-3", "danmdemo-node2"),
        ("example-vnf", "loadbalancer-1", "danmdemo-node1"),
        ("example-vnf", "loadbalancer-2", "danmdemo-node2"),
    ]
    lb = pods[-1]
    assert lb.labels == {"app": "loadbalancer", "vnf-type": "example-vnf"}
    assert [c["network"] for c in json.loads(lb.interfaces)] == [
        "management",
        "external",
        "internal",
    ]
    assert lb.netns == lb.container_id == "danmdemo-loadbalancer-2"
    manifest = lb.manifest()
    assert manifest["metadata"]["annotations"]["danm.k8s.io/interfaces"] == lb.interfaces
    assert manifest["spec"]["nodeName"] == "danmdemo-node2"


@pytest.mark.parametrize(
    "deployment",
    [
        {"kind": "Pod", "metadata": {"name": "x", "namespace": "n"}},
        {"kind": "Deployment", "metadata": {"name": "x", "namespace": "n"}, "spec": {}},
    ],
)
def test_pods_from_unusable_deployments_are_refused(deployment: dict[str, Any]) -> None:
    with pytest.raises(scenario.ScenarioError):
        scenario.pods_from_deployments([deployment])


def test_ready_status_is_what_kubelet_reports() -> None:
    status = scenario.ready_status("10.0.0.1", "2024-01-01T00:00:00Z")
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.0.0.1"
    assert {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"} in (
        status["conditions"]
    )


# ---- endpoints -----------------------------------------------------------------------------

LB = PodPlan("lb-1", "vnf", "danmdemo-node1", {"app": "lb", "vnf": "x"})
PROC = PodPlan("proc-1", "vnf", "danmdemo-node2", {"app": "proc", "vnf": "x"})
CLIENT = PodPlan("client-1", "other", "danmdemo-node2", {"app": "lb", "vnf": "x"})
PODS = [LB, PROC, CLIENT]
ATTACHMENTS = [
    Attachment("lb-1", "vnf", "management", "eth0", "10.0.1.1"),
    Attachment("lb-1", "vnf", "external", "ext1", "10.0.2.1"),
    Attachment("lb-1", "vnf", "internal", "int2", "10.0.3.1"),
    Attachment("proc-1", "vnf", "management", "eth0", "10.0.1.2"),
    Attachment("proc-1", "vnf", "internal", "int1", "10.0.3.2"),
    Attachment("client-1", "other", "external", "eth0", "10.0.2.50"),
]


@pytest.mark.parametrize(
    ("selector", "network", "expected"),
    [
        ({"vnf": "x"}, "external", {"10.0.2.1"}),  # only the LB has "external"; not the client
        ({"vnf": "x"}, "internal", {"10.0.3.1", "10.0.3.2"}),
        ({"app": "proc"}, "internal", {"10.0.3.2"}),
        ({"app": "proc"}, "external", set()),
        ({"app": "nobody"}, "internal", set()),
    ],
)
def test_expected_endpoints(selector: dict[str, str], network: str, expected: set[str]) -> None:
    service = DemoService("svc", "vnf", selector, network, 3868)
    assert set(scenario.expected_endpoints(service, PODS, ATTACHMENTS)) == expected


def test_attachments_from_danmeps_strip_the_prefix() -> None:
    danmep = {
        "metadata": {"namespace": "vnf", "name": "uuid"},
        "spec": {
            "Pod": "lb-1",
            "NetworkName": "internal",
            "Interface": {"Name": "int2", "Address": "10.0.3.1/24"},
        },
    }
    assert scenario.attachments_from_danmeps([danmep]) == [ATTACHMENTS[2]]


def test_published_addresses_from_endpoints_and_slices() -> None:
    endpoints = {
        "subsets": [
            {
                "addresses": [{"ip": "10.0.3.1", "targetRef": {"name": "lb-1"}}],
                "notReadyAddresses": [{"ip": "10.0.3.9"}],
            }
        ]
    }
    slices = [
        {
            "endpoints": [
                {"addresses": ["10.0.3.1"], "targetRef": {"name": "lb-1"}},
                {"addresses": ["10.0.3.9"], "conditions": {"ready": False}},
            ]
        }
    ]
    assert scenario.endpoints_addresses(endpoints) == {"10.0.3.1": "lb-1"}
    assert scenario.endpointslice_addresses(slices) == {"10.0.3.1": "lb-1"}
    assert scenario.endpoints_addresses({}) == {}


def test_the_example_services_parse() -> None:
    services = {s.name: s for s in map(scenario.parse_service, _load("services"))}
    assert services["vnf-external-svc"] == DemoService(
        "vnf-external-svc", "example-vnf", {"vnf-type": "example-vnf"}, "external", 3868
    )
    assert set(services) == set(scenario.CLIENT_OF_SERVICE)


def test_a_service_without_danm_annotations_is_refused() -> None:
    with pytest.raises(scenario.ScenarioError, match=r"danm\.k8s\.io/selector"):
        scenario.parse_service({"metadata": {"name": "s", "namespace": "n"}, "spec": {}})


# ---- probes and the table ------------------------------------------------------------------

STORY_PODS = [
    PodPlan("external-client-1", "ec", "danmdemo-node1"),
    PodPlan("loadbalancer-1", "vnf", "danmdemo-node1", {"app": "lb"}),
    PodPlan("internal-processor-1", "vnf", "danmdemo-node2", {"app": "proc"}),
]
STORY_ATTACHMENTS = [
    Attachment("external-client-1", "ec", "external", "eth0", "10.0.2.50"),
    Attachment("loadbalancer-1", "vnf", "internal", "int2", "10.0.3.1"),
    Attachment("internal-processor-1", "vnf", "management", "eth0", "10.0.1.2"),
    Attachment("internal-processor-1", "vnf", "internal", "int1", "10.0.3.2"),
]


def test_plan_probes_follows_the_published_endpoints() -> None:
    service = DemoService("vnf-internal-processor", "vnf", {"app": "proc"}, "internal", 3868)
    published = {"vnf-internal-processor": ["10.0.3.2", "10.0.1.2"]}

    probes, problems = scenario.plan_probes([service], published, STORY_PODS, STORY_ATTACHMENTS)

    assert problems == [
        "vnf-internal-processor lists 10.0.1.2, which is no selected Pod's internal address"
    ]
    first, isolation = probes
    assert (first.client.name, first.target.name, first.ifname, first.address, first.port) == (
        "loadbalancer-1",
        "internal-processor-1",
        "int1",
        "10.0.3.2",
        3868,
    )
    assert first.path == "node1->node2"
    assert (isolation.client.name, isolation.address, isolation.reachable) == (
        "external-client-1",
        "10.0.1.2",
        False,
    )


@pytest.mark.parametrize(
    ("reachable", "ping_ms", "reply", "passed"),
    [
        (True, 0.5, "internal-processor-1", True),
        (True, None, "internal-processor-1", False),
        (True, 0.5, "loadbalancer-1", False),  # someone else answered
        (True, 0.5, None, False),
        (False, None, None, True),
        (False, 0.5, None, False),
        (False, None, "internal-processor-1", False),
    ],
)
def test_probe_verdicts(
    reachable: bool, ping_ms: float | None, reply: str | None, passed: bool
) -> None:
    target = STORY_PODS[2]
    checked = Probe("svc", STORY_PODS[1], target, "int1", "10.0.3.2", 3868, reachable)
    result = scenario.probe_result(checked, {"ping_ms": ping_ms, "reply": reply, "error": ""})
    assert result.passed is passed
    (row,) = scenario.summary_rows([result])
    assert row[-1] == ("PASS" if passed else "FAIL")


def test_render_table_aligns_columns() -> None:
    table = scenario.render_table(("a", "bb"), [["xxx", "y"], ["z", "wwww"]])
    assert table.splitlines() == ["a    bb", "---  ----", "xxx  y", "z    wwww"]


def test_summary_row_shows_latency_and_port() -> None:
    checked = Probe("svc", STORY_PODS[1], STORY_PODS[2], "int1", "10.0.3.2", 3868)
    result = ProbeResult(checked, 0.123, "internal-processor-1")
    assert scenario.summary_rows([result]) == [
        [
            "svc",
            "10.0.3.2:3868",
            "internal-processor-1",
            "int1",
            "loadbalancer-1",
            "node1->node2",
            "0.12 ms",
            "ok",
            "PASS",
        ]
    ]


# ---- probe maths ---------------------------------------------------------------------------


def test_echo_request_checksum_verifies_to_zero() -> None:
    packet = probe.echo_request(0x1234, 1, b"danm-demo")
    assert probe.icmp_checksum(packet) == 0
    assert struct.unpack("!BB", packet[:2]) == (probe.ICMP_ECHO_REQUEST, 0)


@pytest.mark.parametrize(
    ("kind", "identifier", "sequence", "matches"),
    [
        (probe.ICMP_ECHO_REPLY, 7, 1, True),
        (probe.ICMP_ECHO_REQUEST, 7, 1, False),
        (probe.ICMP_ECHO_REPLY, 8, 1, False),
        (probe.ICMP_ECHO_REPLY, 7, 2, False),
    ],
)
def test_is_echo_reply(kind: int, identifier: int, sequence: int, matches: bool) -> None:
    ip_header = bytes([0x45]) + bytes(19)
    icmp = struct.pack("!BBHHH", kind, 0, 0, identifier, sequence)
    assert probe.is_echo_reply(ip_header + icmp, 7, 1) is matches
    assert probe.is_echo_reply(ip_header + icmp[:4], 7, 1) is False
