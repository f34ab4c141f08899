"""What a DANM Service's Endpoints and EndpointSlices should contain, computed from plain data.

Why it exists: svcwatcher's whole job is "Service + Pods + DanmEps in, Endpoints and
EndpointSlices out". Keeping that as pure functions over small frozen records means every rule
(selector matching, network choice, readiness, named target ports, address families, slice
chunking) is table-tested without an API server, and the controller only moves data around.

The rules, and where they come from:

* A Service is DANM's (``parse_service`` answers a ``DanmService``) when it has no
  ``spec.selector``, is not ``ExternalName``, and carries at least one of the annotations
  ``danm.k8s.io/selector``, ``danm.k8s.io/network``, ``danm.k8s.io/tenantNetwork``,
  ``danm.k8s.io/clusterNetwork`` (danm-behaviour.md §10.2). A DANM Service needs a non-empty
  selector (a JSON object of string to string) and at least one network annotation, otherwise
  ``InvalidDanmAnnotation`` says what to fix.
* Pods in the Service's namespace whose labels contain the whole selector are selected (we match
  Pod labels directly; the original matched copies of them on the DanmEps, §10.3). Pods that
  have finished (phase Succeeded/Failed) are left out, as kube's controllers do.
* The Pod's DanmEps whose ``(NetworkName, apiType)`` match one of the Service's network
  annotations provide the addresses: ``Interface.Address`` (IPv4) and ``Interface.AddressIPv6``,
  prefix length stripped. A family without an address contributes nothing (§13.28 fixed).
  A DanmEp naming a different Pod UID (a previous incarnation of a same-named Pod) is ignored.
* Readiness comes from the Pod's ``Ready`` condition; ``spec.publishNotReadyAddresses`` or the
  legacy ``service.alpha.kubernetes.io/tolerate-unready-endpoints: "true"`` publish every
  address as ready. A Pod with a ``deletionTimestamp`` is terminating: kept out of the
  Endpoints (unless not-ready addresses are published) and listed in slices with
  ``ready=false, serving=<Ready>, terminating=true``, as kube's EndpointSlice controller does.
* Ports come from the Service: the endpoint port is the ``targetPort`` (a number as is; a name
  looked up among the Pod's container ports with the same protocol; absent means ``port``).
  A Pod that lacks a named port is left out of that port: in the Endpoints its addresses go to
  a subset with the ports it does resolve (none resolved: not listed), exactly as kube's
  endpoints controller repacks subsets; in the slices it lands in a slice of its resolved port
  set (possibly empty), as kube's EndpointSlice controller does.
* EndpointSlices: one group per (address family, port set), at most ``MAX_ENDPOINTS_PER_SLICE``
  endpoints per slice, deterministic names ``<service>-danm-<family>-<port hash>-<n>``, the
  ``kubernetes.io/service-name`` label, our ``endpointslice.kubernetes.io/managed-by`` value and
  a controller owner reference to the Service. With no endpoints at all one empty placeholder
  slice remains, as kube keeps one. Families follow ``spec.ipFamilies`` when it is set.
* The Endpoints object mirrors the Service's labels plus our mark and
  ``endpointslice.kubernetes.io/skip-mirror: "true"`` (so kube's mirroring controller does not
  duplicate our slices); above ``MAX_ENDPOINTS_ADDRESSES`` addresses it is truncated (ready ones
  first) and annotated ``endpoints.kubernetes.io/over-capacity: truncated``, as kube does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from common.model.constants import NetworkKind
from common.model.danmep import DanmEp

JsonObject = dict[str, Any]

#: The Service annotations svcwatcher reads (danm-behaviour.md §10.2), matched exactly.
SELECTOR_ANNOTATION: Final = "danm.k8s.io/selector"
NETWORK_ANNOTATIONS: Final[Mapping[str, NetworkKind]] = {
    "danm.k8s.io/network": NetworkKind.DANMNET,
    "danm.k8s.io/tenantNetwork": NetworkKind.TENANT_NETWORK,
    "danm.k8s.io/clusterNetwork": NetworkKind.CLUSTER_NETWORK,
}
DANM_SERVICE_ANNOTATIONS: Final = frozenset({SELECTOR_ANNOTATION, *NETWORK_ANNOTATIONS})
TOLERATE_UNREADY_ANNOTATION: Final = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

#: Our controller's name, the value of the managed-by labels (kube's is
#: ``endpointslice-controller.k8s.io``; a different value keeps kube's hands off our slices).
CONTROLLER_NAME: Final = "svcwatcher.danm.k8s.io"
LABEL_SERVICE_NAME: Final = "kubernetes.io/service-name"
LABEL_SLICE_MANAGED_BY: Final = "endpointslice.kubernetes.io/managed-by"
#: Endpoints have no standard managed-by label; this is the mark we check before touching one.
LABEL_ENDPOINTS_MANAGED_BY: Final = "danm.k8s.io/managed-by"
LABEL_SKIP_MIRROR: Final = "endpointslice.kubernetes.io/skip-mirror"
LABEL_HEADLESS: Final = "service.kubernetes.io/headless"
ANNOTATION_TRIGGER_TIME: Final = "endpoints.kubernetes.io/last-change-trigger-time"
ANNOTATION_OVER_CAPACITY: Final = "endpoints.kubernetes.io/over-capacity"

MAX_ENDPOINTS_PER_SLICE: Final = 100
MAX_ENDPOINTS_ADDRESSES: Final = 1000
IPV4: Final = "IPv4"
IPV6: Final = "IPv6"
ALL_FAMILIES: Final = (IPV4, IPV6)


class InvalidDanmAnnotation(ValueError):
    """A Service carries DANM annotations that cannot be used; the message says how to fix it."""


# --------------------------------------------------------------------------------------------
# Inputs, reduced to what the computation needs


@dataclass(frozen=True, slots=True)
class NetworkRef:
    """One network a Service selects interfaces on: its name and kind."""

    name: str
    kind: NetworkKind


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str
    #: ``targetPort``: a number, or the name of a container port.
    target: int | str
    app_protocol: str = ""


@dataclass(frozen=True)
class DanmService:
    """A valid DANM Service: everything the computation needs from the Service object."""

    namespace: str
    name: str
    uid: str
    selector: Mapping[str, str]
    networks: frozenset[NetworkRef]
    ports: tuple[ServicePort, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    headless: bool = True
    publish_not_ready: bool = False
    families: tuple[str, ...] = ALL_FAMILIES

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.selector.items())


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class PodFacts:
    """The parts of a Pod that decide its endpoints; equal facts mean nothing to redo."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    terminating: bool = False
    phase: str = ""
    node_name: str = ""
    hostname: str = ""
    subdomain: str = ""
    container_ports: tuple[ContainerPort, ...] = ()

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class InterfaceFacts:
    """One DanmEp: which Pod and network it belongs to and its addresses (no prefix length)."""

    namespace: str
    name: str
    pod: str
    network: NetworkRef
    pod_uid: str = ""
    ipv4: str = ""
    ipv6: str = ""

    def address(self, family: str) -> str:
        return self.ipv4 if family == IPV4 else self.ipv6


