"""svcwatcher (in-process) against the API stand-in: Pods and DanmEps in, Endpoints/slices out."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from common.model.resources import (
    DANMEPS,
    DANMNETS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    NAMESPACES,
    PODS,
    SERVICES,
)
from svcwatcher import endpoints as ep
from svcwatcher.controller import SvcWatcher
from tests.e2e.svcwatcher.harness import REPO, Cluster, View, ready_v4
from tests.unit.svcwatcher.builders import danmep, pod, service

pytestmark = pytest.mark.e2e

DEMO = REPO / "example" / "svcwatcher_demo"
LB = {"app": "lb"}


def _documents(folder: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _ips(view: View) -> frozenset[str]:
    return view.ready | view.not_ready


def _exactly(ips: Iterable[str], *, both_forms: bool) -> Callable[[View], bool]:
    """A check: exactly ``ips`` ready in the Endpoints and (as ready) in the slices."""
    wanted = frozenset(ips)

    def check(view: View) -> bool:
        in_slices = view.slice_ips if both_forms else ready_v4(view)
        return view.ready == wanted and in_slices == wanted

    return check


def _one_slice(check: Callable[[View], bool]) -> Callable[[View], bool]:
    return lambda view: check(view) and len(view.slice_objects) == 1


# ------------------------------------------------------------------------------------------
# The README demo


class DemoIpam:
    """Hands out addresses per network the way DANM's IPAM would (pool start upwards)."""

    POOLS: ClassVar[dict[tuple[str, str], tuple[int, int, int]]] = {
        ("example-vnf", "management"): (10, 10, 100),
        ("example-vnf", "internal"): (30, 1, 254),
        ("example-vnf", "external"): (20, 10, 40),
        ("external-client", "external"): (20, 50, 60),
    }

    def __init__(self) -> None:
        self.next: dict[tuple[str, str], int] = {}

    def allocate(self, namespace: str, network: str) -> str:
        third, first, last = self.POOLS[(namespace, network)]
        host = self.next.get((namespace, network), first)
        assert host <= last, f"pool of {network} exhausted"
        self.next[(namespace, network)] = host + 1
        return f"10.100.{third}.{host}/24"


def _deploy_demo(cluster: Cluster) -> dict[tuple[str, str], dict[str, str]]:
    """Apply the demo in the README's order; return {(ns, pod): {network: ip}}."""
    for doc in _documents(DEMO / "namespaces"):
        cluster.create(NAMESPACES, doc)
    for doc in _documents(DEMO / "danmnets"):
        cluster.create(DANMNETS, doc)
    ipam = DemoIpam()
    addresses: dict[tuple[str, str], dict[str, str]] = {}
    for deployment in _documents(DEMO / "deployments"):
        namespace = deployment["metadata"]["namespace"]
        template = deployment["spec"]["template"]
        connections = json.loads(template["metadata"]["annotations"]["danm.k8s.io/interfaces"])
        for index in range(deployment["spec"]["replicas"]):
            name = f"{deployment['metadata']['name']}-{index}"
            cluster.create_pod(
                pod(name, namespace, labels=template["metadata"]["labels"], node=f"node-{index}")
            )
            uid = cluster.pod_uid(namespace, name)
            for seq, connection in enumerate(connections):
                network = connection["network"]
                ip = ipam.allocate(namespace, network)
                addresses.setdefault((namespace, name), {})[network] = ip.split("/")[0]
                cluster.create(
                    DANMEPS,
                    danmep(name, network, namespace, ipv4=ip, ifname=f"eth{seq}", pod_uid=uid),
                )
    for doc in _documents(DEMO / "services"):
        cluster.create(SERVICES, doc)
    return addresses


