"""DANM's IP and VNI address management as pure functions over the strings stored in API objects.

The allocation state of a network (which IPv4/IPv6 addresses are taken) and of a TenantConfig
interface profile (which VNIs are taken) lives only in base64 bit arrays inside those objects.
This package reads and rewrites those strings and nothing else: no Kubernetes client, no I/O.
Callers read an object, call `ipv4.reserve` / `ipv6.reserve` / `vni.reserve_vni` (or the release
counterparts), write the returned fields back guarded by resourceVersion, and on a conflict
re-read and call again.

Modules: `bitarray` (the wire format), `ipv4`, `ipv6`, `vni`, `errors` (the exception tree).
"""

from common.ipam import bitarray, errors, ipv4, ipv6, vni
from common.ipam.bitarray import BitArray
from common.ipam.errors import (
    AddressExhausted,
    AddressInUse,
    CorruptAllocation,
    InvalidAddressRequest,
    InvalidNetworkConfig,
    InvalidVniRange,
    IpamError,
    VniError,
    VniExhausted,
)
from common.ipam.ipv4 import Ipv4Pool
from common.ipam.ipv6 import Ipv6Pool

__all__ = [
    "AddressExhausted",
    "AddressInUse",
    "BitArray",
    "CorruptAllocation",
    "InvalidAddressRequest",
    "InvalidNetworkConfig",
    "InvalidVniRange",
    "IpamError",
    "Ipv4Pool",
    "Ipv6Pool",
    "VniError",
    "VniExhausted",
    "bitarray",
    "errors",
    "ipv4",
    "ipv6",
    "vni",
]
