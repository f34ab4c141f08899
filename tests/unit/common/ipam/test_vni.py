"""TenantConfig VNI handling: vniRange parsing, the 5001-bit alloc, reserve and free."""

from __future__ import annotations

import base64

import pytest

from common.ipam import vni
from common.ipam.bitarray import BitArray
from common.ipam.errors import CorruptAllocation, InvalidVniRange, VniExhausted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("7", ((7, 7),)),
        ("0", ((0, 0),)),
        ("2000-2500,2601,2650-2700", ((2000, 2500), (2601, 2601), (2650, 2700))),
        ("5-5", ((5, 5),)),
        ("10,1-3", ((10, 10), (1, 3))),  # order as written
        ("1-3,2-4", ((1, 3), (2, 4))),  # overlaps are harmless
        ("007", ((7, 7),)),
        ("6000", ((6000, 6000),)),  # parses; the max is a separate check
    ],
)
def test_parse_valid(text: str, expected: tuple[tuple[int, int], ...]) -> None:
    assert vni.parse_vni_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",", "item 1 is empty"),
        ("1,,2", "item 2 is empty"),
        ("1,2,", "item 3 is empty"),
        (",5", "item 1 is empty"),
        ("2500-2000", r"item 1 '2500-2000' is reversed"),
        ("1-2-3", r"'1-2-3' has more than one '-'"),
        ("5--6", r"'5--6' has more than one '-'"),
        ("-5", r"'-5' is negative"),
        ("1,-5-7", r"item 2 '-5-7' is negative"),
        ("5-", r"'5-' is missing a number"),
        ("abc", r"'abc' is not a decimal VNI number"),
        ("1, 2", r"' 2' is not a decimal VNI number"),
        (" 1", r"' 1' is not a decimal VNI number"),
        ("+3", r"'\+3' is not a decimal VNI number"),
        ("1.5", r"'1.5' is not a decimal VNI number"),
        ("٣", r"is not a decimal VNI number"),  # non-ASCII digit
        ("1" * 5000, r"is not a decimal VNI number"),  # no int() of huge strings
        ("100-2x", r"'2x' is not a decimal VNI number"),
    ],
)
def test_parse_errors_name_the_item(text: str, message: str) -> None:
    with pytest.raises(InvalidVniRange, match=message):
        vni.parse_vni_range(text)


def test_max_vni_check() -> None:
    vni.check_max_vni(vni.parse_vni_range("1-5000"), profile_name="ens4")
    with pytest.raises(
        InvalidVniRange,
        match=r"^vniRange for interface:ens4 is invalid, because it cannot contain VNIs over "
        r"the maximum supported number that is:5000$",
    ):
        vni.check_max_vni(vni.parse_vni_range("10,4990-5001"), profile_name="ens4")


def test_new_alloc_wire_form() -> None:
    alloc = vni.new_vni_alloc()
    assert len(alloc) == 836
    assert alloc.startswith("gAAAAAAA")
    raw = base64.b64decode(alloc)
    assert raw == b"\x80" + bytes(625)


def reserved(alloc: str) -> list[int]:
    bits = BitArray.from_base64(alloc, length=vni.VNI_ALLOC_BITS)
    return [i for i in range(len(bits)) if bits.get(i)]


def test_reserve_lowest_free_across_ranges() -> None:
    alloc = vni.new_vni_alloc()
    got = []
    for _ in range(5):
        alloc, number = vni.reserve_vni(alloc, "2650-2651,2000-2001,2601", profile_name="ens4")
        got.append(number)
    assert got == [2000, 2001, 2601, 2650, 2651]
    assert reserved(alloc) == [0, 2000, 2001, 2601, 2650, 2651]
    with pytest.raises(
        VniExhausted,
        match=r"^VNI cannot be allocated from interface profile:ens4 because the whole range "
        r"is already reserved$",
    ):
        vni.reserve_vni(alloc, "2650-2651,2000-2001,2601", profile_name="ens4")


def test_vni_zero_is_never_handed_out() -> None:
    alloc, number = vni.reserve_vni(vni.new_vni_alloc(), "0-1", profile_name="ens4")
    assert number == 1
    with pytest.raises(VniExhausted):
        vni.reserve_vni(alloc, "0", profile_name="ens4")


def test_reserve_with_empty_alloc_initialises_it() -> None:
    alloc, number = vni.reserve_vni("", "5000", profile_name="ens4")
    assert number == 5000
    assert reserved(alloc) == [0, 5000]


def test_empty_range_is_exhausted_immediately() -> None:
    with pytest.raises(VniExhausted):
        vni.reserve_vni(vni.new_vni_alloc(), "", profile_name="ens4")


@pytest.mark.parametrize(
    ("vni_range", "error"),
    [("4999-5001", InvalidVniRange), ("1,,2", InvalidVniRange)],
)
def test_reserve_refuses_bad_ranges(vni_range: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        vni.reserve_vni(vni.new_vni_alloc(), vni_range, profile_name="ens4")


@pytest.mark.parametrize(
    ("alloc", "message"),
    [("gAAA", "alloc of interface profile:ens4 holds 24 bits"), ("!!", "not valid padded")],
)
def test_corrupt_alloc(alloc: str, message: str) -> None:
    with pytest.raises(CorruptAllocation, match=message):
        vni.reserve_vni(alloc, "1-10", profile_name="ens4")
    with pytest.raises(CorruptAllocation, match=message):
        vni.free_vni(alloc, 5, profile_name="ens4")


def test_free_then_reserve_again() -> None:
    alloc = vni.new_vni_alloc()
    for _ in range(3):
        alloc, _ = vni.reserve_vni(alloc, "10-12", profile_name="ens4")
    alloc = vni.free_vni(alloc, 11)
    assert reserved(alloc) == [0, 10, 12]
    alloc, number = vni.reserve_vni(alloc, "10-12", profile_name="ens4")
    assert number == 11


@pytest.mark.parametrize("number", [0, -1, 5001, 16_000_000])
def test_free_out_of_array_is_a_no_op(number: int) -> None:
    alloc = vni.new_vni_alloc()
    assert vni.free_vni(alloc, number) == alloc
    assert vni.free_vni("", 10) == ""