def test_readme_three_network_demo(cluster: Cluster, watcher: SvcWatcher) -> None:
    addresses = _deploy_demo(cluster)

    def on(network: str, prefix: str) -> frozenset[str]:
        return frozenset(
            ips[network]
            for (ns, name), ips in addresses.items()
            if ns == "example-vnf" and name.startswith(prefix) and network in ips
        )

    expected = {
        "vnf-internal-processor": on("internal", "internal-processor"),
        "vnf-internal-lb": on("internal", "loadbalancer"),
        "vnf-external-svc": on("external", "loadbalancer"),
    }
    assert [len(ips) for ips in expected.values()] == [3, 2, 2]
    for name, ips in expected.items():
        # NB: one slice in the end; a placeholder may outlive the real slice's creation briefly.
        view = cluster.wait_view(
            "example-vnf", name, _one_slice(_exactly(ips, both_forms=False)), "demo"
        )
        assert view.not_ready == frozenset()
        (body,) = view.slice_objects
        assert body["ports"] == [
            {"name": "diameter", "port": 3869 if "lb" in name else 3868, "protocol": "TCP"}
        ]
    management = {ips["management"] for ips in addresses.values() if "management" in ips}
    client = {ips["external"] for (ns, _), ips in addresses.items() if ns == "external-client"}
    for name in expected:
        assert not _ips(cluster.view("example-vnf", name)) & (management | client)


# ------------------------------------------------------------------------------------------
# Changes as they happen


def _two_pods(cluster: Cluster, **svc: Any) -> None:
    cluster.create(SERVICES, service("s", selector=LB, network="n", **svc))
    for i in (1, 2):
        cluster.create_pod(pod(f"p{i}", labels=LB))
        cluster.create(DANMEPS, danmep(f"p{i}", "n", ipv4=f"10.0.0.{i}/24", name=f"ep{i}"))


BOTH = frozenset({"10.0.0.1", "10.0.0.2"})


def test_readiness_flips(cluster: Cluster, watcher: SvcWatcher) -> None:
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "both ready")
    cluster.set_ready("vnf", "p2", False)
    view = cluster.wait_view(
        "vnf", "s", lambda v: v.not_ready == {"10.0.0.2"} and ready_v4(v) == {"10.0.0.1"}, "p2 out"
    )
    assert view.ready == {"10.0.0.1"}
    assert ("10.0.0.2", False, False, False) in view.slices["IPv4"]
    cluster.set_ready("vnf", "p2", True)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH and not v.not_ready, "p2 back")


def test_terminating_pod_leaves_endpoints_and_is_terminating_in_slices(
    cluster: Cluster, watcher: SvcWatcher
) -> None:
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "both ready")
    cluster.api.patch(PODS, "vnf", "p1", {"metadata": {"finalizers": ["test/hold"]}})
    cluster.api.delete(PODS, "vnf", "p1")
    view = cluster.wait_view("vnf", "s", lambda v: _ips(v) == {"10.0.0.2"}, "p1 terminating")
    cluster.wait_view(
        "vnf",
        "s",
        lambda v: ("10.0.0.1", False, True, True) in v.slices["IPv4"],
        "p1 serving+terminating in the slice",
    )
    assert view.endpoints is not None
    cluster.api.patch(PODS, "vnf", "p1", {"metadata": {"finalizers": None}})
    cluster.wait_view("vnf", "s", lambda v: v.slice_ips == {"10.0.0.2"}, "p1 gone")


def test_label_changes(cluster: Cluster, watcher: SvcWatcher) -> None:
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "both ready")
    cluster.set_labels("vnf", "p1", {"app": None, "role": "spare"})
    cluster.wait_view("vnf", "s", lambda v: _ips(v) == {"10.0.0.2"}, "p1 unselected")
    cluster.set_labels("vnf", "p1", {"app": "lb"})
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "p1 selected again")


def test_danmep_add_and_remove(cluster: Cluster, watcher: SvcWatcher) -> None:
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "both ready")
    cluster.api.delete(DANMEPS, "vnf", "ep1")
    cluster.wait_view(
        "vnf", "s", lambda v: _ips(v) == {"10.0.0.2"} and v.slice_ips == {"10.0.0.2"}, "ep1 gone"
    )
    cluster.create(DANMEPS, danmep("p1", "n", ipv4="10.0.0.11/24", name="ep1b"))
    cluster.create(DANMEPS, danmep("p1", "other-net", ipv4="10.9.0.1/24", name="ep1c"))
    cluster.wait_view("vnf", "s", lambda v: v.ready == {"10.0.0.11", "10.0.0.2"}, "ep1b added")


