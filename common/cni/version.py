"""Which CNI spec versions we speak, and how a config's version is chosen.

Kept apart from ``skel`` because delegation code needs the same comparisons (does this delegate
understand CHECK? which result shape must I emit?) without dispatching anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from common.cni.types import CniError, ErrorCode

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
#: What a config without ``cniVersion`` means (libcni's ConfigDecoder says the same).
IMPLICIT_VERSION = "0.1.0"

CHECK_MIN_VERSION = "0.4.0"
STATUS_MIN_VERSION = "1.1.0"
GC_MIN_VERSION = "1.1.0"

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.0.0"`` → ``(1, 0, 0)``; anything else is a decoding error (code 6)."""
    match = _SEMVER.match(text)
    if match is None:
        raise CniError(ErrorCode.DECODING_FAILURE, f"invalid CNI version {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


def version_at_least(version: str, minimum: str) -> bool:
    return parse_version(version) >= parse_version(minimum)


def requested_version(config: Mapping[str, Any]) -> str:
    """The version a config asks for, before checking whether we support it.

    ``cniVersion`` wins when present: on a plugin's stdin it is what the runtime set and what
    the result must be expressed in. Without it, a 1.1.0 conflist-style ``cniVersions`` array
    is honoured by picking the highest version in it that we support (or, if none is, its
    highest entry so that the caller reports an honest incompatibility).
    """
    single = config.get("cniVersion")
    if single is not None and single != "":
        if not isinstance(single, str):
            raise CniError(ErrorCode.DECODING_FAILURE, f"cniVersion must be a string: {single!r}")
        return single
    many = config.get("cniVersions")
    if many is not None:
        if not isinstance(many, list) or not all(isinstance(v, str) for v in many):
            raise CniError(ErrorCode.DECODING_FAILURE, "cniVersions must be a list of strings")
        return highest_common(many, SUPPORTED_VERSIONS) or max(many, key=parse_version)
    return IMPLICIT_VERSION


def highest_common(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The highest version present in both lists, or None."""
    common = [v for v in offered if v in supported]
    return max(common, key=parse_version) if common else None


def negotiate(config: Mapping[str, Any], supported: Sequence[str] = SUPPORTED_VERSIONS) -> str:
    """The version to run this call in, or ``CniError`` code 1 if we cannot speak it."""
    wanted = requested_version(config)
    parse_version(wanted)
    if wanted not in supported:
        raise CniError(
            ErrorCode.INCOMPATIBLE_CNI_VERSION,
            "incompatible CNI versions",
            f'config is "{wanted}", plugin supports {list(supported)}',
        )
    return wanted


def version_document(
    requested: str | None, supported: Sequence[str] = SUPPORTED_VERSIONS
) -> dict[str, Any]:
    """The VERSION answer: in the requested version when we speak it, else in our latest."""
    answer_in = requested if requested in supported else max(supported, key=parse_version)
    return {"cniVersion": answer_in, "supportedVersions": list(supported)}