# --------------------------------------------------------------------------------------------
# Parsing API objects into the records above


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def is_danm_candidate(service: Mapping[str, Any]) -> bool:
    """True if the Service is selectorless, not ExternalName, and carries a DANM annotation."""
    spec = service.get("spec") or {}
    if spec.get("selector") or spec.get("type") == "ExternalName":
        return False
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    return any(key in annotations for key in DANM_SERVICE_ANNOTATIONS)


def _parse_selector(raw: Any) -> dict[str, str]:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidDanmAnnotation(
            f"annotation {SELECTOR_ANNOTATION} is missing or empty; give the Pod labels to select "
            'as a JSON object, e.g. \'{"app": "loadbalancer"}\''
        )
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidDanmAnnotation(
            f"annotation {SELECTOR_ANNOTATION} is not valid JSON ({exc.msg} at char {exc.pos}): "
            f"{raw!r}"
        ) from exc
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise InvalidDanmAnnotation(
            f"annotation {SELECTOR_ANNOTATION} must be a JSON object of string label values, "
            f"got {raw!r}"
        )
    if not parsed:
        raise InvalidDanmAnnotation(
            f"annotation {SELECTOR_ANNOTATION} is an empty selector, which would select no Pod "
            "as a selectorless Service; list at least one label"
        )
    return parsed


