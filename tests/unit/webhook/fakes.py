"""A recording AdmissionStore for unit tests (checked against the Protocol by mypy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.io.kube import KubeUnavailable
from webhook.rules import ConnectedPod
from webhook.store import AdmissionStore


@dataclass
class FakeStore:
    connected: ConnectedPod | None = None
    config: dict[str, Any] | None = None
    next_vni: int = 200
    fail: bool = False
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            c for c in self.calls if c[0] in ("reserve_vni", "free_vni") and not c[1].get("dry_run")
        ]

    def connected_pod(self, *, kind: str, name: str, namespace: str) -> ConnectedPod | None:
        self.calls.append(("connected_pod", {"kind": kind, "name": name, "namespace": namespace}))
        if self.fail:
            raise KubeUnavailable("API down")
        return self.connected

    def tenant_config(self) -> dict[str, Any] | None:
        self.calls.append(("tenant_config", {}))
        return self.config

    def reserve_vni(self, *, profile_name: str, vni_type: str, network: str, dry_run: bool) -> int:
        self.calls.append(
            (
                "reserve_vni",
                {
                    "profile_name": profile_name,
                    "vni_type": vni_type,
                    "network": network,
                    "dry_run": dry_run,
                },
            )
        )
        if self.fail:
            raise KubeUnavailable("API down")
        return self.next_vni

    def free_vni(self, *, profile_name: str, vni_type: str, vni: int) -> None:
        self.calls.append(
            ("free_vni", {"profile_name": profile_name, "vni_type": vni_type, "vni": vni})
        )
        if self.fail:
            raise KubeUnavailable("API down")


_check: AdmissionStore = FakeStore()
