"""MAC addresses DANM reports for its interfaces, and the EUI-64 interface identifier.

A DanmEp records a ``MacAddress`` for every interface, and for the built-in IPVLAN that record is
written before the link exists (the DanmEp and the IP reservation come first so that a failure
half-way leaves something DEL can find). So a value is needed up front: :func:`random_mac` makes
one in the original's format, ``fa:16:3e:XX:YY:ZZ`` (danm-behaviour.md §6.6). Once the link
exists, the orchestrator reports the link's *real* MAC in the CNI result (an IPVLAN link shares
its parent's MAC, §13.5) and may update the DanmEp with it; the random value is only the
placeholder of the planning phase.

Differences from the seed:

* the seed seeded a PRNG with the current nanosecond time on every call, so concurrent ADDs on
  one node could produce the same MAC, and it drew the octets from [0,126]/[0,254] only. Here all
  24 free bits come from the OS CSPRNG (``secrets``), so collisions are as unlikely as 24 random
  bits allow and nothing depends on the clock;
* IPv6 addresses are no longer derived from the MAC (``common.ipam.ipv6`` tracks them in
  ``alloc6``), but :func:`eui64_address` is kept for callers that want the classic SLAAC-style
  address for a MAC, and it masks ``net6``'s host bits instead of adding them (§13.12).

``fa`` has the locally administered bit (0x02) set and the multicast bit (0x01) clear, so every
MAC made here is a valid unicast, locally administered address.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable

#: The first three octets of every MAC DANM makes (OpenStack's well-known local OUI).
DANM_MAC_PREFIX = "fa:16:3e"

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_UNIVERSAL_LOCAL_BIT = 0x02_00_00_00_00_00


class InvalidMacAddress(ValueError):
    """A text that is not a colon-separated 48-bit MAC address."""


def random_mac(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A fresh ``fa:16:3e:xx:xx:xx`` MAC, lower-case; ``random_bytes(n)`` supplies the entropy."""
    suffix = random_bytes(3)
    if len(suffix) != 3:
        raise ValueError(f"random_bytes(3) returned {len(suffix)} bytes")
    return DANM_MAC_PREFIX + "".join(f":{octet:02x}" for octet in suffix)


def parse_mac(text: str) -> int:
    """``aa:bb:cc:dd:ee:ff`` (either case) as a 48-bit integer."""
    if not isinstance(text, str) or _MAC.match(text) is None:
        raise InvalidMacAddress(
            f"invalid MAC address {text!r}: expected six colon-separated hex octets, "
            "e.g. fa:16:3e:12:34:56"
        )
    return int(text.replace(":", ""), 16)


def eui64_interface_id(mac: str) -> int:
    """The modified EUI-64 interface identifier (RFC 4291 appendix A) of ``mac``, as an int.

    The universal/local bit is flipped and ``ff:fe`` inserted in the middle, so
    ``fa:16:3e:12:34:56`` gives ``f816:3eff:fe12:3456``.
    """
    flipped = parse_mac(mac) ^ _UNIVERSAL_LOCAL_BIT
    upper, lower = flipped >> 24, flipped & 0xFF_FF_FF
    return (upper << 40) | (0xFF_FE << 24) | lower


def eui64_address(net6: str, mac: str) -> str:
    """``net6``'s network address plus the EUI-64 identifier of ``mac``, with net6's prefix.

    ``net6`` must be an IPv6 CIDR of /64 or shorter (the identifier takes the low 64 bits); its
    host bits are masked, so ``2001:db8::1/64`` and ``2001:db8::/64`` give the same address.
    """
    try:
        net = ipaddress.IPv6Network(net6, strict=False)
    except ValueError as error:
        raise ValueError(f"invalid net6 {net6!r}: {error}") from None
    if "/" not in net6:
        raise ValueError(f"invalid net6 {net6!r}: expected an IPv6 CIDR such as 2001:db8::/64")
    if net.prefixlen > 64:
        raise ValueError(
            f"net6 {net6} is longer than /64, so it has no room for a 64-bit EUI-64 identifier"
        )
    address = ipaddress.IPv6Address(int(net.network_address) | eui64_interface_id(mac))
    return f"{address}/{net.prefixlen}"
