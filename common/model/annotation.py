"""The Pod annotation ``danm.k8s.io/interfaces``: which networks a Pod wants, and how.

The annotation is user input read by the CNI on every ADD (and checkable by the webhook), so it is
validated completely here, before any network or IP is touched, and every problem is reported
with the Pod's name and the 0-based index of the offending connection (danm-behaviour.md §2).

Deliberate differences from the original:

* the key must match exactly; the original took the first key *containing* the text (§13.26);
* keys inside a connection are case-sensitive and the Go struct's internal fields
  (``Device``, ``SequenceId``, ``DefaultIfaceName``) are unknown keys, not silently accepted;
* ``ip``/``ip6``/``proutes``/``proutes6`` are checked for the right address family up front;
* a JSON object with a repeated key is refused rather than "last one wins".

A JSON ``null`` value for a key is treated as if the key were absent, as Go's decoder does.
An absent annotation or ``[]`` yields no connections; choosing a default network is the caller's
business (:func:`default_connection` builds the connection for it).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.model._base import describe
from common.model.constants import (
    CONNECTION_KEYS,
    DEFAULT_NETWORK_NAME,
    INTERFACES_ANNOTATION,
    IP_DYNAMIC,
    IP_NONE,
    NetworkKind,
)
from common.model.errors import AnnotationError

_KEY_BY_KIND: dict[NetworkKind, str] = {kind: key for key, kind in CONNECTION_KEYS.items()}
_OPTION_KEYS = ("ip", "ip6", "proutes", "proutes6")
_ALLOWED_KEYS = (*CONNECTION_KEYS, *_OPTION_KEYS)
#: Builds the error for the connection being parsed from a bare reason.
_Fail = Callable[[str], AnnotationError]


@dataclass(frozen=True, slots=True)
class NetworkConnection:
    """One requested interface.

    ``ip``/``ip6`` are ``"dynamic"``, ``"none"``, a CIDR of the right family (``10.0.0.5/24``) or
    ``""`` when the key was omitted (no address of that family). ``proutes``/``proutes6`` map a
    destination CIDR to a gateway IP, for the network's ``rt_tables`` table.
    """

    kind: NetworkKind
    name: str
    ip: str = ""
    ip6: str = ""
    proutes: Mapping[str, str] = field(default_factory=dict)
    proutes6: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference_key(self) -> str:
        """The annotation key that names the network: ``network``/``tenantNetwork``/..."""
        return _KEY_BY_KIND[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The connection as an annotation entry; empty options are left out."""
        entry: dict[str, Any] = {self.reference_key: self.name}
        if self.ip:
            entry["ip"] = self.ip
        if self.ip6:
            entry["ip6"] = self.ip6
        if self.proutes:
            entry["proutes"] = dict(self.proutes)
        if self.proutes6:
            entry["proutes6"] = dict(self.proutes6)
        return entry


def default_connection(kind: NetworkKind, name: str = DEFAULT_NETWORK_NAME) -> NetworkConnection:
    """The connection used when a Pod asks for none: dynamic IPv4, no IPv6, no policy routes."""
    return NetworkConnection(kind=NetworkKind(kind), name=name, ip=IP_DYNAMIC)


def serialize_interfaces(connections: Iterable[NetworkConnection]) -> str:
    """The annotation value for ``connections`` (compact JSON list)."""
    return json.dumps([c.to_dict() for c in connections], separators=(",", ":"))


def parse_interfaces(
    pod_name: str, annotations: Mapping[str, Any] | None
) -> list[NetworkConnection]:
    """Connections requested by a Pod's annotations, in order (index = interface sequence).

    Raises :class:`AnnotationError` naming the Pod (and the connection index) on any problem.
    """
    if not annotations or INTERFACES_ANNOTATION not in annotations:
        return []
    value = annotations[INTERFACES_ANNOTATION]
    if not isinstance(value, str):
        raise AnnotationError(pod_name, f"expected a JSON string, got {describe(value)}")
    return parse_interfaces_json(pod_name, value)


