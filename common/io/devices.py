"""Reading what the node knows about device-plugin devices (SR-IOV VFs) for the CNI.

Why it exists: an SR-IOV connection needs the VF's PCI address (from the kubelet's device-plugin
checkpoint file) and, for older sriov-cni releases, the name of the VF's physical function (from
``/sys``). Both are reads of node files; the parsing and the choice of device are pure and live
in ``danm.devices``. The kubelet Pod Resources API, the preferred source when its socket
exists, is ``common.io.podresources``.

Errors are ``DeviceReadError`` with the path, never a bare ``OSError``.
"""

from __future__ import annotations

import os
import re

SYS_ROOT = "/sys"
# NB: a PCI address such as 0000:af:06.0; anything else must not become a path under /sys.
_PCI_ADDRESS = re.compile(r"^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


class DeviceReadError(Exception):
    """A device file could not be read, or does not say what is needed."""


def read_checkpoint(path: str) -> bytes | None:
    """The kubelet device-plugin checkpoint file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DeviceReadError(f"cannot read kubelet checkpoint {path}: {error}") from error


def pf_name(device_id: str, *, sys_root: str = SYS_ROOT) -> str:
    """The network interface name of the physical function of VF ``device_id`` (a PCI address).

    The first (sorted) entry of ``/sys/bus/pci/devices/<id>/physfn/net/``, as the original did.
    """
    if not _PCI_ADDRESS.match(device_id):
        raise DeviceReadError(
            f"failed to get the name of the sriov PF for device {device_id!r}: not a PCI "
            "address such as 0000:af:06.0"
        )
    directory = os.path.join(sys_root, "bus", "pci", "devices", device_id, "physfn", "net")
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise DeviceReadError(
            f"failed to get the name of the sriov PF for device {device_id} due to: {error}"
        ) from error
    if not names:
        raise DeviceReadError(
            f"failed to get the name of the sriov PF for device {device_id}: {directory} is empty"
        )
    return names[0]