def _parse_port(raw: Any, index: int) -> ServicePort:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("port"), int):
        raise InvalidDanmAnnotation(f"spec.ports[{index}] has no numeric port")
    port = int(raw["port"])
    target_raw = raw.get("targetPort")
    target: int | str
    if isinstance(target_raw, int) and target_raw > 0:
        target = target_raw
    elif isinstance(target_raw, str) and target_raw:
        # NB: an IntOrString may arrive as a digit string from hand-written JSON.
        target = int(target_raw) if target_raw.isdigit() else target_raw
    else:
        target = port
    return ServicePort(
        name=str(raw.get("name") or ""),
        port=port,
        protocol=str(raw.get("protocol") or "TCP"),
        target=target,
        app_protocol=str(raw.get("appProtocol") or ""),
    )


def parse_service(service: Mapping[str, Any]) -> DanmService | None:
    """The Service as a ``DanmService``; ``None`` if it is not DANM's business.

    Raises ``InvalidDanmAnnotation`` when it is meant for DANM but cannot be used.
    """
    if not is_danm_candidate(service):
        return None
    metadata = service.get("metadata") or {}
    spec = service.get("spec") or {}
    annotations = _str_map(metadata.get("annotations"))
    selector = _parse_selector(annotations.get(SELECTOR_ANNOTATION))
    networks = frozenset(
        NetworkRef(annotations[key].strip(), kind)
        for key, kind in NETWORK_ANNOTATIONS.items()
        if annotations.get(key, "").strip()
    )
    if not networks:
        raise InvalidDanmAnnotation(
            "no network chosen: set one of the annotations "
            + ", ".join(NETWORK_ANNOTATIONS)
            + " to the name of the network whose interfaces the Service should use"
        )
    ports = tuple(_parse_port(raw, i) for i, raw in enumerate(spec.get("ports") or ()))
    families = tuple(f for f in (spec.get("ipFamilies") or ()) if f in ALL_FAMILIES)
    return DanmService(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        selector=selector,
        networks=networks,
        ports=ports,
        labels=_str_map(metadata.get("labels")),
        headless=spec.get("clusterIP") == "None",
        publish_not_ready=bool(spec.get("publishNotReadyAddresses"))
        or annotations.get(TOLERATE_UNREADY_ANNOTATION) == "true",
        families=families or ALL_FAMILIES,
    )


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    ports: list[ContainerPort] = []
    for container in spec.get("containers") or ():
        for port in (container or {}).get("ports") or ():
            if isinstance(port, Mapping) and port.get("name") and port.get("containerPort"):
                ports.append(
                    ContainerPort(
                        str(port["name"]),
                        int(port["containerPort"]),
                        str(port.get("protocol") or "TCP"),
                    )
                )
    return PodFacts(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        labels=_str_map(metadata.get("labels")),
        ready=ready,
        terminating=bool(metadata.get("deletionTimestamp")),
        phase=str(status.get("phase") or ""),
        node_name=str(spec.get("nodeName") or ""),
        hostname=str(spec.get("hostname") or ""),
        subdomain=str(spec.get("subdomain") or ""),
        container_ports=tuple(ports),
    )


