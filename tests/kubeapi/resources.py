"""What the server serves: built-in resources as a table, custom resources from CRDs.

Discovery, URL routing, error messages and lifecycle rules (status subresource,
``metadata.generation``, what DELETE returns) all read the same ``ResourceType`` row, so a
resource behaves consistently everywhere once it is described here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi.errors import GroupResource

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# NB: every resource supports these two field selectors (apimachinery DefaultMetaV1FieldSelector).
META_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    # NB: only kinds whose registry strategy maintains metadata.generation (in 1.32 not pods).
    has_generation: bool = False
    # NB: genericregistry.Store.ReturnDeletedObject: otherwise DELETE answers a Success Status.
    returns_deleted_object: bool = False
    allow_create_on_update: bool = False
    field_labels: tuple[str, ...] = ()
    # Custom resources only.
    custom: bool = False
    schema: dict[str, Any] | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()
    storage_version: str = ""
    served_versions: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored per group and plural, whatever version serves them."""
        return (self.group, self.plural)

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def supported_field_selectors(self) -> tuple[str, ...]:
        return META_FIELDS + self.field_labels


def _core(plural: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(
        group="", version="v1", plural=plural, kind=kind, namespaced=namespaced, **kw
    )


BUILTINS: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        status_subresource=True,
        returns_deleted_object=True,
        field_labels=("status.phase",),
    ),
    _core(
        "nodes",
        "Node",
        False,
        short_names=("no",),
        status_subresource=True,
        field_labels=("spec.unschedulable",),
    ),
    _core(
        "pods",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        status_subresource=True,
        returns_deleted_object=True,
        field_labels=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    _core(
        "services",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        status_subresource=True,
        returns_deleted_object=True,
    ),
    _core("endpoints", "Endpoints", True, short_names=("ep",), allow_create_on_update=True),
    _core("configmaps", "ConfigMap", True, short_names=("cm",)),
    _core(
        "events",
        "Event",
        True,
        short_names=("ev",),
        allow_create_on_update=True,
        field_labels=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        has_generation=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        has_generation=True,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        status_subresource=True,
        has_generation=True,
    ),
)

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One served ResourceType per served version of a (normalised) CRD."""
    spec = crd["spec"]
    names = spec["names"]
    versions = spec.get("versions", [])
    storage = next((v["name"] for v in versions if v.get("storage")), "")
    served = tuple(v["name"] for v in versions if v.get("served"))
    result = []
    for version in versions:
        if not version.get("served"):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        result.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames", [])),
                categories=tuple(names.get("categories", [])),
                status_subresource="status" in (version.get("subresources") or {}),
                has_generation=True,
                custom=True,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns", [])),
                storage_version=storage,
                served_versions=served,
            )
        )
    return result


class Catalog:
    """Lookup of served resources by (group, version, plural) plus discovery listings."""

    def __init__(self) -> None:
        self._builtin = {(r.group, r.version, r.plural): r for r in BUILTINS}
        self._custom: dict[str, list[ResourceType]] = {}  # CRD name -> served versions

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        self._custom[crd_name] = types

    def drop_crd(self, crd_name: str) -> None:
        self._custom.pop(crd_name, None)

    def all(self) -> list[ResourceType]:
        custom = [r for types in self._custom.values() for r in types]
        return [*self._builtin.values(), *custom]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        found = self._builtin.get((group, version, plural))
        if found is not None:
            return found
        for r in self.all():
            if (r.group, r.version, r.plural) == (group, version, plural):
                return r
        return None

    def by_storage_key(self, key: tuple[str, str]) -> ResourceType | None:
        return next((r for r in self.all() if r.storage_key == key), None)

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, preferred first (core group excluded)."""
        groups: dict[str, list[str]] = {}
        for r in self.all():
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.all() if (r.group, r.version) == (group, version)]