def test_named_target_ports(cluster: Cluster, watcher: SvcWatcher) -> None:
    ports = [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    cluster.create(SERVICES, service("s", selector=LB, network="n", ports=ports))
    for i, number in ((1, 8080), (2, 9090)):
        cluster.create_pod(
            pod(f"p{i}", labels=LB, container_ports=[{"name": "http", "containerPort": number}])
        )
        cluster.create(DANMEPS, danmep(f"p{i}", "n", ipv4=f"10.0.0.{i}/24"))
    cluster.create_pod(pod("p3", labels=LB))  # NB: no "http" port: out of the Endpoints
    cluster.create(DANMEPS, danmep("p3", "n", ipv4="10.0.0.3/24"))

    def by_port(view: View) -> dict[int, list[str]]:
        subsets = (view.endpoints or {}).get("subsets") or []
        return {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in subsets}

    def slice_ports(view: View) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
        return sorted(
            (
                tuple(p["port"] for p in b.get("ports") or ()),
                tuple(a for e in b.get("endpoints") or () for a in e["addresses"]),
            )
            for b in view.slice_objects
        )

    # NB: wait for the final state as a whole; the three Pods arrive one event at a time, so
    # intermediate views (a placeholder slice, a Pod not yet in) are legitimate on the way.
    expected_slices = [((), ("10.0.0.3",)), ((8080,), ("10.0.0.1",)), ((9090,), ("10.0.0.2",))]
    view = cluster.wait_view(
        "vnf",
        "s",
        lambda v: (
            slice_ports(v) == expected_slices
            and by_port(v) == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}
        ),
        "one port set per resolved target port, p3 only in a portless slice",
    )
    assert view.endpoints is not None


def test_dual_stack(cluster: Cluster, watcher: SvcWatcher) -> None:
    cluster.create(SERVICES, service("s", selector=LB, network="n"))
    cluster.create_pod(pod("p1", labels=LB))
    cluster.create(DANMEPS, danmep("p1", "n", ipv4="10.0.0.1/24", ipv6="2001:db8::1/64"))
    cluster.create_pod(pod("p2", labels=LB))
    cluster.create(DANMEPS, danmep("p2", "n", ipv6="2001:db8::2/64"))
    view = cluster.wait_view("vnf", "s", lambda v: len(v.slice_ips) == 3, "three addresses")
    assert view.slices == {
        "IPv4": {("10.0.0.1", True, True, False)},
        "IPv6": {("2001:db8::1", True, True, False), ("2001:db8::2", True, True, False)},
    }
    assert view.ready == {"10.0.0.1", "2001:db8::1", "2001:db8::2"}
    for body in view.slice_objects:
        assert body["metadata"]["labels"][ep.LABEL_SLICE_MANAGED_BY] == ep.CONTROLLER_NAME
        (owner,) = body["metadata"]["ownerReferences"]
        assert owner["kind"] == "Service"
        assert owner["controller"] is True


def test_service_deleted_takes_its_endpoints_and_slices(
    cluster: Cluster, watcher: SvcWatcher
) -> None:
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "both ready")
    cluster.api.delete(SERVICES, "vnf", "s")
    cluster.wait_view(
        "vnf", "s", lambda v: v.endpoints is None and not v.slice_objects, "everything removed"
    )


