"""Connecting TenantNetworks to the TenantConfig: profile choice, NetworkID override, VNI books.

README "Connecting TenantNetworks to TenantConfigs" and danm-behaviour §7.3/§8, as pure functions
over plain data; ``webhook.store`` does the reading and the conditional writing.

Profile selection (dynamic backends only): a ``device_pool`` names a pool profile, a
``host_device`` names a NIC profile (one without ``/``); with neither, a NIC profile is picked at
random (``pick`` is injected so tests are deterministic). Device pools are never picked at random:
the Pods request that resource in their own spec. The NetworkType→NetworkID override prefers an
exact-case key and falls back to case-insensitive keys in sorted order, so the answer no longer
depends on map iteration order (§13.26).

VNI bookkeeping and leaks (§13.19). The original reserved the VNI first and wrote it before the
network existed, so any later failure leaked it. Here the webhook reserves last, after every rule
has passed, and nothing is written for a denied request. A failure *after* our answer (another
webhook denies, the name already exists, a network DELETE that fails after its VNI was freed)
cannot be seen from inside admission, so the books heal themselves instead: every reservation
rebuilds the profile's bit array from the truth, namely

* the VNIs of the TenantNetworks that exist (listed just before the write), plus
* reservations made in the last ``PENDING_GRACE_S`` seconds, recorded with the network they were
  made for in the TenantConfig annotation ``danm.k8s.io/pending-vnis`` (a network admitted but
  not yet stored is invisible to the list, so its VNI must not be handed out again),

so a leaked VNI is reclaimed by the next reservation from that profile once its grace period is
over, and a wrongly freed one is marked taken again. Consequence: bits set by hand in a profile's
``alloc`` without a TenantNetwork behind them are cleared by the next reservation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from common.ipam import vni as vnis
from common.ipam.bitarray import BitArray
from common.model import HostDeviceProfile, Network, TenantConfig, is_dynamic_type
from webhook.rules import TENANCY, Denial, Denied

PENDING_ANNOTATION: Final = "danm.k8s.io/pending-vnis"
#: How long a reservation is protected before a TenantNetwork must exist for it. Admission
#: (at most 30 s) plus storage takes far less; the margin covers clock skew between replicas.
PENDING_GRACE_S: Final = 300.0

Pick = Callable[[Sequence[HostDeviceProfile]], HostDeviceProfile]


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a TenantNetwork gets from the TenantConfig.

    ``vni_type`` is ``vlan``/``vxlan`` when a VNI must be reserved from ``profile``, else ``""``.
    """

    host_device: str
    device_pool: str
    network_id: str
    profile: HostDeviceProfile | None
    vni_type: str


def select_profile(network: Network, config: TenantConfig, *, pick: Pick) -> HostDeviceProfile:
    """The interface profile for a dynamic-backend TenantNetwork, or :class:`Denied`."""
    options = network.options
    candidates = []
    for profile in config.host_devices:
        if options.device_pool and options.device_pool == profile.name:
            return profile
        if options.host_device and options.host_device == profile.name:
            if not profile.is_device_pool:
                return profile
        if not profile.is_device_pool:
            candidates.append(profile)
    if options.device_pool or options.host_device:
        field = "spec.Options.device_pool" if options.device_pool else "spec.Options.host_device"
        raise Denied(
            Denial(
                TENANCY,
                field,
                "The provided physical interface is not allowed to be used by tenants!",
            )
        )
    if not candidates:
        raise Denied(
            Denial(
                TENANCY,
                "spec.Options.host_device",
                "There are no suitable interface profiles configured for TenantNetworks!",
            )
        )
    return pick(candidates)


def override_network_id(network_ids: Mapping[str, str], network_type: str) -> str | None:
    """The NetworkID the TenantConfig maps ``network_type`` to, or None (§13.26 fixed)."""
    if network_type in network_ids:
        return network_ids[network_type]
    wanted = network_type.lower()
    for key in sorted(network_ids):
        if key.lower() == wanted:
            return network_ids[key]
    return None


def plan_attachment(network: Network, config: TenantConfig, *, pick: Pick) -> Attachment:
    """Everything a TenantNetwork CREATE takes from the TenantConfig, VNI reservation aside."""
    options = network.options
    host_device, device_pool = options.host_device, options.device_pool
    profile = None
    vni_type = ""
    if is_dynamic_type(network.network_type):
        profile = select_profile(network, config, pick=pick)
        if not host_device and not device_pool:
            host_device = profile.name
        if profile.vni_type == "vlan" and not options.vlan:
            vni_type = "vlan"
        elif profile.vni_type == "vxlan" and not options.vxlan:
            vni_type = "vxlan"
    override = override_network_id(config.network_ids, network.network_type)
    return Attachment(
        host_device=host_device,
        device_pool=device_pool,
        network_id=network.network_id if override is None else override,
        profile=profile if vni_type else None,
        vni_type=vni_type,
    )


def profile_of_network(network: Network) -> tuple[str, str, int] | None:
    """(profile name, vniType, VNI) a TenantNetwork holds, or None when it has no VNI (§8)."""
    options = network.options
    if options.vxlan:
        vni_type, vni = "vxlan", options.vxlan
    elif options.vlan:
        vni_type, vni = "vlan", options.vlan
    else:
        return None
    return options.device_pool or options.host_device, vni_type, vni


