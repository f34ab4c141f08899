"""The multi-domain Service discovery story of the README, as plain data and pure functions.

Why it exists: what the demo runs and what it expects to see must be readable in one place and
testable without root, an API server or a kernel. Everything here takes and returns plain
dicts, strings and frozen records; ``steps`` does the I/O.

The manifests come from ``example/svcwatcher_demo`` unchanged on disk. Two things of them cannot
run on this machine's kernel, and ``adapt_network`` rewrites them in the copy the demo applies
(printing why): ``NetworkType: ipvlan`` becomes ``macvlan`` (a delegate the reference macvlan
plugin serves), and ``vlan: 300`` is dropped (no 802.1q), so ``external`` is a plain macvlan
network on ``ens4``. ``internal`` keeps its ``vxlan: 600``, so netwatcher creates
``vx_internal`` on every node and its Pod interfaces are macvlans on top of that VxLAN.

The Deployments become Pods the way a ReplicaSet controller names them (``<deployment>-<n>``),
spread over the demo's nodes round-robin, so some traffic crosses nodes over the VxLAN.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

JsonObject = dict[str, Any]

PREFIX: Final = "danmdemo-"
INTERFACES_ANNOTATION: Final = "danm.k8s.io/interfaces"
SELECTOR_ANNOTATION: Final = "danm.k8s.io/selector"
NETWORK_ANNOTATION: Final = "danm.k8s.io/network"
NODES: Final = (f"{PREFIX}node1", f"{PREFIX}node2")

#: Who uses which Service in the README's story: the Pod the demo sends traffic from.
CLIENT_OF_SERVICE: Final[Mapping[str, str]] = {
    "vnf-external-svc": "external-client-1",  # external clients find the LoadBalancers
    "vnf-internal-processor": "loadbalancer-1",  # LoadBalancers find working processors
    "vnf-internal-lb": "internal-processor-1",  # processors find their egress gateways
}


class ScenarioError(Exception):
    """An example manifest does not have the shape the demo relies on."""


# --------------------------------------------------------------------------------------------
# Networks


def adapt_network(document: Mapping[str, Any]) -> tuple[JsonObject, list[str]]:
    """The example network made runnable here, and one note per change (for the output)."""
    adapted: JsonObject = copy.deepcopy(dict(document))
    spec = adapted.get("spec") or {}
    options = spec.get("Options") or {}
    where = f"{adapted.get('kind', '?')} {_namespaced_name(adapted)}"
    notes: list[str] = []
    network_type = spec.get("NetworkType") or "ipvlan"
    if network_type == "ipvlan":
        spec["NetworkType"] = "macvlan"
        notes.append(f"{where}: NetworkType ipvlan -> macvlan (this kernel has no ipvlan)")
    vlan = options.pop("vlan", None)
    if vlan:
        notes.append(
            f"{where}: vlan {vlan} dropped (this kernel has no 802.1q); "
            f"plain macvlan on {options.get('host_device', '?')}"
        )
    return adapted, notes


def _namespaced_name(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", "?"))
    return f"{namespace}/{name}" if namespace else name


# --------------------------------------------------------------------------------------------
# Pods


@dataclass(frozen=True)
class PodPlan:
    """One Pod the demo creates and wires: its API object and its network namespace."""

    name: str
    namespace: str
    node: str
    labels: Mapping[str, str] = field(default_factory=dict)
    interfaces: str = "[]"

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def container_id(self) -> str:
        return f"{PREFIX}{self.name}"

    def manifest(self) -> JsonObject:
        """The Pod object as a ReplicaSet controller and the scheduler would leave it."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
                "annotations": {INTERFACES_ANNOTATION: self.interfaces},
            },
            "spec": {
                "nodeName": self.node,
                "containers": [{"name": "app", "image": "busybox:1.36"}],
            },
        }