def test_foreign_endpoints_untouched_and_bad_annotations_reported(
    cluster: Cluster, watcher: SvcWatcher
) -> None:
    # A kube-managed Service with its Endpoints and slice, a DANM Service whose name is taken
    # by someone else's Endpoints, and a DANM Service with a broken selector annotation.
    kube_svc = service("kube", spec_selector=LB, selector=LB, network="n")
    cluster.create(SERVICES, kube_svc)
    kube_endpoints = cluster.create(
        ENDPOINTS,
        {
            "metadata": {"name": "kube", "namespace": "vnf"},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}],
        },
    )
    kube_slice = cluster.create(
        ENDPOINTSLICES,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-abcde",
                "namespace": "vnf",
                "labels": {
                    ep.LABEL_SERVICE_NAME: "kube",
                    ep.LABEL_SLICE_MANAGED_BY: "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["192.0.2.1"]}],
        },
    )
    taken = cluster.create(
        ENDPOINTS,
        {
            "metadata": {"name": "taken", "namespace": "vnf"},
            "subsets": [{"addresses": [{"ip": "192.0.2.2"}]}],
        },
    )
    cluster.create(SERVICES, service("taken", selector=LB, network="n"))
    cluster.create(SERVICES, service("broken", selector="{app: lb", network="n"))
    _two_pods(cluster)
    cluster.wait_view("vnf", "s", lambda v: v.ready == BOTH, "the valid Service still served")

    def reasons() -> Counter[tuple[str, str]]:
        events = cluster.api.list(EVENTS, "vnf")["items"]
        return Counter((e["involvedObject"]["name"], e["reason"]) for e in events)

    def both_reported() -> Counter[tuple[str, str]] | None:
        found = reasons()
        wanted = (("broken", "InvalidDanmAnnotation"), ("taken", "EndpointsNotManaged"))
        return found if all(found[key] for key in wanted) else None

    seen = cluster.wait_for(both_reported, "the two Warning events")
    assert sum(seen.values()) == 2
    cluster.api.delete(SERVICES, "vnf", "kube")
    cluster.api.delete(SERVICES, "vnf", "taken")
    # NB: a DANM Service created and deleted last: once it is handled, earlier events are too.
    cluster.create(SERVICES, service("marker", selector=LB, network="n"))
    cluster.wait_view("vnf", "marker", lambda v: v.ready == BOTH, "marker served")
    cluster.api.delete(SERVICES, "vnf", "marker")
    cluster.wait_view("vnf", "marker", lambda v: v.endpoints is None, "marker removed")
    assert cluster.api.get(ENDPOINTS, "vnf", "kube") == kube_endpoints
    assert cluster.api.get(ENDPOINTSLICES, "vnf", "kube-abcde") == kube_slice
    assert cluster.api.get(ENDPOINTS, "vnf", "taken") == taken
    assert cluster.view("vnf", "broken").endpoints is None


# ------------------------------------------------------------------------------------------
# Scale: 1,000 Pods behind 20 Services


def _scale_objects() -> tuple[list[Any], list[Any], list[Any], dict[str, set[str]]]:
    services, pods, eps = [], [], []
    expected: dict[str, set[str]] = {}
    for s in range(20):
        services.append(service(f"svc-{s}", selector={"app": f"a{s}"}, network="n"))
        for p in range(50):
            index = s * 50 + p
            name = f"pod-{index}"
            pods.append(pod(name, labels={"app": f"a{s}", "index": str(index)}))
            ip = f"10.{s}.{p // 250}.{p % 250 + 1}"
            ip6 = str(ipaddress.ip_address(f"2001:db8:{s}::{p + 1}"))
            eps.append(danmep(name, "n", ipv4=f"{ip}/8", ipv6=f"{ip6}/64"))
            expected.setdefault(f"svc-{s}", set()).update((ip, ip6))
    return services, pods, eps, expected


def test_a_thousand_pods_behind_twenty_services(cluster: Cluster, watcher: SvcWatcher) -> None:
    services, pods, eps, expected = _scale_objects()
    cluster.create_pods(pods)
    cluster.create_all(DANMEPS, eps)
    cluster.create_all(SERVICES, services)
    for name, ips in expected.items():
        view = cluster.wait_view(
            "vnf",
            name,
            _exactly(ips, both_forms=True),
            "all 100 addresses",
        )
        assert {family: len(entries) for family, entries in view.slices.items()} == {
            "IPv4": 50,
            "IPv6": 50,
        }
        assert all(ready for entries in view.slices.values() for _, ready, *_ in entries)
