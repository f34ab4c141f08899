"""VLAN/VxLAN id (VNI) bookkeeping for TenantConfig interface profiles (`hostDevices[]`).

A profile's `vniRange` lists the VNIs tenants may get (`"2000-2500,2601,2650-2700"`) and its
`alloc` is a `BitArray` of `VNI_ALLOC_BITS` bits in which bit i set means VNI i is taken; bit 0 is
set from the start so VNI 0 ("unset") is never handed out. The layout is shared with the original.

Deliberate difference: the original parsed ranges with the Kubernetes cpuset parser, which silently
drops items such as `"2500-2000"` or `"1-2-3"`. Here every malformed item is an `InvalidVniRange`
naming the item, so an admin's typo is reported instead of shrinking the range unseen.
"""

from __future__ import annotations

import re

from common.ipam.bitarray import BitArray
from common.ipam.errors import InvalidVniRange, VniExhausted

MAX_VNI = 5000
VNI_ALLOC_BITS = MAX_VNI + 1

# NB: ASCII digits only, and few enough that int() stays cheap and far below Python's
# int-from-str digit limit; anything longer is far above MAX_VNI anyway.
_NUMBER = re.compile(r"[0-9]{1,9}")

VniRange = tuple[tuple[int, int], ...]
"""Inclusive (low, high) intervals in the order they were written."""


def parse_vni_range(text: str) -> VniRange:
    """Parse a `vniRange`: comma-separated items, each `N` or `A-B` (inclusive, A <= B).

    `""` is the empty range. Whitespace, empty items, negative or non-decimal numbers, reversed
    ranges and items with more than one `-` raise InvalidVniRange naming the offending item.
    """
    if text == "":
        return ()
    intervals = []
    for position, item in enumerate(text.split(","), start=1):
        intervals.append(_parse_item(text, position, item))
    return tuple(intervals)


def _parse_item(text: str, position: int, item: str) -> tuple[int, int]:
    where = f"vniRange {text!r}: item {position}"
    if item == "":
        raise InvalidVniRange(f"{where} is empty (look for a doubled, leading or trailing comma)")
    if item.startswith("-"):
        raise InvalidVniRange(f"{where} {item!r} is negative; VNIs are 0 or greater")
    parts = item.split("-")
    if len(parts) > 2:
        raise InvalidVniRange(
            f"{where} {item!r} has more than one '-'; write a range as LOW-HIGH, e.g. 2000-2500"
        )
    for part in parts:
        if part == "":
            raise InvalidVniRange(f"{where} {item!r} is missing a number on one side of '-'")
        if not _NUMBER.fullmatch(part):
            raise InvalidVniRange(
                f"{where} {item!r}: {part!r} is not a decimal VNI number (no spaces or signs)"
            )
    low, high = int(parts[0]), int(parts[-1])
    if low > high:
        raise InvalidVniRange(
            f"{where} {item!r} is reversed: {low} is greater than {high}; write {high}-{low}"
        )
    return low, high


def check_max_vni(ranges: VniRange, *, profile_name: str) -> None:
    """Refuse ranges reaching above MAX_VNI, with the original's error text."""
    if any(high > MAX_VNI for _, high in ranges):
        raise InvalidVniRange(
            f"vniRange for interface:{profile_name} is invalid, because it cannot contain VNIs "
            f"over the maximum supported number that is:{MAX_VNI}"
        )


def new_vni_alloc() -> str:
    """A fresh profile `alloc`: 5001 bits, only VNI 0 reserved (836 base64 chars)."""
    return BitArray(VNI_ALLOC_BITS).to_base64()


def _load(alloc: str, profile_name: str) -> BitArray:
    return BitArray.from_base64(
        alloc, length=VNI_ALLOC_BITS, what=f"alloc of interface profile:{profile_name}"
    )


def reserve_vni(alloc: str, vni_range: str, *, profile_name: str) -> tuple[str, int]:
    """Reserve the lowest free VNI of `vni_range`; returns (updated alloc, VNI).

    An empty `alloc` (profile written without the webhook) is initialised on the fly.
    """
    ranges = parse_vni_range(vni_range)
    check_max_vni(ranges, profile_name=profile_name)
    bits = _load(alloc or new_vni_alloc(), profile_name)
    found = [vni for low, high in ranges if (vni := bits.find_clear(low, high)) is not None]
    if not found:
        raise VniExhausted(
            f"VNI cannot be allocated from interface profile:{profile_name} because the whole "
            "range is already reserved"
        )
    vni = min(found)
    bits.set(vni)
    return bits.to_base64(), vni


def free_vni(alloc: str, vni: int, *, profile_name: str = "") -> str:
    """Give `vni` back; returns the updated alloc.

    A no-op for an empty alloc and for VNIs this array cannot hold (0 or below, above MAX_VNI),
    since those were never reserved here. A corrupt alloc raises `CorruptAllocation`.
    """
    if not alloc or not 0 < vni <= MAX_VNI:
        return alloc
    bits = _load(alloc, profile_name)
    bits.clear(vni)
    return bits.to_base64()