def _plain_ip(cidr: str, version: int) -> str:
    """``10.0.0.5/24`` → ``10.0.0.5``; ``""`` for empty, unparsable or wrong-family values."""
    if not cidr:
        return ""
    try:
        address = ipaddress.ip_interface(cidr.strip()).ip
    except ValueError:
        return ""
    return str(address) if address.version == version else ""


def danmep_facts(danmep: Mapping[str, Any]) -> InterfaceFacts:
    """Read a DanmEp; raises ``ModelError`` when it does not follow the DanmEp schema."""
    model = DanmEp.from_dict(danmep)
    metadata = model.metadata
    return InterfaceFacts(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        pod=model.spec.pod,
        pod_uid=model.spec.pod_uid,
        network=NetworkRef(model.spec.network_name, model.network_kind),
        ipv4=_plain_ip(model.interface.address, 4),
        ipv6=_plain_ip(model.interface.address_ipv6, 6),
    )


# --------------------------------------------------------------------------------------------
# The computation


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str
    port: int
    protocol: str
    app_protocol: str = ""

    def to_json(self) -> JsonObject:
        out: JsonObject = {"port": self.port, "protocol": self.protocol}
        if self.name:
            out["name"] = self.name
        if self.app_protocol:
            out["appProtocol"] = self.app_protocol
        return out


@dataclass(frozen=True, slots=True)
class _Endpoint:
    ip: str
    family: str
    pod: PodFacts
    ports: tuple[EndpointPort, ...]

    @property
    def sort_key(self) -> tuple[int, int, str]:
        address = ipaddress.ip_address(self.ip)
        return (address.version, int(address), self.pod.name)


def resolve_port(port: ServicePort, pod: PodFacts) -> int | None:
    """The Pod-side port number for a Service port, or ``None`` if the Pod lacks the named port.

    Named ports match a container port of the same name and protocol (kube's ``FindPort``).
    """
    if isinstance(port.target, int):
        return port.target
    for container_port in pod.container_ports:
        if container_port.name == port.target and container_port.protocol == port.protocol:
            return container_port.port
    return None


def _endpoint_ports(service: DanmService, pod: PodFacts) -> tuple[EndpointPort, ...]:
    resolved = []
    for port in service.ports:
        number = resolve_port(port, pod)
        if number is not None:
            resolved.append(EndpointPort(port.name, number, port.protocol, port.app_protocol))
    return tuple(resolved)


@dataclass(frozen=True)
class DesiredState:
    """What should exist for one Service: its Endpoints and its EndpointSlices (by name)."""

    endpoints: JsonObject
    slices: Mapping[str, JsonObject]


def owner_reference(service: DanmService) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": service.name,
        "uid": service.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _endpoints_labels(service: DanmService) -> dict[str, str]:
    labels = dict(service.labels)
    if service.headless:
        labels[LABEL_HEADLESS] = ""
    labels[LABEL_SKIP_MIRROR] = "true"
    labels[LABEL_ENDPOINTS_MANAGED_BY] = CONTROLLER_NAME
    return labels


def slice_labels(service: DanmService) -> dict[str, str]:
    labels = dict(service.labels)
    if service.headless:
        labels[LABEL_HEADLESS] = ""
    labels[LABEL_SERVICE_NAME] = service.name
    labels[LABEL_SLICE_MANAGED_BY] = CONTROLLER_NAME
    return labels


def _target_ref(pod: PodFacts) -> JsonObject:
    return {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid}


def _hostname(service: DanmService, pod: PodFacts) -> str:
    # NB: kube publishes spec.hostname only for Pods whose subdomain is this Service.
    return pod.hostname if pod.hostname and pod.subdomain == service.name else ""


