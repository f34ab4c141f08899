"""The dynamic-allocation search shared by the IPv4 and IPv6 pools.

Both families allocate by offsets into a bit array; only the mapping from offsets to addresses
differs, so the "where do we look next" rule lives here once.
"""

from __future__ import annotations

from collections.abc import Collection

from common.ipam.bitarray import BitArray


def find_free_offset(
    bits: BitArray,
    first: int,
    last: int,
    *,
    after: int | None,
    skip: Collection[int] = (),
) -> int | None:
    """The offset to hand out next from the inclusive pool first..last, or None if it is full.

    Next-fit like the later original (v4.2.0 `allocation_pool.lastIp`): the search starts right
    after `after` (the last offset handed out) and wraps round to `first`; with no `after`, or one
    whose successor lies outside the pool, it is plain first-free from `first`. Offsets in `skip`
    (route gateways) are never returned even when their bit is clear, because a gateway added to
    `routes` after the alloc was initialised has no bit set.
    """
    start = first
    if after is not None and first <= after + 1 <= last:
        start = after + 1
    for low, high in ((start, last), (first, start - 1)):
        pos: int | None = low
        while pos is not None and pos <= high:
            pos = bits.find_clear(pos, high)
            if pos is None:
                break
            if pos not in skip:
                return pos
            pos += 1
    return None
