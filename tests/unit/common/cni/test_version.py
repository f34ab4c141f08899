"""Version parsing, choice and the VERSION document."""

from __future__ import annotations

from typing import Any

import pytest

from common.cni.types import CniError, ErrorCode
from common.cni.version import (
    negotiate,
    parse_version,
    requested_version,
    version_at_least,
    version_document,
)


@pytest.mark.parametrize(
    ("text", "parsed"), [("0.3.1", (0, 3, 1)), ("1.10.0", (1, 10, 0)), ("10.0.2", (10, 0, 2))]
)
def test_parse_version(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(text) == parsed


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0-rc1", "", "a.b.c"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(CniError) as caught:
        parse_version(text)
    assert caught.value.code == ErrorCode.DECODING_FAILURE


def test_versions_compare_numerically() -> None:
    assert version_at_least("0.10.0", "0.4.0")
    assert not version_at_least("0.3.1", "0.4.0")
    assert version_at_least("1.1.0", "1.1.0")


@pytest.mark.parametrize(
    ("config", "requested"),
    [
        ({"cniVersion": "0.4.0"}, "0.4.0"),
        ({}, "0.1.0"),
        ({"cniVersion": ""}, "0.1.0"),
        ({"cniVersions": ["0.3.1", "1.0.0"]}, "1.0.0"),
        ({"cniVersions": ["1.0.0", "0.3.1", "1.1.0"]}, "1.1.0"),
        ({"cniVersions": ["1.0.0", "7.0.0"]}, "1.0.0"),
        ({"cniVersions": ["0.2.0", "7.0.0"]}, "7.0.0"),
        # NB: on a plugin's stdin cniVersion is the runtime's choice and wins.
        ({"cniVersion": "0.3.1", "cniVersions": ["1.1.0"]}, "0.3.1"),
    ],
)
def test_requested_version(config: dict[str, Any], requested: str) -> None:
    assert requested_version(config) == requested


@pytest.mark.parametrize(
    "config", [{"cniVersion": 1}, {"cniVersions": "1.0.0"}, {"cniVersions": [1]}]
)
def test_requested_version_rejects_bad_types(config: dict[str, Any]) -> None:
    with pytest.raises(CniError) as caught:
        requested_version(config)
    assert caught.value.code == ErrorCode.DECODING_FAILURE


def test_negotiate() -> None:
    assert negotiate({"cniVersion": "0.3.0"}) == "0.3.0"
    with pytest.raises(CniError, match="incompatible CNI versions") as caught:
        negotiate({"cniVersions": ["0.2.0"]})
    assert caught.value.code == ErrorCode.INCOMPATIBLE_CNI_VERSION
    assert 'config is "0.2.0"' in caught.value.details


def test_version_document() -> None:
    assert version_document(None, ("0.3.1", "1.0.0")) == {
        "cniVersion": "1.0.0",
        "supportedVersions": ["0.3.1", "1.0.0"],
    }
    assert version_document("0.3.1", ("0.3.1", "1.0.0"))["cniVersion"] == "0.3.1"
