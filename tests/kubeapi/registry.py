"""Object lifecycle semantics on top of the store, in kube-apiserver's order.

Create: mutating admission -> (CRs) prune/default/validate against the CRD schema ->
system fields, generateName, validation -> validating admission -> persist.
Update and patch run the same pipeline against the current object and commit only if the
object did not change meanwhile (retrying when the caller gave no resourceVersion, like
``GuaranteedUpdate``). Delete honours preconditions and finalizers.

Deliberate simplifications (documented for test authors):

* Namespace deletion: the namespace gets ``deletionTimestamp`` and phase ``Terminating``,
  its contents are deleted at once (objects with finalizers wait for them), and the
  namespace disappears as soon as it is empty and has no ``metadata.finalizers``; its
  ``spec.finalizers: [kubernetes]`` stands for that cleanup and needs no action.
* CRD deletion drops all its custom objects immediately, finalizers or not.
* Pods are deleted immediately (no kubelet, so no graceful termination).
* ``propagationPolicy`` is validated but there is no garbage collector.
* Core v1 and events.k8s.io/v1 events are stored separately (no conversion between them).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import importlib
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tests.kubeapi import errors
from tests.kubeapi.errors import ApiError, Cause
from tests.kubeapi.patches import (
    PatchApplyError,
    PatchFormatError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from tests.kubeapi.resources import CRD_KEY, NAMESPACE_KEY, Catalog, ResourceType, from_crd
from tests.kubeapi.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from tests.kubeapi.store import Store

Obj = dict[str, Any]

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WEBHOOK_CONFIG_RESOURCES = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_UPDATE_ATTEMPTS = 8

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    # NB: apiserver's SimpleNameGenerator: 5 chars from an alphabet without vowels.
    return prefix + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def without(obj: Obj, *fields: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in fields}


def bump_generation(rt: ResourceType, old: Obj, new: Obj) -> None:
    """Generation counts changes outside metadata (and status when it is a subresource)."""
    if not rt.has_generation:
        return
    ignored = ("metadata", "status") if rt.status_subresource else ("metadata",)
    generation = int(old["metadata"].get("generation", 1))
    if without(old, *ignored) != without(new, *ignored):
        generation += 1
    new["metadata"]["generation"] = generation


def name_causes(rt: ResourceType, meta: Obj) -> list[Cause]:
    name = meta.get("name", "")
    if not name:
        return [
            Cause(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        ]
    if rt.plural == "namespaces":
        pattern, limit, message = _LABEL, 63, _LABEL_MSG
    elif rt.plural == "services":
        pattern, limit, message = _DNS1035, 63, _DNS1035_MSG
    else:
        pattern, limit, message = _SUBDOMAIN, 253, _SUBDOMAIN_MSG
    if len(name) > limit:
        message = f"must be no more than {limit} characters"
    elif pattern.fullmatch(name):
        return []
    return [Cause("FieldValueInvalid", "metadata.name", errors.invalid_value_body(name, message))]


def prepare_status_update(rt: ResourceType, current: Obj, candidate: Obj, subresource: str) -> Obj:
    """Apply the status-subresource split: /status changes only status, the main resource
    never changes status."""
    if subresource == "status":
        new = copy.deepcopy(current)
        if "status" in candidate:
            new["status"] = candidate["status"]
        else:
            new.pop("status", None)
        return new
    new = copy.deepcopy(candidate)
    if rt.status_subresource:
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        else:
            new.pop("status", None)
    return new


def normalise_crd(crd: Obj) -> list[Cause]:
    """Fill in CRD defaults and the status the apiextensions controllers would set."""
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    causes = []
    for field in ("group", "scope"):
        if not spec.get(field):
            causes.append(Cause("FieldValueRequired", f"spec.{field}", "Required value"))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(Cause("FieldValueRequired", f"spec.names.{field}", "Required value"))
    if spec.get("scope") and spec["scope"] not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "FieldValueNotSupported",
                "spec.scope",
                errors.invalid_value_body(
                    spec["scope"], 'supported values: "Cluster", "Namespaced"'
                ).replace("Invalid value", "Unsupported value"),
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "spec.versions",
                'Invalid value: "null": must have exactly one version marked as storage version',
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "spec.versions",
                errors.invalid_value_body(
                    "[]", "must have exactly one version marked as storage version"
                ),
            )
        )
    for i, version in enumerate(versions):
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(
                Cause(
                    "FieldValueRequired",
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "Required value: schemas are required",
                )
            )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if crd["metadata"].get("name") != expected:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "metadata.name",
                errors.invalid_value_body(
                    crd["metadata"].get("name", ""), 'must be spec.names.plural+"."+spec.group'
                ),
            )
        )
    if causes:
        return causes
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    storage = next(v["name"] for v in versions if v.get("storage"))
    stamp = now_rfc3339()
    old_status = crd.get("status") or {}
    stored = list(old_status.get("storedVersions") or [])
    crd["status"] = {
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": stamp,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": stamp,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "acceptedNames": copy.deepcopy(names),
        "storedVersions": stored if storage in stored else [*stored, storage],
    }
    return []


class Registry:
    """All reads and writes of API objects; raises :class:`ApiError` for every failure."""

    def __init__(self, store: Store, *, on_commit: Callable[[], None] | None = None) -> None:
        self.store = store
        self.catalog = Catalog()
        self._on_commit = on_commit or (lambda: None)
        self._chain: Any = None
        for crd in store.list_objects(CRD_KEY, None):
            self.catalog.set_crd(crd["metadata"]["name"], from_crd(crd))
        for name in INITIAL_NAMESPACES:
            if store.get(NAMESPACE_KEY, "", name) is None:
                namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                self._prepare_create(self.catalog.lookup("", "v1", "namespaces"), namespace)  # type: ignore[arg-type]
                store.put(NAMESPACE_KEY, namespace)

    # -- helpers -----------------------------------------------------------------------
    def serve(self, rt: ResourceType, obj: Obj) -> Obj:
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        return obj

    def _to_storage(self, rt: ResourceType, obj: Obj) -> Obj:
        if rt.custom:
            obj["apiVersion"] = f"{rt.group}/{rt.storage_version}"
        return obj

    def _existing(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        found = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if found is None:
            raise errors.not_found(rt.group_resource, name)
        return found

    def _check_namespace_writable(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise errors.not_found(errors.GroupResource("", "namespaces"), namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt.group_resource,
                name,
                (
                    f"unable to create new content in namespace {namespace} because it is being "
                    "terminated"
                ),
            )

    def _check_identity(self, rt: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request is not a JSON object")
        obj: Obj = copy.deepcopy(body)
        api_version = obj.get("apiVersion")
        allowed = {f"{rt.group}/{v}" for v in rt.served_versions} if rt.custom else set()
        if api_version and api_version != rt.api_version and api_version not in allowed:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({rt.kind})"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be a JSON object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return self.serve(rt, obj)

    def _prepare_create(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.custom and rt.status_subresource:
            obj.pop("status", None)
        elif rt.plural == "pods" and not rt.group:
            obj["status"] = {"phase": "Pending"}
        elif rt.plural == "services" and not rt.group:
            obj["status"] = {"loadBalancer": {}}
        elif rt.plural == "namespaces" and not rt.group:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}

    # -- admission and schema ----------------------------------------------------------
    def _list_configs(self, resource: str) -> list[Obj]:
        return self.store.list_objects(("admissionregistration.k8s.io", resource), None)

    def _admission(self) -> Any:
        if self._chain is None:
            try:
                module = importlib.import_module("tests.kubeapi.admission")
            except ModuleNotFoundError as e:
                if e.name != "tests.kubeapi.admission":
                    raise
                return None
            self._chain = module.AdmissionChain(self._list_configs, self._namespace_labels)
        return self._chain

    def _namespace_labels(self, name: str) -> dict[str, str] | None:
        namespace = self.store.get(NAMESPACE_KEY, "", name)
        return None if namespace is None else dict(namespace["metadata"].get("labels") or {})

    async def close(self) -> None:
        """Release what admission holds open (its HTTP session to webhooks)."""
        if self._chain is not None:
            await self._chain.close()
            # NB: aiohttp's documented graceful-shutdown pause: closed TLS client connections
            # need a few loop iterations to finish, and our loop is about to stop.
            await asyncio.sleep(0.25)

    def _attributes(
        self,
        op: str,
        rt: ResourceType,
        subresource: str,
        namespace: str,
        name: str,
        obj: Obj | None,
        old: Obj | None,
        dry_run: bool,
        user: User,
    ) -> Any:
        module = importlib.import_module("tests.kubeapi.admission")
        return module.AdmissionAttributes(
            operation=op,
            group=rt.group,
            version=rt.version,
            resource=rt.plural,
            subresource=subresource,
            kind=rt.kind,
            namespace=namespace if rt.namespaced else None,
            name=name,
            obj=obj,
            old_obj=old,
            dry_run=dry_run,
            user=user.name,
            groups=list(user.groups),
        )

    def _admission_applies(self, rt: ResourceType) -> Any:
        # NB: like the real server, webhooks never see webhook configurations themselves.
        if rt.group == "admissionregistration.k8s.io":
            return None
        if not any(
            self.store.count(("admissionregistration.k8s.io", r)) for r in WEBHOOK_CONFIG_RESOURCES
        ):
            return None
        return self._admission()

    async def _mutate(self, chain: Any, attrs: Any) -> Obj | None:
        module = importlib.import_module("tests.kubeapi.admission")
        try:
            result: Obj | None = await chain.mutate(attrs)
        except module.AdmissionDenied as denied:
            raise ApiError(denied.code, denied.reason, denied.message) from denied
        return result

    async def _validate_admission(self, chain: Any, attrs: Any) -> None:
        module = importlib.import_module("tests.kubeapi.admission")
        try:
            await chain.validate(attrs)
        except module.AdmissionDenied as denied:
            raise ApiError(denied.code, denied.reason, denied.message) from denied

    def _apply_schema(self, rt: ResourceType, obj: Obj) -> tuple[Obj, list[Cause]]:
        if not rt.custom or rt.schema is None:
            return obj, []
        try:
            openapi: ModuleType | None = importlib.import_module("tests.kubeapi.openapi")
        except ModuleNotFoundError as e:
            if e.name != "tests.kubeapi.openapi":
                raise
            openapi = None
        if openapi is None:
            return obj, []
        metadata = obj.get("metadata")
        pruned = openapi.prune(rt.schema, obj)
        pruned = openapi.apply_defaults(rt.schema, pruned)
        # NB: metadata (and the type fields) are the server's, never pruned by the CRD schema.
        pruned["metadata"] = metadata
        pruned["apiVersion"], pruned["kind"] = obj["apiVersion"], obj["kind"]
        causes = [Cause(e.type, e.field, e.message) for e in openapi.validate(rt.schema, pruned)]
        return pruned, causes

    def _check_unknown_fields(self, rt: ResourceType, obj: Obj, field_validation: str) -> None:
        """``fieldValidation=Strict``: unknown fields of a custom resource are an error.

        Built-in kinds have no schema here, so Strict is accepted but checks nothing for them.
        """
        if field_validation != "Strict" or not rt.custom or rt.schema is None:
            return
        try:
            openapi = importlib.import_module("tests.kubeapi.openapi")
        except ModuleNotFoundError as e:
            if e.name != "tests.kubeapi.openapi":
                raise
            return
        unknown = openapi.pruned_paths(rt.schema, obj)
        if unknown:
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise errors.bad_request(f"strict decoding error: {listed}")

    def _validate(self, rt: ResourceType, obj: Obj, causes: list[Cause]) -> None:
        causes = name_causes(rt, obj["metadata"]) + causes
        if causes:
            raise errors.invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    # -- reads -------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        return self.serve(rt, self._existing(rt, namespace, name))

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        labels_req, fields_req = self.selectors(rt, label_selector, field_selector)
        return [
            self.serve(rt, o)
            for o in self.store.list_objects(rt.storage_key, namespace if rt.namespaced else None)
            if labels_match(labels_req, o["metadata"].get("labels")) and fields_match(fields_req, o)
        ]

    def selectors(self, rt: ResourceType, label_selector: str, field_selector: str) -> Any:
        try:
            return (
                parse_label_selector(label_selector),
                parse_field_selector(
                    field_selector, rt.supported_field_selectors, custom=rt.custom
                ),
            )
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e

    # -- create ------------------------------------------------------------------------
    async def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        *,
        dry_run: bool,
        user: User,
        field_validation: str = "",
    ) -> Obj:
        obj = self._check_identity(rt, body, namespace)
        self._check_unknown_fields(rt, obj, field_validation)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.internal("resourceVersion should not be set on objects to be created")
        self._check_namespace_writable(rt, namespace, meta.get("name", ""))
        chain = self._admission_applies(rt)
        if chain is not None:
            attrs = self._attributes(
                "CREATE", rt, "", namespace, meta.get("name", ""), obj, None, dry_run, user
            )
            obj = self.serve(rt, await self._mutate(chain, attrs) or obj)
        obj, causes = self._apply_schema(rt, obj)
        self._prepare_create(rt, obj)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if rt.storage_key == CRD_KEY:
            causes += normalise_crd(obj)
        self._validate(rt, obj, causes)
        if chain is not None:
            attrs = self._attributes(
                "CREATE", rt, "", namespace, meta["name"], obj, None, dry_run, user
            )
            await self._validate_admission(chain, attrs)
        # NB: admission awaited, so re-check what may have changed meanwhile.
        self._check_namespace_writable(rt, namespace, meta["name"])
        if self.store.get(rt.storage_key, meta.get("namespace", ""), meta["name"]) is not None:
            if meta.get("generateName") and not body.get("metadata", {}).get("name"):
                meta["name"] = generate_name(meta["generateName"])
            else:
                raise errors.already_exists(rt.group_resource, meta["name"])
        if dry_run:
            return obj
        stored = self.store.put(rt.storage_key, self._to_storage(rt, obj))
        if rt.storage_key == CRD_KEY:
            self.catalog.set_crd(meta["name"], from_crd(stored))
        self._on_commit()
        return self.serve(rt, stored)

    # -- update and patch --------------------------------------------------------------
    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str,
        dry_run: bool,
        user: User,
        field_validation: str = "",
    ) -> tuple[Obj, bool]:
        """PUT; returns (object, created) since some kinds allow create-on-update."""
        candidate = self._check_identity(rt, body, namespace)
        self._check_unknown_fields(rt, candidate, field_validation)
        if candidate["metadata"].get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({candidate['metadata'].get('name', '')}) does not "
                f"match the name on the URL ({name})"
            )
        key_ns = namespace if rt.namespaced else ""
        if self.store.get(rt.storage_key, key_ns, name) is None:
            if rt.allow_create_on_update and not subresource:
                candidate["metadata"].pop("resourceVersion", None)
                return await self.create(rt, namespace, candidate, dry_run=dry_run, user=user), True
            raise errors.not_found(rt.group_resource, name)

        def transform(current: Obj) -> Obj:
            new = copy.deepcopy(candidate)
            if not new["metadata"].get("resourceVersion"):
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return new

        return await self._guaranteed_update(
            rt, namespace, name, transform, subresource=subresource, dry_run=dry_run, user=user
        ), False

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str,
        dry_run: bool,
        user: User,
        field_validation: str = "",
    ) -> Obj:
        if content_type == STRATEGIC_PATCH and rt.custom:
            raise errors.unsupported_media_type([JSON_PATCH, MERGE_PATCH, APPLY_PATCH])

        def transform(current: Obj) -> Obj:
            try:
                if content_type == JSON_PATCH:
                    patched = json_patch(current, patch)
                elif content_type == MERGE_PATCH:
                    patched = merge_patch(current, patch)
                else:
                    patched = strategic_merge_patch(current, patch)
            except PatchFormatError as e:
                raise errors.bad_request(str(e)) from e
            except PatchApplyError as e:
                raise errors.unprocessable(str(e)) from e
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch result is not a JSON object")
            checked = self._check_identity(rt, patched, namespace)
            self._check_unknown_fields(rt, checked, field_validation)
            return checked

        return await self._guaranteed_update(
            rt, namespace, name, transform, subresource=subresource, dry_run=dry_run, user=user
        )

    async def _guaranteed_update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        transform: Callable[[Obj], Obj],
        *,
        subresource: str,
        dry_run: bool,
        user: User,
    ) -> Obj:
        key_ns = namespace if rt.namespaced else ""
        for _ in range(_UPDATE_ATTEMPTS):
            current = self.serve(rt, self._existing(rt, namespace, name))
            current_rv = current["metadata"]["resourceVersion"]
            candidate = transform(current)
            if candidate["metadata"].get("name") != name:
                raise errors.bad_request("metadata.name: the name of the object cannot change")
            if candidate["metadata"].get("resourceVersion") != current_rv:
                raise errors.conflict(rt.group_resource, name, errors.OBJECT_MODIFIED)
            new = prepare_status_update(rt, current, candidate, subresource)
            meta = new["metadata"]
            for field in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "generation",
            ):
                if field in current["metadata"]:
                    meta[field] = current["metadata"][field]
                else:
                    meta.pop(field, None)
            chain = self._admission_applies(rt)
            if chain is not None:
                attrs = self._attributes(
                    "UPDATE", rt, subresource, namespace, name, new, current, dry_run, user
                )
                new = self.serve(rt, await self._mutate(chain, attrs) or new)
            new, causes = self._apply_schema(rt, new)
            bump_generation(rt, current, new)
            if rt.storage_key == CRD_KEY and not subresource:
                causes += normalise_crd(new)
            self._validate(rt, new, causes)
            if chain is not None:
                attrs = self._attributes(
                    "UPDATE", rt, subresource, namespace, name, new, current, dry_run, user
                )
                await self._validate_admission(chain, attrs)
            latest = self.store.get(rt.storage_key, key_ns, name)
            if latest is None:
                raise errors.not_found(rt.group_resource, name)
            if latest["metadata"]["resourceVersion"] != current_rv:
                continue  # NB: someone wrote meanwhile: redo against the new state.
            if new == current or dry_run:
                return new  # NB: a no-op update writes nothing and bumps no version.
            stored = self.serve(rt, self.store.put(rt.storage_key, self._to_storage(rt, new)))
            if rt.storage_key == CRD_KEY:
                self.catalog.set_crd(name, from_crd(stored))
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self._remove(rt, stored)
            self._on_commit()
            return stored
        raise errors.conflict(rt.group_resource, name, errors.OBJECT_MODIFIED)

    # -- delete ------------------------------------------------------------------------
    async def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Obj,
        *,
        dry_run: bool,
        user: User,
    ) -> tuple[Obj, bool]:
        """Returns (object, deleted_now); deleted_now is False while finalizers remain."""
        current = self.get(rt, namespace, name)
        preconditions = options.get("preconditions") or {}
        meta = current["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise errors.conflict(
                rt.group_resource,
                name,
                (
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {meta['uid']}"
                ),
            )
        wanted_rv = preconditions.get("resourceVersion")
        if wanted_rv and wanted_rv != meta["resourceVersion"]:
            raise errors.conflict(
                rt.group_resource,
                name,
                (
                    f"Precondition failed: ResourceVersion in precondition: {wanted_rv}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}"
                ),
            )
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                "",
                [
                    Cause(
                        "FieldValueNotSupported",
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": supported values: "Foreground", '
                        '"Background", "Orphan", "nil"',
                    )
                ],
            )
        chain = self._admission_applies(rt)
        if chain is not None:
            attrs = self._attributes(
                "DELETE", rt, "", namespace, name, None, current, dry_run, user
            )
            await self._mutate(chain, attrs)
            await self._validate_admission(chain, attrs)
        current = self.get(rt, namespace, name)
        meta = current["metadata"]
        pending = bool(meta.get("finalizers")) or rt.storage_key == NAMESPACE_KEY
        if dry_run:
            return current, not pending
        if pending:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                if rt.storage_key == NAMESPACE_KEY:
                    current["status"] = {"phase": "Terminating"}
                current = self.serve(rt, self.store.put(rt.storage_key, current))
            if rt.storage_key == NAMESPACE_KEY:
                self._empty_namespace(name)
                current = self.store.get(NAMESPACE_KEY, "", name) or current
                self._finish_namespace(name)
            self._on_commit()
            removed = self.store.get(rt.storage_key, meta.get("namespace", ""), name) is None
            return self.serve(rt, current), removed
        gone = self._remove(rt, current)
        self._on_commit()
        return gone, True

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str,
        field_selector: str,
        options: Obj,
        *,
        dry_run: bool,
        user: User,
    ) -> list[Obj]:
        deleted = []
        for obj in self.list_objects(rt, namespace, label_selector, field_selector):
            meta = obj["metadata"]
            try:
                gone, _ = await self.delete(
                    rt, meta.get("namespace", ""), meta["name"], options, dry_run=dry_run, user=user
                )
            except ApiError as e:
                if e.code != 404:
                    raise
                continue
            deleted.append(gone)
        return deleted

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        gone = self.serve(rt, self.store.remove(rt.storage_key, namespace, meta["name"]))
        if rt.storage_key == CRD_KEY:
            self._drop_custom_objects(obj)
        if namespace:
            self._finish_namespace(namespace)
        return gone

    def _drop_custom_objects(self, crd: Obj) -> None:
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        self.catalog.drop_crd(crd["metadata"]["name"])
        for obj in self.store.list_objects(key, None):
            self.store.remove(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    def _empty_namespace(self, namespace: str) -> None:
        for key in self.store.keys():
            rt = self.catalog.by_storage_key(key)
            if rt is None or not rt.namespaced:
                continue
            for obj in self.store.list_objects(key, namespace):
                meta = obj["metadata"]
                if meta.get("finalizers"):
                    if not meta.get("deletionTimestamp"):
                        meta["deletionTimestamp"] = now_rfc3339()
                        meta["deletionGracePeriodSeconds"] = 0
                        self.store.put(key, obj)
                else:
                    self.store.remove(key, namespace, meta["name"])

    def _finish_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if ns["metadata"].get("finalizers"):
            return
        if any(
            self.store.count(key, namespace) for key in self.store.keys() if key[1] != "namespaces"
        ):
            return
        self.store.remove(NAMESPACE_KEY, "", namespace)
