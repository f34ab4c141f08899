"""The bit array wire format: layout, encoding, strict decoding and the clear-bit search."""

from __future__ import annotations

import base64

import pytest

from common.ipam.bitarray import BitArray
from common.ipam.errors import CorruptAllocation, IpamError


def test_new_array_has_only_bit_zero_set() -> None:
    bits = BitArray(20)
    assert len(bits) == 20
    assert bits.to_bytes() == bytes.fromhex("800000")
    assert [i for i in range(20) if bits.get(i)] == [0]


@pytest.mark.parametrize("length", [0, -1, -8])
def test_non_positive_length_is_an_error(length: int) -> None:
    with pytest.raises(IpamError, match="must be > 0"):
        BitArray(length)


@pytest.mark.parametrize(
    ("position", "expected_hex"),
    [
        (1, "c000"),  # mask 0x40 in byte 0
        (7, "8100"),  # last bit of byte 0
        (8, "8080"),  # first bit of byte 1: MSB first
        (15, "8001"),
    ],
)
def test_bit_layout_is_msb_first(position: int, expected_hex: str) -> None:
    bits = BitArray(16)
    bits.set(position)
    assert bits.to_bytes() == bytes.fromhex(expected_hex)
    assert bits.get(position)


def test_clear_resets_only_that_bit() -> None:
    bits = BitArray.from_bytes(b"\xff\xff")
    bits.clear(9)
    assert bits.to_bytes() == bytes.fromhex("ffbf")
    assert not bits.get(9)
    assert bits.get(8)


@pytest.mark.parametrize("position", [-1, 16, 100])
def test_out_of_range_access_raises_index_error(position: int) -> None:
    bits = BitArray(16)
    with pytest.raises(IndexError):
        bits.get(position)
    with pytest.raises(IndexError):
        bits.set(position)


def test_encoding_is_padded_standard_base64() -> None:
    bits = BitArray.from_bytes(bytes([0xFB, 0xFF]))
    # NB: 0xfb 0xff uses '+' and '/', and two bytes need one '=' of padding.
    assert bits.to_base64() == "+/8="


@pytest.mark.parametrize(
    "text",
    ["kA==", "wQ==", "gAAAAAAAAAE=", "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", "+/8="],
)
def test_decode_encode_round_trip(text: str) -> None:
    bits = BitArray.from_base64(text)
    assert bits.to_base64() == text
    assert len(bits) == len(base64.b64decode(text)) * 8


def test_decode_with_expected_length_keeps_that_length() -> None:
    bits = BitArray.from_base64("kA==", length=4)
    assert len(bits) == 4
    assert [i for i in range(4) if bits.get(i)] == [0, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("kA", "not valid padded base64"),  # padding missing
        ("k*==", "not valid padded base64"),  # character outside the alphabet
        ("kA==kA==", "not valid padded base64"),  # data after padding
        ("gAAA AAA=", "not valid padded base64"),  # whitespace
    ],
)
def test_corrupt_text_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(CorruptAllocation, match=message):
        BitArray.from_base64(text, what="alloc of network blue")


def test_size_mismatch_names_both_sizes() -> None:
    with pytest.raises(CorruptAllocation, match=r"holds 8 bits .* needs 64 bits"):
        BitArray.from_base64("kA==", length=64, what="alloc")


def test_count_set_ignores_padding_bits() -> None:
    bits = BitArray.from_bytes(b"\xff", length=3)
    assert bits.count_set() == 3


def test_copy_is_independent() -> None:
    bits = BitArray(8)
    clone = bits.copy()
    clone.set(5)
    assert not bits.get(5)
    assert clone != bits
    bits.set(5)
    assert clone == bits


@pytest.mark.parametrize(
    ("data_hex", "length", "first", "last", "expected"),
    [
        ("00", 8, 0, 7, 0),
        ("80", 8, 0, 7, 1),
        ("ff", 8, 0, 7, None),
        ("fe", 8, 0, 6, None),  # the clear bit 7 is beyond `last`
        ("fe", 8, 0, 7, 7),
        ("ff00", 16, 3, 15, 8),  # leading partial byte full, next byte free
        ("f0ff", 16, 2, 15, 4),  # found inside the leading partial byte
        ("f0ff", 16, 5, 7, 5),
        ("0fff", 16, 4, 15, None),
        ("ffffff7f", 32, 0, 31, 24),
        ("ffffffff", 32, 9, 31, None),
        ("00", 8, 5, 4, None),  # empty range
        ("ffff80", 17, 0, 16, None),  # bits 17..23 are padding and never reported
    ],
)
def test_find_clear(
    data_hex: str, length: int, first: int, last: int, expected: int | None
) -> None:
    bits = BitArray.from_bytes(bytes.fromhex(data_hex), length)
    assert bits.find_clear(first, last) == expected


def test_find_clear_agrees_with_a_bit_by_bit_scan() -> None:
    # NB: a fixed pseudo-random pattern exercises every alignment of first/last against bytes.
    pattern = bytes((i * 73 + 41) % 256 | 0x11 for i in range(12))
    bits = BitArray.from_bytes(pattern)
    for first in range(len(bits)):
        for last in range(first, len(bits)):
            expected = next((i for i in range(first, last + 1) if not bits.get(i)), None)
            assert bits.find_clear(first, last) == expected, (first, last)
