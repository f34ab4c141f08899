"""One admission decision, start to finish: parse, look up facts, validate, mutate, reserve, patch.

This is the composition of the pure pieces (``rules``, ``mutate``, ``tenancy``, ``patch``,
``review``) with the cluster lookups of an :class:`~webhook.store.AdmissionStore`. The order is
what makes "nothing written for a denied request" true: every rule is checked, every mutation
computed, and only then is a VNI reserved, the single write of the whole flow; if that write
fails, the request is denied and the write did not happen.

The functions are synchronous; :func:`may_call_api` tells the server which requests could block
on the API (those go to a worker thread) and which are decided from the request alone (DanmNet
and ClusterNetwork CREATE, most UPDATEs, TenantConfigs), which is what keeps the common path fast.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.io.kube import KubeError
from common.ipam.errors import IpamError
from common.model import (
    ModelError,
    Network,
    TenantConfig,
    network_from_dict,
)
from common.model.constants import (
    KIND_CLUSTER_NETWORK,
    KIND_DANMNET,
    KIND_TENANT_CONFIG,
    KIND_TENANT_NETWORK,
)
from webhook import mutate, rules, tenancy
from webhook.patch import build_patch
from webhook.review import CODE_BAD_REQUEST, AdmissionRequest, allow, deny
from webhook.rules import CREATE, DELETE, UPDATE, Denial, Denied, NetworkReview
from webhook.store import AdmissionStore

_log = logging.getLogger(__name__)

NETWORK_KINDS: Final = (KIND_DANMNET, KIND_TENANT_NETWORK, KIND_CLUSTER_NETWORK)
Response = dict[str, Any]


@dataclass
class Reviewer:
    """Decides AdmissionReviews; ``pick`` chooses among profiles (random in production)."""

    store: AdmissionStore
    pick: tenancy.Pick = field(default_factory=lambda: random.SystemRandom().choice)

    # ---- entry points, one per webhook path

    def review_network(self, request: AdmissionRequest) -> Response:
        """``/netvalidation`` and ``/netdeletion``: the three network kinds."""
        if request.kind not in NETWORK_KINDS:
            return _deny_kind(request)
        if request.operation == DELETE:
            return self._review_delete(request)
        if request.operation not in (CREATE, UPDATE):
            return allow(request)
        try:
            return self._review_network_write(request)
        except Denied as denied:
            return _deny(request, denied.denial)

    def review_tenant_config(self, request: AdmissionRequest) -> Response:
        """``/confvalidation``: TenantConfig CREATE/UPDATE (§7.5)."""
        if request.kind != KIND_TENANT_CONFIG:
            return _deny_kind(request)
        if request.operation not in (CREATE, UPDATE):
            return allow(request)
        try:
            raw = _object_or_deny(request)
        except Denied as denied:
            return _deny(request, denied.denial)
        try:
            config = TenantConfig.from_dict(raw)
            old = TenantConfig.from_dict(request.old_obj) if request.old_obj else None
        except ModelError as error:
            return _deny(request, rules.malformed(request.kind, error), code=CODE_BAD_REQUEST)
        denial = rules.validate_tenant_config(config, operation=request.operation, old=old)
        if denial is not None:
            return _deny(request, denial)
        return allow(request, build_patch(raw, mutate.init_profile_allocs(raw)))

    # ---- networks

    def _review_network_write(self, request: AdmissionRequest) -> Response:
        raw = _object_or_deny(request)
        old_raw = request.old_obj if request.operation == UPDATE else None
        if request.operation == UPDATE and old_raw is None:
            raise Denied(
                Denial(rules.OBJECT, "oldObject", "an UPDATE review must carry the oldObject")
            )
        prepared = mutate.prepare_update(raw, old_raw) if old_raw is not None else raw
        network = _network(prepared, request.kind)
        old = _network(old_raw, request.kind) if old_raw is not None else None
        connected = None
        if old is not None and rules.needs_connected_check(network, old):
            connected = self._connected(
                request, "no way to tell if Pods are still using the network due to:"
            )
        review = NetworkReview(request.operation, network, old, connected)
        denial = rules.validate_network(review)
        if denial is not None:
            return _deny(request, denial)
        desired = mutate.default_network(prepared)
        if request.kind == KIND_TENANT_NETWORK:
            if request.operation == CREATE:
                desired = self._attach(request, desired)
            else:
                self._post_validate(request, desired)
        return allow(request, build_patch(raw, desired))

    def _post_validate(self, request: AdmissionRequest, desired: Mapping[str, Any]) -> Network:
        network = _network(desired, request.kind)
        denial = rules.first_denial(
            NetworkReview(request.operation, network), rules.POST_VALIDATORS
        )
        if denial is not None:
            raise Denied(denial)
        return network

    def _attach(self, request: AdmissionRequest, desired: dict[str, Any]) -> dict[str, Any]:
        """TenantNetwork CREATE: profile, NetworkID override, then (last) the VNI (§7.3)."""
        try:
            raw_config = self.store.tenant_config()
        except KubeError as error:
            raise Denied(
                Denial(rules.TENANCY, "(TenantConfig)", f"the TenantConfig cannot be read: {error}")
            ) from None
        if raw_config is None:
            raise Denied(
                Denial(rules.TENANCY, "(TenantConfig)", "no TenantConfigs exist in the cluster")
            )
        try:
            config = TenantConfig.from_dict(raw_config)
        except ModelError as error:
            raise Denied(
                Denial(rules.TENANCY, "(TenantConfig)", f"the TenantConfig is unusable: {error}")
            ) from None
        network = _network(desired, request.kind)
        plan = tenancy.plan_attachment(network, config, pick=self.pick)
        desired = mutate.attach_to_profile(
            desired,
            host_device=plan.host_device,
            device_pool=plan.device_pool,
            network_id=plan.network_id,
        )
        self._post_validate(request, desired)
        if plan.profile is None:
            return desired
        ref = tenancy.network_ref(request.namespace, request.name)
        try:
            vni = self.store.reserve_vni(
                profile_name=plan.profile.name,
                vni_type=plan.vni_type,
                network=ref,
                dry_run=request.dry_run,
            )
        except (KubeError, IpamError, LookupError) as error:
            raise Denied(
                Denial(
                    rules.TENANCY,
                    f"spec.Options.{plan.vni_type}",
                    f"cannot reserve VNI for interface:{plan.profile.name} , because:{error}",
                )
            ) from None
        _log.info(
            "reserved %s %d of profile %s for TenantNetwork %s%s",
            plan.vni_type,
            vni,
            plan.profile.name,
            ref,
            " (dry run, not written)" if request.dry_run else "",
        )
        return mutate.set_vni(desired, vni_type=plan.vni_type, vni=vni)

    def _connected(self, request: AdmissionRequest, failure: str) -> rules.ConnectedPod | None:
        try:
            return self.store.connected_pod(
                kind=request.kind, name=request.name, namespace=request.namespace
            )
        except KubeError as error:
            raise Denied(Denial(rules.DELETE_CONNECTED, "(DanmEps)", f"{failure}{error}")) from None

    def _review_delete(self, request: AdmissionRequest) -> Response:
        """``/netdeletion``: no Pods connected; a TenantNetwork's VNI goes back (§7.6)."""
        try:
            if request.old_obj is None:
                raise Denied(
                    Denial(
                        rules.OBJECT,
                        "oldObject",
                        "a DELETE review must carry the oldObject (Kubernetes 1.15 or later)",
                    )
                )
            connected = self._connected(
                request,
                "Network cannot be deleted because there is no way to tell if Pods are still "
                "using it due to:",
            )
            denial = rules.check_delete(connected)
            if denial is not None:
                raise Denied(denial)
            if request.kind == KIND_TENANT_NETWORK and not request.dry_run:
                self._free_vni(request)
        except Denied as denied:
            return _deny(request, denied.denial)
        return allow(request)

    def _free_vni(self, request: AdmissionRequest) -> None:
        try:
            network = network_from_dict(request.old_obj, kind=request.kind)
        except ModelError:
            return  # NB: a network whose fields cannot be read holds no VNI we could find.
        held = tenancy.profile_of_network(network)
        if held is None:
            return
        profile_name, vni_type, vni = held
        try:
            self.store.free_vni(profile_name=profile_name, vni_type=vni_type, vni=vni)
        except (KubeError, IpamError) as error:
            raise Denied(
                Denial(
                    rules.TENANCY,
                    f"spec.Options.{vni_type}",
                    f"The network's VNI could not be freed, because:{error}",
                )
            ) from None


