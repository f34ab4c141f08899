"""Names of the network interfaces DANM creates, in the Pod and on the host.

Linux refuses interface names longer than 15 bytes (IFNAMSIZ 16 with the NUL). The original
silently produced such names (a VLAN interface ``<NetworkID>.<vlan>`` can reach 16 characters,
danm-behaviour.md §13.18) and failed later deep inside netlink; here every name is checked when it
is computed and refused with the reason, never truncated, so a too-long NetworkID or prefix is
reported against the object that caused it.
"""

from __future__ import annotations

from common.model.constants import (
    DEFAULT_IFNAME_PREFIX,
    FIRST_IFNAME,
    LEGACY_NAMING_SCHEME,
    MAX_IFNAME_LENGTH,
    MAX_VLAN_ID,
    MIN_VLAN_ID,
    VXLAN_HOST_IFNAME_PREFIX,
)
from common.model.network import NetworkSpec


class InterfaceNameError(ValueError):
    """A valid Linux interface name cannot be made from the given network attributes."""


# NB: the kernel's dev_valid_name() also refuses "/", ":" and whitespace, and "."/"..".
_FORBIDDEN_CHARACTERS = frozenset("/:") | frozenset(" \t\n\r\v\f")


def check_interface_name(name: str, what: str) -> str:
    """Return ``name`` if Linux accepts it as an interface name, else raise with ``what`` it is."""
    if not name:
        raise InterfaceNameError(f"{what}: the interface name is empty")
    if name in (".", ".."):
        raise InterfaceNameError(f"{what}: {name!r} is not a valid interface name")
    bad = sorted({c for c in name if c in _FORBIDDEN_CHARACTERS})
    if bad:
        raise InterfaceNameError(
            f"{what}: interface name {name!r} contains characters Linux refuses: {bad!r}"
        )
    length = len(name.encode())
    if length > MAX_IFNAME_LENGTH:
        raise InterfaceNameError(
            f"{what}: interface name {name!r} is {length} bytes long, but Linux allows at most "
            f"{MAX_IFNAME_LENGTH}"
        )
    return name


def container_interface_name(naming_scheme: str, container_prefix: str, sequence: int) -> str:
    """Name of the Pod interface for the connection at ``sequence`` (0-based; §3.5).

    The first interface is always ``eth0`` (kubelet looks for it). Otherwise the network's
    ``container_prefix`` is used verbatim under the ``legacy`` naming scheme, or suffixed with the
    sequence number; without a prefix the name is ``eth<sequence>``.
    """
    if sequence < 0:
        raise InterfaceNameError(f"interface sequence number must be >= 0, got {sequence}")
    if sequence == 0:
        return FIRST_IFNAME
    if container_prefix:
        if naming_scheme == LEGACY_NAMING_SCHEME:
            name = container_prefix
        else:
            name = f"{container_prefix}{sequence}"
        what = f"container_prefix {container_prefix!r} for connection no.:{sequence}"
    else:
        name = f"{DEFAULT_IFNAME_PREFIX}{sequence}"
        what = f"connection no.:{sequence}"
    return check_interface_name(name, what)


def vlan_host_interface_name(network_id: str, vlan: int) -> str:
    """Host VLAN interface of a network: ``<NetworkID>.<vlan>`` (§9)."""
    if not network_id:
        raise InterfaceNameError("VLAN host interface: the network has no NetworkID")
    if not MIN_VLAN_ID <= vlan <= MAX_VLAN_ID:
        raise InterfaceNameError(
            f"VLAN host interface of NetworkID {network_id!r}: vlan {vlan} is outside "
            f"{MIN_VLAN_ID}-{MAX_VLAN_ID}"
        )
    return check_interface_name(
        f"{network_id}.{vlan}", f"VLAN host interface of NetworkID {network_id!r}"
    )


def vxlan_host_interface_name(network_id: str) -> str:
    """Host VxLAN interface of a network: ``vx_<NetworkID>`` (§9)."""
    if not network_id:
        raise InterfaceNameError("VxLAN host interface: the network has no NetworkID")
    return check_interface_name(
        f"{VXLAN_HOST_IFNAME_PREFIX}{network_id}",
        f"VxLAN host interface of NetworkID {network_id!r}",
    )


def parent_device_name(spec: NetworkSpec) -> str:
    """Host interface that Pod interfaces of this network hang off (§5.1, §4.4).

    VxLAN wins over VLAN, which wins over the plain ``host_device``. Takes the whole spec because
    the VLAN/VxLAN names are built from ``NetworkID``, which lives outside ``Options``.
    """
    options = spec.options
    if options.vxlan:
        return vxlan_host_interface_name(spec.network_id)
    if options.vlan:
        return vlan_host_interface_name(spec.network_id, options.vlan)
    if not options.host_device:
        raise InterfaceNameError(
            f"network with NetworkID {spec.network_id!r} has no host_device, vlan or vxlan, so it "
            "has no parent host interface"
        )
    return check_interface_name(options.host_device, "host_device")