def pods_from_deployments(
    deployments: Iterable[Mapping[str, Any]], nodes: Sequence[str] = NODES
) -> list[PodPlan]:
    """``replicas`` Pods per Deployment, named ``<deployment>-<n>``, nodes taken in turn."""
    pods: list[PodPlan] = []
    for deployment in deployments:
        if deployment.get("kind") != "Deployment":
            raise ScenarioError(f"expected a Deployment, got {deployment.get('kind')!r}")
        metadata = deployment.get("metadata") or {}
        spec = deployment.get("spec") or {}
        template = (spec.get("template") or {}).get("metadata") or {}
        annotation = (template.get("annotations") or {}).get(INTERFACES_ANNOTATION)
        if not annotation:
            raise ScenarioError(
                f"Deployment {_namespaced_name(deployment)} has no {INTERFACES_ANNOTATION}"
            )
        for replica in range(1, int(spec.get("replicas", 1)) + 1):
            pods.append(
                PodPlan(
                    name=f"{metadata['name']}-{replica}",
                    namespace=str(metadata["namespace"]),
                    node=nodes[len(pods) % len(nodes)],
                    labels=dict(template.get("labels") or {}),
                    interfaces=json.dumps(json.loads(annotation)),
                )
            )
    return pods


def ready_status(pod_ip: str, now: str) -> JsonObject:
    """The ``status`` a kubelet reports once the Pod's containers run and pass readiness."""
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now}
        for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    ]
    return {
        "phase": "Running",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}] if pod_ip else [],
        "conditions": conditions,
    }


# --------------------------------------------------------------------------------------------
# What danm made, and what each Service must list


@dataclass(frozen=True)
class Attachment:
    """One Pod interface, as its DanmEp records it."""

    pod: str
    namespace: str
    network: str
    ifname: str
    address: str  # no prefix length


def attachments_from_danmeps(danmeps: Iterable[Mapping[str, Any]]) -> list[Attachment]:
    found: list[Attachment] = []
    for danmep in danmeps:
        spec = danmep.get("spec") or {}
        interface = spec.get("Interface") or {}
        address = str(interface.get("Address") or "")
        found.append(
            Attachment(
                pod=str(spec.get("Pod", "")),
                namespace=str((danmep.get("metadata") or {}).get("namespace", "")),
                network=str(spec.get("NetworkName", "")),
                ifname=str(interface.get("Name", "")),
                address=address.split("/", 1)[0],
            )
        )
    return sorted(found, key=lambda a: (a.namespace, a.pod, a.ifname))


@dataclass(frozen=True)
class DemoService:
    """The parts of an example DANM Service the demo checks."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    network: str
    port: int


def parse_service(document: Mapping[str, Any]) -> DemoService:
    metadata = document.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    ports = (document.get("spec") or {}).get("ports") or []
    try:
        selector = json.loads(annotations[SELECTOR_ANNOTATION])
        return DemoService(
            name=str(metadata["name"]),
            namespace=str(metadata["namespace"]),
            selector={str(k): str(v) for k, v in selector.items()},
            network=str(annotations[NETWORK_ANNOTATION]),
            port=int(ports[0]["port"]),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise ScenarioError(
            f"Service {_namespaced_name(document)} is not a DANM Service with "
            f"{SELECTOR_ANNOTATION}, {NETWORK_ANNOTATION} and a port: {error!r}"
        ) from error


def selected_pods(service: DemoService, pods: Iterable[PodPlan]) -> list[PodPlan]:
    return [
        pod
        for pod in pods
        if pod.namespace == service.namespace
        and all(pod.labels.get(k) == v for k, v in service.selector.items())
    ]


def expected_endpoints(
    service: DemoService, pods: Iterable[PodPlan], attachments: Iterable[Attachment]
) -> dict[str, Attachment]:
    """Address -> interface of every selected Pod's interface on the Service's network."""
    chosen = {pod.name for pod in selected_pods(service, pods)}
    return {
        a.address: a
        for a in attachments
        if a.namespace == service.namespace
        and a.pod in chosen
        and a.network == service.network
        and a.address
    }


def endpoints_addresses(endpoints: Mapping[str, Any]) -> dict[str, str]:
    """Ready address -> target Pod name, from an Endpoints object."""
    found: dict[str, str] = {}
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            found[str(address.get("ip"))] = str((address.get("targetRef") or {}).get("name", ""))
    return found


def endpointslice_addresses(slices: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Ready address -> target Pod name, from a Service's EndpointSlices."""
    found: dict[str, str] = {}
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                found[str(address)] = str((endpoint.get("targetRef") or {}).get("name", ""))
    return found


# --------------------------------------------------------------------------------------------
# Traffic