def _network(obj: Mapping[str, Any], kind: str) -> Network:
    try:
        return network_from_dict(obj, kind=kind)
    except ModelError as error:
        raise Denied(rules.malformed(kind, error)) from None


def _object_or_deny(request: AdmissionRequest) -> dict[str, Any]:
    if request.obj is None:
        raise Denied(
            Denial(rules.OBJECT, "object", f"the {request.operation} review has no object")
        )
    return request.obj


def _deny(request: AdmissionRequest, denial: Denial, *, code: int | None = None) -> Response:
    _log.info(
        "denied %s %s %s/%s: %s",
        request.operation,
        request.kind,
        request.namespace,
        request.name,
        denial,
    )
    if code is None:
        code = CODE_BAD_REQUEST if denial.rule is rules.OBJECT else 403
    return deny(request, str(denial), code=code)


def _deny_kind(request: AdmissionRequest) -> Response:
    denial = Denial(
        rules.KIND,
        "kind",
        f"K8s API type:{request.kind or '(none)'} is not handled by DANM webhook",
    )
    return _deny(request, denial, code=CODE_BAD_REQUEST)


def _options(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return mutate.options_of(obj) if obj is not None else {}


def may_call_api(request: AdmissionRequest) -> bool:
    """Whether deciding ``request`` may block on the API (so it belongs in a worker thread)."""
    if request.kind == KIND_TENANT_CONFIG or request.kind not in NETWORK_KINDS:
        return False
    if request.operation == DELETE:
        return True
    if request.operation == CREATE:
        return request.kind == KIND_TENANT_NETWORK
    if request.operation == UPDATE:
        new, old = _options(request.obj), _options(request.old_obj)
        return any(new.get(key) != old.get(key) for key in rules.POD_SENSITIVE_FIELDS)
    return False