class _DuplicateKeyError(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {json.dumps(key)} in a JSON object")
        result[key] = value
    return result


def parse_interfaces_json(pod_name: str, text: str) -> list[NetworkConnection]:
    """Like :func:`parse_interfaces`, given the annotation's value itself."""
    try:
        decoded = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKeyError as error:
        raise AnnotationError(pod_name, str(error)) from None
    except json.JSONDecodeError as error:
        raise AnnotationError(pod_name, str(error)) from None
    if not isinstance(decoded, list):
        raise AnnotationError(
            pod_name, f"expected a JSON list of network connections, got {describe(decoded)}"
        )
    return [_parse_connection(pod_name, index, entry) for index, entry in enumerate(decoded)]


def _parse_connection(pod: str, index: int, entry: Any) -> NetworkConnection:
    def fail(reason: str) -> AnnotationError:
        return AnnotationError(pod, reason, index)

    if not isinstance(entry, dict):
        raise fail(f"is not a JSON object, got {describe(entry)}")
    for key in entry:
        if key not in _ALLOWED_KEYS:
            allowed = ", ".join(_ALLOWED_KEYS)
            raise fail(f"has unknown key {json.dumps(key)} (allowed keys: {allowed})")
    present = {key: value for key, value in entry.items() if value is not None}
    references = [key for key in CONNECTION_KEYS if key in present]
    if len(references) != 1:
        raise fail(f"contains invalid number of network references:{len(references)}")
    reference = references[0]
    name = present[reference]
    if not isinstance(name, str):
        raise fail(f"has a non-string {json.dumps(reference)} value: {describe(name)}")
    if not name:
        raise fail(f"has an empty {json.dumps(reference)} name")
    ip = _parse_ip_request(fail, "ip", present.get("ip"), 4)
    ip6 = _parse_ip_request(fail, "ip6", present.get("ip6"), 6)
    proutes = _parse_policy_routes(fail, "proutes", present.get("proutes"), 4)
    proutes6 = _parse_policy_routes(fail, "proutes6", present.get("proutes6"), 6)
    return NetworkConnection(
        kind=CONNECTION_KEYS[reference],
        name=name,
        ip=ip,
        ip6=ip6,
        proutes=proutes,
        proutes6=proutes6,
    )


def _is_cidr(text: str, version: int) -> bool:
    address, slash, prefix = text.partition("/")
    # NB: Go's ParseCIDR wants "addr/len"; ipaddress alone would also take netmasks and zones.
    if not slash or not prefix.isdigit() or not prefix.isascii() or "%" in address:
        return False
    try:
        return ipaddress.ip_interface(text).version == version
    except ValueError:
        return False


def _is_ip(text: str, version: int) -> bool:
    if "%" in text or "/" in text:
        return False
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _family(version: int) -> str:
    return "IPv4" if version == 4 else "IPv6"


def _example_cidr(version: int) -> str:
    return "10.0.0.5/24" if version == 4 else "2001:db8::5/64"


def _parse_ip_request(fail: _Fail, key: str, value: Any, version: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"has a non-string {json.dumps(key)} value: {describe(value)}")
    if value in ("", IP_DYNAMIC, IP_NONE) or _is_cidr(value, version):
        return value
    raise fail(
        f"has invalid {json.dumps(key)}:{json.dumps(value)}: expected "
        f'"{IP_DYNAMIC}", "{IP_NONE}" or an {_family(version)} address in CIDR form '
        f"(e.g. {_example_cidr(version)})"
    )


def _parse_policy_routes(fail: _Fail, key: str, value: Any, version: int) -> dict[str, str]:
    if value is None:
        return {}
    family = _family(version)
    if not isinstance(value, dict):
        raise fail(
            f"has invalid {json.dumps(key)}: expected an object mapping {family} destination "
            f"CIDRs to gateway addresses, got {describe(value)}"
        )
    for destination, gateway in value.items():
        if not _is_cidr(destination, version):
            raise fail(
                f"has invalid {json.dumps(key)} destination {json.dumps(destination)}: "
                f"expected an {family} CIDR (e.g. {_example_cidr(version)})"
            )
        if not isinstance(gateway, str) or not _is_ip(gateway, version):
            raise fail(
                f"has invalid {json.dumps(key)} gateway {describe(gateway)} for destination "
                f"{json.dumps(destination)}: expected an {family} address"
            )
    return dict(value)
