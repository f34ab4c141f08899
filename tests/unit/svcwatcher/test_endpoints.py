"""svcwatcher.endpoints: Service + Pods + DanmEps → Endpoints and EndpointSlices, as pure data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from common.model.constants import NetworkKind
from common.model.errors import ModelError
from svcwatcher import endpoints as ep
from tests.unit.svcwatcher.builders import danmep, pod, service

UID = "11111111-2222-3333-4444-555555555555"


def _state(
    svc: dict[str, Any], pods: list[dict[str, Any]], eps: list[dict[str, Any]], **kw: Any
) -> ep.DesiredState:
    parsed = ep.parse_service(svc)
    assert parsed is not None
    return ep.desired_state(
        parsed, [ep.pod_facts(p) for p in pods], [ep.danmep_facts(e) for e in eps], **kw
    )


def _ips(subset: dict[str, Any], key: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(key, [])]


def _slice_ips(state: ep.DesiredState) -> dict[str, list[tuple[str, bool]]]:
    out: dict[str, list[tuple[str, bool]]] = {}
    for body in state.slices.values():
        out.setdefault(body["addressType"], []).extend(
            (e["addresses"][0], e["conditions"]["ready"]) for e in body["endpoints"]
        )
    return out


# ------------------------------------------------------------------------------------------
# Which Services are ours, and what is wrong with the bad ones


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        (service("s", selector={"a": "b"}, network="n"), True),
        (service("s", selector={"a": "b"}, tenant_network="n"), True),
        (service("s", network="n"), True),  # NB: ours, but invalid (no selector): see below
        (service("s"), False),
        (service("s", selector={"a": "b"}, network="n", spec_selector={"a": "b"}), False),
        (service("s", selector={"a": "b"}, network="n", type="ExternalName"), False),
    ],
)
def test_is_danm_candidate(svc: dict[str, Any], expected: bool) -> None:
    assert ep.is_danm_candidate(svc) is expected


@pytest.mark.parametrize(
    ("svc", "message"),
    [
        (service("s", network="n"), "missing or empty"),
        (service("s", selector="", network="n"), "missing or empty"),
        (service("s", selector="{app: lb}", network="n"), "is not valid JSON"),
        (service("s", selector='["app"]', network="n"), "JSON object of string label values"),
        (service("s", selector='{"replicas": 3}', network="n"), "string label values"),
        (service("s", selector="{}", network="n"), "empty selector"),
        (service("s", selector={"app": "lb"}), "no network chosen"),
        (service("s", selector={"app": "lb"}, network="  "), "no network chosen"),
        (service("s", selector={"a": "b"}, network="n", ports=[{"name": "x"}]), "numeric port"),
    ],
)
def test_invalid_annotations_say_what_to_fix(svc: dict[str, Any], message: str) -> None:
    with pytest.raises(ep.InvalidDanmAnnotation, match=message):
        ep.parse_service(svc)


def test_parse_service_reads_everything_the_computation_needs() -> None:
    svc = service(
        "s",
        selector={"app": "lb"},
        network="internal",
        cluster_network="mgmt",
        ports=[
            {"name": "a", "port": 80, "protocol": "UDP", "targetPort": "http"},
            {"port": 81, "targetPort": 8081, "appProtocol": "h2c"},
            {"port": 82, "targetPort": "8082"},
            {"port": 83},
        ],
        labels={"team": "x"},
        uid=UID,
        publishNotReadyAddresses=True,
        ipFamilies=["IPv6"],
    )
    parsed = ep.parse_service(svc)
    assert parsed == ep.DanmService(
        namespace="vnf",
        name="s",
        uid=UID,
        selector={"app": "lb"},
        networks=frozenset(
            {
                ep.NetworkRef("internal", NetworkKind.DANMNET),
                ep.NetworkRef("mgmt", NetworkKind.CLUSTER_NETWORK),
            }
        ),
        ports=(
            ep.ServicePort("a", 80, "UDP", "http"),
            ep.ServicePort("", 81, "TCP", 8081, "h2c"),
            ep.ServicePort("", 82, "TCP", 8082),
            ep.ServicePort("", 83, "TCP", 83),
        ),
        labels={"team": "x"},
        headless=True,
        publish_not_ready=True,
        families=("IPv6",),
    )


def test_legacy_tolerate_unready_annotation_publishes_not_ready() -> None:
    svc = service(
        "s",
        selector={"a": "b"},
        network="n",
        extra_annotations={ep.TOLERATE_UNREADY_ANNOTATION: "true"},
    )
    parsed = ep.parse_service(svc)
    assert parsed is not None
    assert parsed.publish_not_ready


# ------------------------------------------------------------------------------------------
# Reading Pods and DanmEps


def test_pod_facts() -> None:
    raw = pod(
        "p",
        labels={"app": "lb"},
        ready=True,
        container_ports=[
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"containerPort": 9},  # NB: unnamed ports cannot be a named targetPort
        ],
        hostname="h",
        subdomain="s",
    )
    facts = ep.pod_facts(raw)
    assert facts.ready
    assert not facts.terminating
    assert facts.node_name == "node-1"
    assert facts.container_ports == (
        ep.ContainerPort("http", 8080, "TCP"),
        ep.ContainerPort("dns", 53, "UDP"),
    )
    assert (facts.hostname, facts.subdomain) == ("h", "s")
    assert ep.pod_facts(pod("p", ready=False, deleting=True)).terminating
    assert not ep.pod_facts({"metadata": {"name": "bare"}}).ready


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "expected"),
    [
        ("10.0.0.5/24", "", ("10.0.0.5", "")),
        ("", "2001:db8::5/64", ("", "2001:db8::5")),
        ("10.0.0.5/24", "2001:db8::5/64", ("10.0.0.5", "2001:db8::5")),
        ("10.0.0.5", "2001:db8::5", ("10.0.0.5", "2001:db8::5")),
        ("", "", ("", "")),
        ("not-an-ip", "10.0.0.1/24", ("", "")),  # NB: wrong family in the v6 field: dropped
    ],
)
def test_danmep_addresses_lose_their_prefix(ipv4: str, ipv6: str, expected: Any) -> None:
    facts = ep.danmep_facts(danmep("p", "n", ipv4=ipv4, ipv6=ipv6))
    assert (facts.ipv4, facts.ipv6) == expected


@pytest.mark.parametrize(
    ("api_type", "kind"),
    [
        ("", NetworkKind.DANMNET),
        ("DanmNet", NetworkKind.DANMNET),
        ("TenantNetwork", NetworkKind.TENANT_NETWORK),
        ("ClusterNetwork", NetworkKind.CLUSTER_NETWORK),
    ],
)
def test_danmep_network_kind(api_type: str, kind: NetworkKind) -> None:
    assert ep.danmep_facts(danmep("p", "n", api_type=api_type)).network == ep.NetworkRef("n", kind)


def test_malformed_danmep_is_a_model_error() -> None:
    bad = danmep("p", "n")
    bad["spec"]["Interface"]["Address"] = 5
    with pytest.raises(ModelError, match=r"spec\.Interface\.Address"):
        ep.danmep_facts(bad)


# ------------------------------------------------------------------------------------------
# The computation


LB = {"app": "loadbalancer"}


def test_only_selected_pods_on_the_chosen_network_and_kind_are_listed() -> None:
    svc = service("s", selector=LB, network="internal", uid=UID)
    pods = [
        pod("lb-1", labels={**LB, "extra": "x"}),
        pod("other", labels={"app": "processor"}),
        pod("lb-elsewhere", namespace="other-ns", labels=LB),
    ]
    eps = [
        danmep("lb-1", "internal", ipv4="10.0.0.1/24"),
        danmep("lb-1", "management", ipv4="10.9.0.1/24"),
        danmep("lb-1", "internal", ipv4="10.8.0.1/24", api_type="TenantNetwork"),
        danmep("other", "internal", ipv4="10.0.0.2/24"),
        danmep("lb-elsewhere", "internal", namespace="other-ns", ipv4="10.0.0.3/24"),
        danmep("ghost", "internal", ipv4="10.0.0.4/24"),  # NB: no such Pod
    ]
    state = _state(svc, pods, eps)
    assert state.endpoints["subsets"] == [
        {
            "addresses": [
                {
                    "ip": "10.0.0.1",
                    "nodeName": "node-1",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "vnf",
                        "name": "lb-1",
                        "uid": pods[0]["metadata"]["uid"],
                    },
                }
            ],
            "ports": [{"name": "diameter", "port": 3868, "protocol": "TCP"}],
        }
    ]
    assert _slice_ips(state) == {"IPv4": [("10.0.0.1", True)]}


def test_several_network_annotations_select_interfaces_on_any_of_them() -> None:
    svc = service("s", selector=LB, network="a", tenant_network="b", cluster_network="c")
    pods = [pod("p", labels=LB)]
    eps = [
        danmep("p", "a", ipv4="10.0.0.1/24"),
        danmep("p", "b", ipv4="10.0.0.2/24", api_type="TenantNetwork"),
        danmep("p", "c", ipv4="10.0.0.3/24", api_type="ClusterNetwork"),
        danmep("p", "a", ipv4="10.0.0.4/24", api_type="ClusterNetwork"),  # NB: wrong kind
    ]
    assert _ips(_state(svc, pods, eps).endpoints["subsets"][0]) == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]


def test_readiness_and_termination() -> None:
    svc = service("s", selector=LB, network="n")
    pods = [
        pod("ready", labels=LB),
        pod("unready", labels=LB, ready=False),
        pod("leaving", labels=LB, deleting=True),
        pod("leaving-unready", labels=LB, ready=False, deleting=True),
        pod("done", labels=LB, phase="Succeeded"),
    ]
    eps = [
        danmep("ready", "n", ipv4="10.0.0.1/24"),
        danmep("unready", "n", ipv4="10.0.0.2/24"),
        danmep("leaving", "n", ipv4="10.0.0.3/24"),
        danmep("leaving-unready", "n", ipv4="10.0.0.4/24"),
        danmep("done", "n", ipv4="10.0.0.5/24"),
    ]
    state = _state(svc, pods, eps)
    (subset,) = state.endpoints["subsets"]
    assert _ips(subset) == ["10.0.0.1"]
    assert _ips(subset, "notReadyAddresses") == ["10.0.0.2"]
    (body,) = state.slices.values()
    conditions = {e["addresses"][0]: e["conditions"] for e in body["endpoints"]}
    assert conditions == {
        "10.0.0.1": {"ready": True, "serving": True, "terminating": False},
        "10.0.0.2": {"ready": False, "serving": False, "terminating": False},
        "10.0.0.3": {"ready": False, "serving": True, "terminating": True},
        "10.0.0.4": {"ready": False, "serving": False, "terminating": True},
    }


def test_publish_not_ready_lists_everything_as_ready() -> None:
    svc = service("s", selector=LB, network="n", publishNotReadyAddresses=True)
    pods = [pod("unready", labels=LB, ready=False), pod("leaving", labels=LB, deleting=True)]
    eps = [danmep("unready", "n", ipv4="10.0.0.2/24"), danmep("leaving", "n", ipv4="10.0.0.3/24")]
    state = _state(svc, pods, eps)
    assert _ips(state.endpoints["subsets"][0]) == ["10.0.0.2", "10.0.0.3"]
    assert "notReadyAddresses" not in state.endpoints["subsets"][0]
    (body,) = state.slices.values()
    assert [e["conditions"]["ready"] for e in body["endpoints"]] == [True, True]
    assert [e["conditions"]["serving"] for e in body["endpoints"]] == [False, True]


def test_dual_stack_gives_one_slice_per_family_and_both_in_endpoints() -> None:
    svc = service("s", selector=LB, network="n", uid=UID)
    pods = [pod("a", labels=LB), pod("b", labels=LB), pod("c", labels=LB)]
    eps = [
        danmep("a", "n", ipv4="10.0.0.1/24", ipv6="2001:db8::1/64"),
        danmep("b", "n", ipv6="2001:db8::2/64"),
        danmep("c", "n", ipv4="10.0.0.3/24"),
    ]
    state = _state(svc, pods, eps)
    assert _ips(state.endpoints["subsets"][0]) == [
        "10.0.0.1",
        "10.0.0.3",
        "2001:db8::1",
        "2001:db8::2",
    ]
    assert _slice_ips(state) == {
        "IPv4": [("10.0.0.1", True), ("10.0.0.3", True)],
        "IPv6": [("2001:db8::1", True), ("2001:db8::2", True)],
    }
    for body in state.slices.values():
        assert body["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": "s",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert body["metadata"]["labels"] == {
            "kubernetes.io/service-name": "s",
            "endpointslice.kubernetes.io/managed-by": "svcwatcher.danm.k8s.io",
            "service.kubernetes.io/headless": "",
        }


def test_ip_families_of_the_service_limit_the_families() -> None:
    svc = service("s", selector=LB, network="n", ipFamilies=["IPv6"])
    state = _state(
        svc, [pod("a", labels=LB)], [danmep("a", "n", ipv4="10.0.0.1/24", ipv6="2001:db8::1/64")]
    )
    assert _slice_ips(state) == {"IPv6": [("2001:db8::1", True)]}
    assert _ips(state.endpoints["subsets"][0]) == ["2001:db8::1"]


def test_interface_without_any_address_contributes_nothing() -> None:
    svc = service("s", selector=LB, network="n")
    state = _state(svc, [pod("a", labels=LB)], [danmep("a", "n")])
    assert state.endpoints["subsets"] == []
    (placeholder,) = state.slices.values()
    assert placeholder["endpoints"] == []
    assert placeholder["addressType"] == "IPv4"


def test_stale_danmep_of_an_earlier_pod_with_the_same_name_is_ignored() -> None:
    svc = service("s", selector=LB, network="n")
    current = pod("a", labels=LB, uid="new-uid")
    eps = [
        danmep("a", "n", ipv4="10.0.0.1/24", pod_uid="old-uid"),
        danmep("a", "n", ipv4="10.0.0.2/24", pod_uid="new-uid"),
    ]
    assert _ips(_state(svc, [current], eps).endpoints["subsets"][0]) == ["10.0.0.2"]


NAMED_PORTS = [
    {"name": "web", "port": 80, "targetPort": "http"},
    {"name": "metrics", "port": 9100, "targetPort": 9100},
    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
]


def test_named_target_ports_resolve_per_pod_and_unresolvable_ones_leave_the_pod_out() -> None:
    svc = service("s", selector=LB, network="n", ports=NAMED_PORTS)
    pods = [
        pod(
            "full",
            labels=LB,
            container_ports=[
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
            ],
        ),
        # NB: "dns" exists but over TCP, so it does not match the UDP Service port.
        pod(
            "partial",
            labels=LB,
            container_ports=[
                {"name": "http", "containerPort": 8081},
                {"name": "dns", "containerPort": 53},
            ],
        ),
    ]
    eps = [danmep("full", "n", ipv4="10.0.0.1/24"), danmep("partial", "n", ipv4="10.0.0.2/24")]
    state = _state(svc, pods, eps)
    subsets = {
        tuple((p.get("name"), p["port"]) for p in s["ports"]): _ips(s)
        for s in state.endpoints["subsets"]
    }
    assert subsets == {
        (("web", 8080), ("metrics", 9100), ("dns", 5353)): ["10.0.0.1"],
        (("web", 8081), ("metrics", 9100)): ["10.0.0.2"],
    }
    slices = {
        tuple((p.get("name"), p["port"]) for p in body["ports"]): [
            e["addresses"][0] for e in body["endpoints"]
        ]
        for body in state.slices.values()
    }
    assert slices == subsets


def test_pod_resolving_no_port_is_left_out_of_endpoints_but_kept_in_a_portless_slice() -> None:
    svc = service("s", selector=LB, network="n", ports=[{"port": 80, "targetPort": "http"}])
    state = _state(svc, [pod("a", labels=LB)], [danmep("a", "n", ipv4="10.0.0.1/24")])
    assert state.endpoints["subsets"] == []
    (body,) = state.slices.values()
    assert body["ports"] == []
    assert [e["addresses"] for e in body["endpoints"]] == [["10.0.0.1"]]


@pytest.mark.parametrize(("headless", "listed"), [(True, ["10.0.0.1"]), (False, [])])
def test_service_without_ports(headless: bool, listed: list[str]) -> None:
    extra: dict[str, Any] = {} if headless else {"clusterIP": "10.96.0.10"}
    svc = service("s", selector=LB, network="n", ports=[], **extra)
    state = _state(svc, [pod("a", labels=LB)], [danmep("a", "n", ipv4="10.0.0.1/24")])
    assert [ip for s in state.endpoints["subsets"] for ip in _ips(s)] == listed


def test_hostname_only_for_pods_in_the_service_subdomain() -> None:
    svc = service("s", selector=LB, network="n")
    pods = [
        pod("a", labels=LB, hostname="alpha", subdomain="s"),
        pod("b", labels=LB, hostname="beta", subdomain="other"),
    ]
    eps = [danmep("a", "n", ipv4="10.0.0.1/24"), danmep("b", "n", ipv4="10.0.0.2/24")]
    state = _state(svc, pods, eps)
    assert [a.get("hostname") for a in state.endpoints["subsets"][0]["addresses"]] == [
        "alpha",
        None,
    ]
    (body,) = state.slices.values()
    assert [e.get("hostname") for e in body["endpoints"]] == ["alpha", None]


def test_slices_hold_at_most_100_endpoints_and_have_stable_names() -> None:
    svc = service("big", selector=LB, network="n")
    pods = [pod(f"p{i}", labels=LB) for i in range(250)]
    eps = [danmep(f"p{i}", "n", ipv4=f"10.0.{i // 200}.{i % 200 + 1}/16") for i in range(250)]
    state = _state(svc, pods, eps)
    sizes = sorted(len(body["endpoints"]) for body in state.slices.values())
    assert sizes == [50, 100, 100]
    names = sorted(state.slices)
    ports = (ep.EndpointPort("diameter", 3868, "TCP"),)
    assert names == [ep.slice_name("big", "IPv4", ports, i) for i in range(3)]
    assert names[0].startswith("big-danm-ipv4-")
    again = _state(svc, list(reversed(pods)), list(reversed(eps)))
    assert again == state


def test_endpoints_over_1000_addresses_are_truncated_ready_first() -> None:
    svc = service("big", selector=LB, network="n")
    pods = [pod(f"p{i}", labels=LB, ready=i % 2 == 0) for i in range(1100)]
    eps = [danmep(f"p{i}", "n", ipv4=f"10.0.{i // 250}.{i % 250 + 1}/16") for i in range(1100)]
    state = _state(svc, pods, eps)
    (subset,) = state.endpoints["subsets"]
    assert len(subset["addresses"]) == 550
    assert len(subset["notReadyAddresses"]) == 450
    assert state.endpoints["metadata"]["annotations"] == {
        "endpoints.kubernetes.io/over-capacity": "truncated"
    }
    assert sum(len(b["endpoints"]) for b in state.slices.values()) == 1100


def test_endpoints_metadata_marks_and_mirrors_service_labels() -> None:
    svc = service("s", selector=LB, network="n", labels={"team": "x"}, uid=UID)
    state = _state(svc, [], [])
    metadata = state.endpoints["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("s", "vnf")
    assert metadata["labels"] == {
        "team": "x",
        "service.kubernetes.io/headless": "",
        "endpointslice.kubernetes.io/skip-mirror": "true",
        "danm.k8s.io/managed-by": "svcwatcher.danm.k8s.io",
    }
    assert metadata["ownerReferences"][0]["uid"] == UID
    assert ep.is_ours_endpoints(state.endpoints)
    assert all(ep.is_ours_slice(body) for body in state.slices.values())
    assert not ep.is_ours_endpoints({"metadata": {"labels": {"team": "x"}}})
    assert not ep.is_ours_slice(
        {"metadata": {"labels": {ep.LABEL_SLICE_MANAGED_BY: "endpointslice-controller.k8s.io"}}}
    )


def test_duplicate_addresses_are_listed_once() -> None:
    svc = service("s", selector=LB, network="n")
    pods = [pod("a", labels=LB), pod("b", labels=LB)]
    eps = [danmep("a", "n", ipv4="10.0.0.1/24"), danmep("b", "n", ipv4="10.0.0.1/24")]
    assert _ips(_state(svc, pods, eps).endpoints["subsets"][0]) == ["10.0.0.1"]


# ------------------------------------------------------------------------------------------
# Change detection


def test_same_content_ignores_server_fields_and_the_trigger_time() -> None:
    svc = service("s", selector=LB, network="n", uid=UID)
    desired = _state(svc, [pod("a", labels=LB)], [danmep("a", "n", ipv4="10.0.0.1/24")])
    stored = {
        **desired.endpoints,
        "metadata": {
            **desired.endpoints["metadata"],
            "resourceVersion": "42",
            "uid": "x",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "annotations": {ep.ANNOTATION_TRIGGER_TIME: "2025-01-01T00:00:00Z"},
        },
    }
    assert ep.same_content(stored, desired.endpoints)
    (body,) = desired.slices.values()
    assert ep.same_content({**body, "ports": [{**body["ports"][0], "name": "diameter"}]}, body)
    placeholder = _state(svc, [], [])
    (empty,) = placeholder.slices.values()
    # NB: the server may answer an empty list as null or leave it out.
    assert ep.same_content({**empty, "endpoints": None, "ports": None}, empty)


@pytest.mark.parametrize(
    "change",
    [
        lambda o: o["subsets"][0]["addresses"][0].update(ip="10.0.0.9"),
        lambda o: o["metadata"]["labels"].pop("team"),
        lambda o: o["metadata"].setdefault("annotations", {}).update(x="y"),
        lambda o: o["metadata"].pop("ownerReferences"),
        lambda o: o["subsets"][0]["ports"][0].update(port=1),
    ],
)
def test_same_content_sees_real_changes(change: Any) -> None:
    svc = service("s", selector=LB, network="n", uid=UID, labels={"team": "x"})
    desired = _state(svc, [pod("a", labels=LB)], [danmep("a", "n", ipv4="10.0.0.1/24")])
    changed = copy.deepcopy(desired.endpoints)
    change(changed)
    assert not ep.same_content(changed, desired.endpoints)
