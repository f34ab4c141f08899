"""Where each Kubernetes kind we touch lives on the API server.

The adapter in ``common.io.kube`` speaks raw REST paths so that core and custom kinds go through
one code path; this module is the single table that turns "a DanmNet in namespace x" into
``/apis/danm.k8s.io/v1/namespaces/x/danmnets``. It is pure data: no client, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from common.model import constants as c

DANM_GROUP = c.API_GROUP
DANM_VERSION = c.API_VERSION


class ResourceError(ValueError):
    """A path was asked for that the resource's scope cannot have (e.g. a namespace on a node)."""


def _segment(value: str, what: str) -> str:
    if not value:
        raise ResourceError(f"{what} must not be empty")
    # NB: names are DNS-ish, but a stray '/' must never smuggle in another path segment.
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Resource:
    """One API resource: its group/version, the plural used in paths, its kind and scope.

    ``group`` is ``""`` for the core (legacy ``/api/v1``) group.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` string objects of this kind carry, e.g. ``danm.k8s.io/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def crd_name(self) -> str:
        """The name of the CustomResourceDefinition that would serve this resource."""
        return f"{self.plural}.{self.group}"

    def collection_path(self, namespace: str | None = None) -> str:
        """Path of the collection; ``namespace=None`` on a namespaced kind means all namespaces."""
        if namespace is not None and not self.namespaced:
            raise ResourceError(f"{self.kind} is cluster-scoped; got namespace {namespace!r}")
        if namespace is None:
            return f"{self.group_version_path}/{self.plural}"
        ns = _segment(namespace, "namespace")
        return f"{self.group_version_path}/namespaces/{ns}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        """Path of one object (and optionally one of its subresources, e.g. ``status``)."""
        if self.namespaced and namespace is None:
            raise ResourceError(f"{self.kind} is namespaced; a namespace is required for {name!r}")
        path = f"{self.collection_path(namespace)}/{_segment(name, 'name')}"
        if subresource:
            path += f"/{_segment(subresource, 'subresource')}"
        return path


# NB: plurals and scopes per danm-behaviour.md §1.1.
def _danm(kind: str) -> Resource:
    return Resource(
        DANM_GROUP, DANM_VERSION, c.PLURALS[kind], kind, namespaced=kind in c.NAMESPACED_KINDS
    )


DANMNETS = _danm(c.KIND_DANMNET)
TENANTNETWORKS = _danm(c.KIND_TENANT_NETWORK)
CLUSTERNETWORKS = _danm(c.KIND_CLUSTER_NETWORK)
TENANTCONFIGS = _danm(c.KIND_TENANT_CONFIG)
DANMEPS = _danm(c.KIND_DANMEP)

PODS = Resource("", "v1", "pods", "Pod", namespaced=True)
SERVICES = Resource("", "v1", "services", "Service", namespaced=True)
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints", namespaced=True)
EVENTS = Resource("", "v1", "events", "Event", namespaced=True)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True)
EVENTS_V1 = Resource("events.k8s.io", "v1", "events", "Event", namespaced=True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
CRDS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)

DANM_RESOURCES: tuple[Resource, ...] = (
    DANMNETS,
    TENANTNETWORKS,
    CLUSTERNETWORKS,
    TENANTCONFIGS,
    DANMEPS,
)
ALL_RESOURCES: tuple[Resource, ...] = (
    *DANM_RESOURCES,
    PODS,
    SERVICES,
    ENDPOINTS,
    EVENTS,
    NAMESPACES,
    NODES,
    CONFIGMAPS,
    ENDPOINTSLICES,
    EVENTS_V1,
    LEASES,
    CRDS,
)

# NB: "Event" exists in two groups; a bare-kind lookup answers the core one, which is what
# kubectl-style code means by default. Ask with api_version for the other.
_BY_KIND: dict[str, Resource] = {}
for _resource in ALL_RESOURCES:
    _BY_KIND.setdefault(_resource.kind, _resource)
_BY_GVK: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in ALL_RESOURCES}


def resource_for_kind(kind: str, api_version: str | None = None) -> Resource:
    """Look a known resource up by ``kind`` (and ``apiVersion`` where the kind is ambiguous)."""
    found = _BY_GVK.get((api_version, kind)) if api_version else _BY_KIND.get(kind)
    if found is None:
        where = f" in {api_version}" if api_version else ""
        raise KeyError(f"unknown kind {kind!r}{where}")
    return found