def _collect(
    service: DanmService, pods: Iterable[PodFacts], interfaces: Iterable[InterfaceFacts]
) -> list[_Endpoint]:
    selected = {
        pod.name: pod
        for pod in pods
        if pod.namespace == service.namespace and not pod.finished and service.selects(pod.labels)
    }
    endpoints: list[_Endpoint] = []
    seen: set[str] = set()
    ports_by_pod: dict[str, tuple[EndpointPort, ...]] = {}
    for iface in sorted(interfaces, key=lambda i: (i.pod, i.name)):
        if iface.namespace != service.namespace or iface.network not in service.networks:
            continue
        pod = selected.get(iface.pod)
        if pod is None or (iface.pod_uid and pod.uid and iface.pod_uid != pod.uid):
            continue
        ports = ports_by_pod.get(pod.name)
        if ports is None:
            ports = ports_by_pod[pod.name] = _endpoint_ports(service, pod)
        for family in service.families:
            ip = iface.address(family)
            # NB: one address is one endpoint; a duplicate (an IPAM accident) is listed once.
            if ip and ip not in seen:
                seen.add(ip)
                endpoints.append(_Endpoint(ip, family, pod, ports))
    endpoints.sort(key=lambda e: e.sort_key)
    return endpoints


def _endpoints_object(service: DanmService, endpoints: Sequence[_Endpoint]) -> JsonObject:
    # NB: a non-headless Service without ports has nothing to route to (kube lists nothing).
    usable = [
        e
        for e in endpoints
        if (e.ports or (not service.ports and service.headless))
        and (not e.pod.terminating or service.publish_not_ready)
    ]
    ready = [e for e in usable if e.pod.ready or service.publish_not_ready]
    not_ready = [e for e in usable if not (e.pod.ready or service.publish_not_ready)]
    annotations: dict[str, str] = {}
    if len(ready) + len(not_ready) > MAX_ENDPOINTS_ADDRESSES:
        annotations[ANNOTATION_OVER_CAPACITY] = "truncated"
        not_ready = not_ready[: max(0, MAX_ENDPOINTS_ADDRESSES - len(ready))]
        ready = ready[:MAX_ENDPOINTS_ADDRESSES]
    groups: dict[tuple[EndpointPort, ...], tuple[list[JsonObject], list[JsonObject]]] = {}
    for is_ready, group in ((True, ready), (False, not_ready)):
        for endpoint in group:
            address: JsonObject = {"ip": endpoint.ip}
            hostname = _hostname(service, endpoint.pod)
            if hostname:
                address["hostname"] = hostname
            if endpoint.pod.node_name:
                address["nodeName"] = endpoint.pod.node_name
            address["targetRef"] = _target_ref(endpoint.pod)
            lists = groups.setdefault(endpoint.ports, ([], []))
            lists[0 if is_ready else 1].append(address)
    subsets: list[JsonObject] = []
    for ports in sorted(groups, key=_ports_sort_key):
        ready_addresses, not_ready_addresses = groups[ports]
        subset: JsonObject = {}
        if ready_addresses:
            subset["addresses"] = ready_addresses
        if not_ready_addresses:
            subset["notReadyAddresses"] = not_ready_addresses
        if ports:
            subset["ports"] = [p.to_json() for p in ports]
        subsets.append(subset)
    metadata: JsonObject = {
        "name": service.name,
        "namespace": service.namespace,
        "labels": _endpoints_labels(service),
    }
    if annotations:
        metadata["annotations"] = annotations
    if service.uid:
        metadata["ownerReferences"] = [owner_reference(service)]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata, "subsets": subsets}


def _ports_sort_key(ports: tuple[EndpointPort, ...]) -> str:
    return json.dumps([p.to_json() for p in ports], sort_keys=True)


def ports_hash(ports: Sequence[EndpointPort]) -> str:
    """A short stable name part for a port set (kube also keys slices by a port hash)."""
    return hashlib.sha256(_ports_sort_key(tuple(ports)).encode()).hexdigest()[:8]