def vnis_in_use(
    tenant_networks: Iterable[Mapping[str, Any]], *, profile_name: str, vni_type: str
) -> set[int]:
    """VNIs that stored TenantNetworks hold from the profile (name, vniType)."""
    used = set()
    for item in tenant_networks:
        options = (
            item.get("spec", {}).get("Options") if isinstance(item.get("spec"), dict) else None
        )
        if not isinstance(options, dict):
            continue
        name = options.get("device_pool") or options.get("host_device")
        vni = options.get(vni_type)
        if name == profile_name and isinstance(vni, int) and not isinstance(vni, bool) and vni > 0:
            used.add(vni)
    return used


# ---------------------------------------------------------------------------------------------
# The TenantConfig object as stored: hostDevices[].alloc plus the pending-reservations annotation


def network_ref(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _pending(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    annotations = (config.get("metadata") or {}).get("annotations") or {}
    try:
        entries = json.loads(annotations.get(PENDING_ANNOTATION) or "[]")
    except ValueError:
        return []  # NB: a hand-mangled annotation only costs the protection it gave.
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("vni"), int)
        and isinstance(e.get("reservedAt"), int | float)
    ]


def _store_pending(config: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    metadata = config.setdefault("metadata", {})
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
        metadata["annotations"] = annotations
    if entries:
        annotations[PENDING_ANNOTATION] = json.dumps(entries, separators=(",", ":"), sort_keys=True)
    else:
        annotations.pop(PENDING_ANNOTATION, None)
        if not annotations:
            del metadata["annotations"]


def _fresh(entry: Mapping[str, Any], now: float) -> bool:
    return bool(-PENDING_GRACE_S < now - float(entry["reservedAt"]) < PENDING_GRACE_S)


def _matches(entry: Mapping[str, Any], profile_name: str, vni_type: str) -> bool:
    return bool(entry.get("profile") == profile_name and entry.get("vniType") == vni_type)


def _find_profile(
    config: Mapping[str, Any], profile_name: str, vni_type: str
) -> dict[str, Any] | None:
    devices = config.get("hostDevices")
    for profile in devices if isinstance(devices, list) else ():
        if (
            isinstance(profile, dict)
            and profile.get("name") == profile_name
            and (profile.get("vniType") or "") == vni_type
        ):
            return profile
    return None


class ProfileNotFound(LookupError):
    """The TenantConfig has no profile with that (name, vniType)."""


def reserve_vni_in_config(
    config: Mapping[str, Any],
    *,
    profile_name: str,
    vni_type: str,
    network: str,
    now: float,
    in_use: Collection[int] | None,
) -> tuple[dict[str, Any], int]:
    """Reserve the lowest free VNI of a profile; returns (new TenantConfig object, VNI).

    ``in_use`` are the VNIs stored TenantNetworks hold from this profile (see the module
    docstring); ``None`` skips the reconciliation and trusts ``alloc`` as it is. ``network``
    (``namespace/name``) is recorded in the pending annotation. Raises ``VniError`` when the
    range is exhausted or malformed, :class:`ProfileNotFound` when the profile is gone.
    """
    result = copy.deepcopy(dict(config))
    profile = _find_profile(result, profile_name, vni_type)
    if profile is None:
        raise ProfileNotFound(
            f"interface profile:{profile_name} with vniType:{vni_type} is not in TenantConfig"
        )
    pending = [e for e in _pending(result) if _fresh(e, now)]
    alloc = profile.get("alloc") or ""
    if in_use is not None:
        protected = set(in_use) | {
            int(e["vni"]) for e in pending if _matches(e, profile_name, vni_type)
        }
        bits = BitArray.from_base64(vnis.new_vni_alloc())
        for taken in protected:
            if 0 < taken <= vnis.MAX_VNI:
                bits.set(taken)
        alloc = bits.to_base64()
    new_alloc, vni = vnis.reserve_vni(
        alloc, profile.get("vniRange") or "", profile_name=profile_name
    )
    profile["alloc"] = new_alloc
    pending.append(
        {
            "profile": profile_name,
            "vniType": vni_type,
            "vni": vni,
            "network": network,
            "reservedAt": round(now, 3),
        }
    )
    _store_pending(result, pending)
    return result, vni


def free_vni_in_config(
    config: Mapping[str, Any],
    *,
    profile_name: str,
    vni_type: str,
    vni: int,
    now: float,
) -> dict[str, Any]:
    """The TenantConfig with ``vni`` given back to the profile and its pending record dropped.

    Raises :class:`ProfileNotFound` when the profile is gone (nothing to free then).
    """
    result = copy.deepcopy(dict(config))
    profile = _find_profile(result, profile_name, vni_type)
    if profile is None:
        raise ProfileNotFound(
            f"interface profile:{profile_name} with vniType:{vni_type} is not in TenantConfig"
        )
    alloc = profile.get("alloc") or ""
    if alloc:
        profile["alloc"] = vnis.free_vni(alloc, vni, profile_name=profile_name)
    pending = [
        e
        for e in _pending(result)
        if _fresh(e, now) and not (_matches(e, profile_name, vni_type) and e["vni"] == vni)
    ]
    _store_pending(result, pending)
    return result
