"""The exception tree and the package's public names."""

from __future__ import annotations

import pytest

import common.ipam
from common.ipam import errors


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (errors.InvalidNetworkConfig, errors.IpamError),
        (errors.CorruptAllocation, errors.IpamError),
        (errors.InvalidAddressRequest, errors.IpamError),
        (errors.AddressInUse, errors.IpamError),
        (errors.AddressExhausted, errors.IpamError),
        (errors.VniError, errors.IpamError),
        (errors.InvalidVniRange, errors.VniError),
        (errors.VniExhausted, errors.VniError),
    ],
)
def test_hierarchy(error: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(error, parent)


def test_exported_names_exist_and_are_sorted() -> None:
    names = common.ipam.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(common.ipam, name), name
