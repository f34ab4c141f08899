"""The common cases of ``fakeipam`` (well-formed ADD and DEL) answered without the CNI skeleton.

Why it exists: fakeipam is a fresh Python process per delegate call, so its import time is paid
on every Pod interface. ``common.cni.skel`` pulls in ``dataclasses`` (and through it ``inspect``)
and builds the whole Result model at import. This module needs only ``json`` and ``ipaddress``.

How it stays faithful: ``answer_add`` and ``answer_del`` accept only inputs that are
unambiguously valid under a rule at least as strict as the full path's, and return None for
anything else (any other verb, any doubt, every error), so ``fakeipam.cli`` then runs the full
``dispatch``, which writes the error or the answer exactly as before. What this module writes is
byte-identical to what ``dispatch`` writes for the same input (tests/unit/fakeipam/test_lean.py
compares them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

# NB: must equal common.cni.version.SUPPORTED_VERSIONS (a unit test checks it); importing that
# module would import what this one exists to avoid.
SUPPORTED_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
_REQUIRED_ENV: Final = ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")
_REQUIRED_DEL_ENV: Final = ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH")
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_CHARS: Final = _ALNUM | frozenset("_.-")
_MAX_IFNAME: Final = 15


def _plain_id(value: str) -> bool:
    """Stricter than (a subset of) the spec's ID rule: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    return bool(value) and value[0] in _ALNUM and all(c in _ID_CHARS for c in value)


def _plain_ifname(value: str) -> bool:
    return 0 < len(value) <= _MAX_IFNAME and value not in (".", "..") and _plain_id(value)


def _ip_entries(config: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """``ips`` of a fully valid ``ipam.ips`` (CNI 0.3/0.4 shape, with "version"), else None."""
    import ipaddress  # NB: lazily, as in fakeipam.plugin

    ipam = config.get("ipam")
    entries = ipam.get("ips") if isinstance(ipam, dict) else None
    if not isinstance(entries, list) or not entries:
        return None
    ips = []
    for entry in entries:
        cidr = entry.get("ipcidr") if isinstance(entry, dict) else None
        if not isinstance(cidr, str) or "/" not in cidr:
            return None
        try:
            parsed = ipaddress.ip_interface(cidr)
        except ValueError:
            return None
        declared = entry.get("version")
        if declared is not None and str(declared) != str(parsed.version):
            return None
        ips.append({"version": "6" if ":" in cidr else "4", "address": cidr})
    return ips


def _plain_config(environ: Mapping[str, str], stdin: bytes, required: tuple[str, ...]) -> Any:
    """The decoded config when the call is unambiguously well-formed, else None."""
    if not all(environ.get(name) for name in required):
        return None
    if not _plain_id(environ["CNI_CONTAINERID"]) or not _plain_ifname(environ["CNI_IFNAME"]):
        return None
    try:
        config = json.loads(stdin)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(config, dict):
        return None
    name = config.get("name")
    version = config.get("cniVersion")
    if not isinstance(name, str) or not _plain_id(name) or version not in SUPPORTED_VERSIONS:
        return None
    return config


def answer_add(environ: Mapping[str, str], stdin: bytes) -> str | None:
    """The exact stdout line of a successful ADD, or None when the full path must decide."""
    if environ.get("CNI_COMMAND") != "ADD":
        return None
    config = _plain_config(environ, stdin, _REQUIRED_ENV)
    if config is None:
        return None
    version = config["cniVersion"]
    ips = _ip_entries(config)
    if ips is None:
        return None
    if not version.startswith("0."):
        for ip in ips:
            del ip["version"]  # NB: CNI 1.x results carry no per-IP "version"
    return json.dumps({"cniVersion": version, "ips": ips}) + "\n"


def answer_del(environ: Mapping[str, str], stdin: bytes) -> str | None:
    """The exact stdout of a successful DEL (nothing), or None when the full path must decide.

    NB: DANM frees the addresses itself, so the full path's DEL only validates the call; the
    delegate's DEL runs this on every interface removal.
    """
    if environ.get("CNI_COMMAND") != "DEL":
        return None
    return "" if _plain_config(environ, stdin, _REQUIRED_DEL_ENV) is not None else None