@dataclass(frozen=True)
class Probe:
    """Traffic from ``client`` to ``target``; ``reachable`` is what the story expects."""

    label: str
    client: PodPlan
    target: PodPlan
    ifname: str
    address: str
    port: int
    reachable: bool = True

    @property
    def path(self) -> str:
        if not self.reachable:
            return "-"
        if self.client.node == self.target.node:
            return "same node"
        return f"{_short_node(self.client.node)}->{_short_node(self.target.node)}"


def _short_node(node: str) -> str:
    return node.removeprefix(PREFIX)


def plan_probes(
    services: Iterable[DemoService],
    published: Mapping[str, Iterable[str]],
    pods: Sequence[PodPlan],
    attachments: Sequence[Attachment],
    clients: Mapping[str, str] = CLIENT_OF_SERVICE,
) -> tuple[list[Probe], list[str]]:
    """One probe per published endpoint address, from the Service's client; plus the problems.

    ``published`` maps a Service name to the addresses its Endpoints list. An address that is
    no Pod interface on the Service's network is a problem, not a probe. Last comes one
    isolation probe: the external client must not reach a processor's management address, the
    very address the Services keep out of sight.
    """
    by_name = {pod.name: pod for pod in pods}
    probes: list[Probe] = []
    problems: list[str] = []
    for service in services:
        client = by_name.get(clients.get(service.name, ""))
        if client is None:
            raise ScenarioError(f"no client Pod for Service {service.name}")
        expected = expected_endpoints(service, pods, attachments)
        for address in sorted(published.get(service.name, ()), key=ipaddress.ip_address):
            attachment = expected.get(address)
            if attachment is None:
                problems.append(
                    f"{service.name} lists {address}, which is no selected Pod's "
                    f"{service.network} address"
                )
                continue
            probes.append(
                Probe(
                    label=service.name,
                    client=client,
                    target=by_name[attachment.pod],
                    ifname=attachment.ifname,
                    address=address,
                    port=service.port,
                )
            )
    outsider = by_name.get(CLIENT_OF_SERVICE["vnf-external-svc"])
    hidden = next(
        (a for a in attachments if a.pod == "internal-processor-1" and a.network == "management"),
        None,
    )
    if outsider is not None and hidden is not None:
        probes.append(
            Probe(
                label="(isolation)",
                client=outsider,
                target=by_name[hidden.pod],
                ifname=hidden.ifname,
                address=hidden.address,
                port=3868,
                reachable=False,
            )
        )
    return probes, problems


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    ping_ms: float | None
    reply: str | None
    error: str = ""

    @property
    def ping_ok(self) -> bool:
        return self.ping_ms is not None

    @property
    def tcp_ok(self) -> bool:
        """The TCP answer came from the Pod that owns the address."""
        return self.reply == self.probe.target.name

    @property
    def passed(self) -> bool:
        if self.probe.reachable:
            return self.ping_ok and self.tcp_ok
        return self.ping_ms is None and self.reply is None


def probe_result(probe: Probe, outcome: Mapping[str, Any]) -> ProbeResult:
    """A ``probe check`` JSON line turned into a result."""
    ping_ms = outcome.get("ping_ms")
    reply = outcome.get("reply")
    return ProbeResult(
        probe=probe,
        ping_ms=float(ping_ms) if isinstance(ping_ms, int | float) else None,
        reply=str(reply) if reply is not None else None,
        error=str(outcome.get("error") or ""),
    )


def summary_rows(results: Iterable[ProbeResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for result in results:
        probe = result.probe
        if probe.reachable:
            ping = f"{result.ping_ms:.2f} ms" if result.ping_ms is not None else "FAIL"
            tcp = "ok" if result.tcp_ok else f"FAIL ({result.reply or 'no answer'})"
        else:
            ping = "blocked" if result.ping_ms is None else "REACHED"
            tcp = "blocked" if result.reply is None else "REACHED"
        rows.append(
            [
                probe.label,
                f"{probe.address}:{probe.port}",
                probe.target.name,
                probe.ifname,
                probe.client.name,
                probe.path,
                ping,
                tcp,
                "PASS" if result.passed else "FAIL",
            ]
        )
    return rows


SUMMARY_HEADERS: Final = (
    "service",
    "endpoint",
    "pod",
    "iface",
    "from pod",
    "path",
    "ping",
    "tcp",
    "result",
)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain fixed-width table, columns separated by two spaces."""
    all_rows = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in all_rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
