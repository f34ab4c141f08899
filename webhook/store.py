"""What the webhook reads from and writes to the cluster, behind one narrow interface.

Admission logic asks domain questions ("is a Pod still on this network?", "reserve a VNI from
this profile") instead of issuing REST calls, so it can be driven by a fake in unit tests and the
real :class:`KubeStore` in production. Calls are blocking (the official client is synchronous);
the server runs them in worker threads, never on its event loop.

TenantConfig writes are read-modify-write guarded by resourceVersion through
``common.io.kube.update_with_retry``: concurrent reservations (several webhook replicas, or one
replica serving parallel requests) re-read and retry on 409 Conflict instead of handing the same
VNI out twice (the original did one unguarded Update, §8).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from common.io.kube import JsonObject, KubeApi, update_with_retry
from common.model import resources
from webhook import tenancy
from webhook.rules import ConnectedPod, find_connected

_log = logging.getLogger(__name__)

#: Upper bound for one TenantConfig read-modify-write loop; below the webhook's timeoutSeconds.
VNI_WRITE_DEADLINE_S = 8.0


class AdmissionStore(Protocol):
    def connected_pod(self, *, kind: str, name: str, namespace: str) -> ConnectedPod | None: ...

    def tenant_config(self) -> JsonObject | None: ...

    def reserve_vni(
        self, *, profile_name: str, vni_type: str, network: str, dry_run: bool
    ) -> int: ...

    def free_vni(self, *, profile_name: str, vni_type: str, vni: int) -> None: ...


@dataclass
class KubeStore:
    """:class:`AdmissionStore` over the Kubernetes API."""

    api: KubeApi
    clock: Callable[[], float] = field(default=time.time)
    deadline_s: float = VNI_WRITE_DEADLINE_S

    def connected_pod(self, *, kind: str, name: str, namespace: str) -> ConnectedPod | None:
        # NB: DanmNet/TenantNetwork endpoints live in the network's namespace; a ClusterNetwork's
        # anywhere. Listing one namespace keeps the common case cheap.
        scope = None if kind == "ClusterNetwork" else namespace
        endpoints = self.api.list(resources.DANMEPS, scope)
        return find_connected(endpoints["items"], kind=kind, name=name, namespace=namespace)

    def tenant_config(self) -> JsonObject | None:
        """The cluster's TenantConfig: the first one listed (one per cluster, §1.4)."""
        items = self.api.list(resources.TENANTCONFIGS)["items"]
        return items[0] if items else None

    def _tenant_config_name(self) -> str:
        config = self.tenant_config()
        if config is None:
            raise LookupError("no TenantConfigs exist in the cluster")
        return str(config["metadata"]["name"])

    def reserve_vni(self, *, profile_name: str, vni_type: str, network: str, dry_run: bool) -> int:
        """Reserve and persist a VNI; on ``dry_run`` only compute which one it would be."""
        name = self._tenant_config_name()
        tenant_networks = self.api.list(resources.TENANTNETWORKS)["items"]
        in_use = tenancy.vnis_in_use(tenant_networks, profile_name=profile_name, vni_type=vni_type)
        reserved: list[int] = []

        def mutate(current: JsonObject) -> JsonObject:
            updated, vni = tenancy.reserve_vni_in_config(
                current,
                profile_name=profile_name,
                vni_type=vni_type,
                network=network,
                now=self.clock(),
                in_use=in_use,
            )
            reserved.append(vni)
            return updated

        if dry_run:
            mutate(self.api.get(resources.TENANTCONFIGS, None, name))
        else:
            update_with_retry(
                self.api, resources.TENANTCONFIGS, None, name, mutate, deadline_s=self.deadline_s
            )
        return reserved[-1]

    def free_vni(self, *, profile_name: str, vni_type: str, vni: int) -> None:
        config = self.tenant_config()
        if config is None:
            _log.warning("VNI %s %s of %s not freed: no TenantConfig", vni_type, vni, profile_name)
            return
        name = str(config["metadata"]["name"])

        def mutate(current: JsonObject) -> JsonObject | None:
            try:
                return tenancy.free_vni_in_config(
                    current,
                    profile_name=profile_name,
                    vni_type=vni_type,
                    vni=vni,
                    now=self.clock(),
                )
            except tenancy.ProfileNotFound as missing:
                # NB: as the original: a profile removed by the admin has nothing left to free.
                _log.warning("VNI %s not freed: %s", vni, missing)
                return None

        update_with_retry(
            self.api, resources.TENANTCONFIGS, None, name, mutate, deadline_s=self.deadline_s
        )
