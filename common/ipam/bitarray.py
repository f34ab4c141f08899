"""The allocation bit array DANM stores, base64 encoded, in network and TenantConfig objects.

Cluster-wide allocation state (which IPv4/IPv6 addresses and which VNIs are taken) lives only in
these strings, so the layout is a wire format shared with the original DANM and must match it bit
for bit:

* bit ``pos`` lives in byte ``pos // 8`` under mask ``0x80 >> (pos % 8)`` (most significant bit
  first); the array occupies ``ceil(length / 8)`` bytes;
* the text form is standard base64 (RFC 4648 alphabet) *with* padding;
* a new array of length L has bit 0 set (offset 0 is the network address, or VNI 0).

Deliberate difference from the original: it decoded leniently, so a corrupt string silently became
an empty or truncated array and later allocations either panicked or handed out addresses that were
in use. Here decoding is strict: bad characters, wrong padding, an empty string or a size that does
not match the tracked range raise `CorruptAllocation` saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import re

from common.ipam.errors import CorruptAllocation, IpamError

# NB: a byte that is not 0xff holds at least one clear bit; the regex engine skips full bytes in C,
# which keeps first-free search over a mostly full /9 (1 MiB of bytes) in the millisecond range.
_BYTE_WITH_CLEAR_BIT = re.compile(rb"[^\xff]")


def _byte_count(length: int) -> int:
    return (length + 7) // 8


class BitArray:
    """A fixed-length array of bits backed by a `bytearray`."""

    __slots__ = ("_data", "_length")

    _data: bytearray
    _length: int

    def __init__(self, length: int) -> None:
        """Create an array of `length` bits with only bit 0 set, as the original does."""
        if length <= 0:
            raise IpamError(f"cannot make a bit array of length {length}: the length must be > 0")
        self._length = length
        self._data = bytearray(_byte_count(length))
        self._data[0] = 0x80

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, length: int | None = None) -> BitArray:
        """Wrap a copy of `data`; `length` defaults to every bit of it (8 per byte)."""
        bits = len(data) * 8 if length is None else length
        if bits <= 0:
            raise IpamError(f"cannot make a bit array of length {bits}: the length must be > 0")
        if len(data) != _byte_count(bits):
            raise IpamError(
                f"{len(data)} bytes cannot hold exactly {bits} bits "
                f"({_byte_count(bits)} bytes are needed)"
            )
        array = cls.__new__(cls)
        array._length = bits
        array._data = bytearray(data)
        return array

    @classmethod
    def from_base64(cls, text: str, *, length: int | None = None, what: str = "alloc") -> BitArray:
        """Decode the stored form strictly.

        `length` is the number of bits the caller expects (e.g. 2^(32-prefix) for an IPv4 cidr);
        the decoded byte count must then be exactly ceil(length / 8). Without it every decoded bit
        counts, like the original. `what` names the field in error messages.
        """
        if not text:
            raise CorruptAllocation(f"{what} is empty: there is no allocation bit array to decode")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise CorruptAllocation(
                f"{what} is not valid padded base64 ({e}); it starts with {text[:16]!r}"
            ) from e
        if not data:
            raise CorruptAllocation(f"{what} decodes to zero bytes")
        if length is not None and len(data) != _byte_count(length):
            raise CorruptAllocation(
                f"{what} holds {len(data) * 8} bits ({len(data)} bytes) but the range it tracks "
                f"needs {length} bits ({_byte_count(length)} bytes); was the range changed "
                f"without re-initialising {what}?"
            )
        return cls.from_bytes(data, length)

    def to_base64(self) -> str:
        """Encode in the stored form (standard alphabet, padded)."""
        return base64.b64encode(self._data).decode("ascii")

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def copy(self) -> BitArray:
        return BitArray.from_bytes(self._data, self._length)

    def __len__(self) -> int:
        return self._length

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitArray):
            return NotImplemented
        return self._length == other._length and self._data == other._data

    __hash__ = None  # type: ignore[assignment]  # NB: mutable, like list

    def __repr__(self) -> str:
        return f"BitArray(length={self._length}, set={self.count_set()})"

    def _check(self, pos: int) -> None:
        if not 0 <= pos < self._length:
            raise IndexError(f"bit {pos} is outside the bit array of length {self._length}")

    def get(self, pos: int) -> bool:
        self._check(pos)
        return bool(self._data[pos >> 3] & (0x80 >> (pos & 7)))

    def set(self, pos: int) -> None:
        self._check(pos)
        self._data[pos >> 3] |= 0x80 >> (pos & 7)

    def clear(self, pos: int) -> None:
        self._check(pos)
        self._data[pos >> 3] &= ~(0x80 >> (pos & 7)) & 0xFF

    def count_set(self) -> int:
        """How many of the `len(self)` bits are set (padding bits of the last byte are ignored)."""
        padding = len(self._data) * 8 - self._length
        return (int.from_bytes(self._data, "big") >> padding).bit_count()

    def find_clear(self, first: int, last: int) -> int | None:
        """The lowest clear bit in the inclusive range first..last, or None if all are set.

        An empty range (first > last) has no clear bit. Whole bytes are skipped by a C-level
        search for the first byte that is not 0xff, so the cost grows with the number of full
        bytes only at memchr-like speed.
        """
        if first > last:
            return None
        self._check(first)
        self._check(last)
        data = self._data
        pos = first
        # NB: walk the bits of the leading partial byte so that the byte search below starts on a
        # byte boundary and every bit it can report is >= first.
        while pos <= last and pos & 7:
            if not data[pos >> 3] & (0x80 >> (pos & 7)):
                return pos
            pos += 1
        if pos > last:
            return None
        match = _BYTE_WITH_CLEAR_BIT.search(data, pos >> 3, (last >> 3) + 1)
        if match is None:
            return None
        index = match.start()
        free_bits = ~data[index] & 0xFF
        found = index * 8 + 8 - free_bits.bit_length()
        return found if found <= last else None
