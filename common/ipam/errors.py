"""The vocabulary of IPAM failures, so callers can react to a kind of failure, not to message text.

The original DANM returned bare error strings; its callers could only wrap or print them. Here each
failure has a type, and the message always names what was wrong (the network, the address, the
field), so it can go to the Pod's events or a webhook denial unchanged::

    IpamError                     any IPAM failure; never raised itself
    ├── InvalidNetworkConfig      the network's own IPAM fields are unusable (cidr, net6, pools)
    ├── CorruptAllocation         a stored alloc / alloc6 / VNI alloc string cannot be decoded,
    │                             or its size does not match the range it tracks
    ├── InvalidAddressRequest     an "ip"/"ip6" request cannot be honoured as written (malformed,
    │                             outside the network, asked from an L2 network, ...)
    ├── AddressInUse              a static address that is already reserved
    ├── AddressExhausted          no free address is left in the allocation pool
    └── VniError                  any TenantConfig VNI failure
        ├── InvalidVniRange       a vniRange text that does not parse, or exceeds MAX_VNI
        └── VniExhausted          every VNI of the profile's range is reserved

None of them is temporary: retrying the same request against the same object fails the same way.
Only an optimistic-concurrency conflict on the write (handled by the caller, not here) warrants a
retry on a re-read object.
"""

from __future__ import annotations


class IpamError(Exception):
    """Base of every IPAM failure."""


class InvalidNetworkConfig(IpamError):
    """The network's IPAM fields (cidr, net6, allocation pools) cannot be used as they are."""


class CorruptAllocation(IpamError):
    """A stored allocation bit array is not valid base64 or does not fit the range it tracks."""


class InvalidAddressRequest(IpamError):
    """An address request (the Pod's "ip"/"ip6") cannot be honoured as written."""


class AddressInUse(IpamError):
    """The requested static address is already reserved."""


class AddressExhausted(IpamError):
    """No free address is left in the allocation pool."""


class VniError(IpamError):
    """Base of TenantConfig VNI failures."""


class InvalidVniRange(VniError):
    """A vniRange text that does not parse, or contains a VNI above MAX_VNI."""


class VniExhausted(VniError):
    """Every VNI of an interface profile's range is already reserved."""