def _slice_endpoint(service: DanmService, endpoint: _Endpoint) -> JsonObject:
    pod = endpoint.pod
    # NB: kube's rule: "ready" is never true for a terminating Pod unless not-ready addresses
    # are published; "serving" is the bare Ready condition.
    serving = pod.ready
    ready = service.publish_not_ready or (pod.ready and not pod.terminating)
    out: JsonObject = {
        "addresses": [endpoint.ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": pod.terminating},
    }
    hostname = _hostname(service, pod)
    if hostname:
        out["hostname"] = hostname
    if pod.node_name:
        out["nodeName"] = pod.node_name
    out["targetRef"] = _target_ref(pod)
    return out


def _slice_object(
    service: DanmService, name: str, family: str, ports: Sequence[EndpointPort], items: list[Any]
) -> JsonObject:
    metadata: JsonObject = {
        "name": name,
        "namespace": service.namespace,
        "labels": slice_labels(service),
    }
    if service.uid:
        metadata["ownerReferences"] = [owner_reference(service)]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": family,
        "endpoints": items,
        "ports": [p.to_json() for p in ports],
    }


def slice_name(service_name: str, family: str, ports: Sequence[EndpointPort], index: int) -> str:
    return f"{service_name}-danm-{family.lower()}-{ports_hash(ports)}-{index}"


def _slices(
    service: DanmService, endpoints: Sequence[_Endpoint], max_per_slice: int
) -> dict[str, JsonObject]:
    groups: dict[tuple[str, tuple[EndpointPort, ...]], list[JsonObject]] = {}
    for endpoint in endpoints:
        groups.setdefault((endpoint.family, endpoint.ports), []).append(
            _slice_endpoint(service, endpoint)
        )
    slices: dict[str, JsonObject] = {}
    for (family, ports), items in sorted(groups.items(), key=lambda kv: kv[0][0]):
        for index, start in enumerate(range(0, len(items), max_per_slice)):
            name = slice_name(service.name, family, ports, index)
            slices[name] = _slice_object(
                service, name, family, ports, items[start : start + max_per_slice]
            )
    if not slices:
        family = service.families[0]
        name = slice_name(service.name, family, (), 0)
        slices[name] = _slice_object(service, name, family, (), [])
    return slices


def desired_state(
    service: DanmService,
    pods: Iterable[PodFacts],
    interfaces: Iterable[InterfaceFacts],
    *,
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> DesiredState:
    """The Endpoints and EndpointSlices ``service`` should have, given the cluster's facts.

    ``pods`` and ``interfaces`` may hold anything (other namespaces, other networks); only the
    ones this Service selects count. The result is deterministic: equal inputs, equal output.
    """
    endpoints = _collect(service, pods, interfaces)
    return DesiredState(
        endpoints=_endpoints_object(service, endpoints),
        slices=_slices(service, endpoints, max_endpoints_per_slice),
    )


# --------------------------------------------------------------------------------------------
# Comparing what exists with what is wanted


def _normalized(value: Any) -> Any:
    """Drop empty values recursively, so server-side ``null``/``[]``/``""`` forms compare equal."""
    if isinstance(value, Mapping):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def _content(obj: Mapping[str, Any]) -> Any:
    metadata = obj.get("metadata") or {}
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != ANNOTATION_TRIGGER_TIME
    }
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind", "status")}
    return _normalized(
        {
            "labels": metadata.get("labels"),
            "annotations": annotations,
            "ownerReferences": metadata.get("ownerReferences"),
            "body": body,
        }
    )


def same_content(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True if writing ``desired`` over ``existing`` would change nothing that we manage.

    Labels, annotations (except the change-trigger time), owner references and the body count;
    server-managed metadata (resourceVersion, uid, managedFields...) does not.
    """
    return bool(_content(existing) == _content(desired))


def is_ours_endpoints(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_ENDPOINTS_MANAGED_BY) == CONTROLLER_NAME)


def is_ours_slice(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_SLICE_MANAGED_BY) == CONTROLLER_NAME)
