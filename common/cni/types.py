"""CNI wire types: the error object, the ADD result, and CNI_ARGS.

DANM sits between the runtime and delegate plugins that may speak another spec version than the
runtime asked for (multus#875 is that failure). So ``Result`` is one version-neutral value:
``Result.from_json`` reads any result shape we know (0.1.0/0.2.0 ``ip4``/``ip6``, 0.3.x/0.4.0
with per-IP ``version``, 1.x without it) and ``Result.to_json(version)`` writes exactly the shape
of the requested version, dropping fields that version does not have.

Pure data: no I/O, and ``ipaddress`` is only imported when a result is actually parsed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """Well-known error codes of the CNI spec (0-99) plus the ones we use above 99."""

    INCOMPATIBLE_CNI_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT_VARIABLES = 4
    IO_FAILURE = 5
    DECODING_FAILURE = 6
    INVALID_NETWORK_CONFIG = 7
    TRY_AGAIN_LATER = 11
    #: STATUS only: the plugin cannot serve ADD right now.
    PLUGIN_NOT_AVAILABLE = 50
    #: STATUS only: as 50, and existing containers may have limited connectivity.
    LIMITED_CONNECTIVITY = 51
    #: First plugin-specific code; our generic "the plugin itself failed".
    PLUGIN_ERROR = 100
    #: An unexpected exception escaped a handler (libcni's ErrInternal).
    INTERNAL = 999


class CniError(Exception):
    """An error the runtime should see as ``{"cniVersion","code","msg","details"}``."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = int(code)
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        body: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return body


# --------------------------------------------------------------------------------------------
# Result


def _is_v1(version: str) -> bool:
    return not version.startswith("0.")


def _has_1_1_fields(version: str) -> bool:
    major, _, rest = version.partition(".")
    return major != "0" and (major != "1" or rest.split(".")[0] != "0")


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CniError(ErrorCode.DECODING_FAILURE, f"result field {key!r} must be an integer")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    value = "" if value is None else value
    if not isinstance(value, str):
        raise CniError(ErrorCode.DECODING_FAILURE, f"result field {key!r} must be a string")
    return value


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    value = [] if value is None else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CniError(ErrorCode.DECODING_FAILURE, f"result field {key!r} must be a string list")
    return tuple(value)


def _objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    value = [] if value is None else value
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise CniError(
            ErrorCode.DECODING_FAILURE, f"result field {key!r} must be a list of objects"
        )
    return value


def _check_address(text: str, *, cidr: bool) -> str:
    import ipaddress  # NB: lazily, so VERSION calls never pay for it

    try:
        if cidr:
            if "/" not in text:
                raise ValueError("missing prefix length")
            ipaddress.ip_interface(text)
        else:
            ipaddress.ip_address(text)
    except ValueError as exc:
        what = "CIDR address" if cidr else "IP address"
        raise CniError(
            ErrorCode.DECODING_FAILURE, f"invalid {what} {text!r} in result: {exc}"
        ) from exc
    return text


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int | None = None  # 1.1.0
    socket_path: str = ""  # 1.1.0
    pci_id: str = ""  # 1.1.0

    def to_json(self, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name}
        if self.mac:
            body["mac"] = self.mac
        if _has_1_1_fields(version):
            if self.mtu is not None:
                body["mtu"] = self.mtu
        if self.sandbox:
            body["sandbox"] = self.sandbox
        if _has_1_1_fields(version):
            if self.socket_path:
                body["socketPath"] = self.socket_path
            if self.pci_id:
                body["pciID"] = self.pci_id
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interface:
        return cls(
            name=_str(data, "name"),
            mac=_str(data, "mac"),
            sandbox=_str(data, "sandbox"),
            mtu=_optional_int(data, "mtu"),
            socket_path=_str(data, "socketPath"),
            pci_id=_str(data, "pciID"),
        )


@dataclass(frozen=True, slots=True)
class IPConfig:
    """One address; ``interface`` indexes ``Result.interfaces`` (None for IPAM plugins)."""

    address: str  # CIDR, host bits kept: "10.0.0.5/24"
    gateway: str | None = None
    interface: int | None = None

    @property
    def family(self) -> str:
        return "6" if ":" in self.address else "4"

    def to_json(self, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if not _is_v1(version):
            body["version"] = self.family
        if self.interface is not None:
            body["interface"] = self.interface
        body["address"] = self.address
        if self.gateway:
            body["gateway"] = self.gateway
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IPConfig:
        address = _check_address(_str(data, "address"), cidr=True)
        gateway = _str(data, "gateway") or None
        if gateway is not None:
            _check_address(gateway, cidr=False)
        ip = cls(address=address, gateway=gateway, interface=_optional_int(data, "interface"))
        declared = data.get("version")
        if declared is not None and str(declared) != ip.family:
            raise CniError(
                ErrorCode.DECODING_FAILURE,
                f"result IP {address} declares version {declared!r} but is IPv{ip.family}",
            )
        return ip


@dataclass(frozen=True, slots=True)
class Route:
    dst: str
    gw: str | None = None
    mtu: int | None = None  # the rest: 1.1.0
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None

    def to_json(self, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {"dst": self.dst}
        if self.gw:
            body["gw"] = self.gw
        if _has_1_1_fields(version):
            for key in ("mtu", "advmss", "priority", "table", "scope"):
                value = getattr(self, key)
                if value is not None:
                    body[key] = value
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Route:
        gw = _str(data, "gw") or None
        if gw is not None:
            _check_address(gw, cidr=False)
        return cls(
            dst=_check_address(_str(data, "dst"), cidr=True),
            gw=gw,
            mtu=_optional_int(data, "mtu"),
            advmss=_optional_int(data, "advmss"),
            priority=_optional_int(data, "priority"),
            table=_optional_int(data, "table"),
            scope=_optional_int(data, "scope"),
        )


@dataclass(frozen=True, slots=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.nameservers or self.domain or self.search or self.options)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.nameservers:
            body["nameservers"] = list(self.nameservers)
        if self.domain:
            body["domain"] = self.domain
        if self.search:
            body["search"] = list(self.search)
        if self.options:
            body["options"] = list(self.options)
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DNS:
        return cls(
            nameservers=_strings(data, "nameservers"),
            domain=_str(data, "domain"),
            search=_strings(data, "search"),
            options=_strings(data, "options"),
        )


def _legacy_ips(data: Mapping[str, Any]) -> tuple[list[IPConfig], list[Route]]:
    """0.1.0/0.2.0 results: one ``ip4`` and/or ``ip6`` block, routes nested inside."""
    ips: list[IPConfig] = []
    routes: list[Route] = []
    for key in ("ip4", "ip6"):
        block = data.get(key)
        if block is None:
            continue
        if not isinstance(block, Mapping):
            raise CniError(ErrorCode.DECODING_FAILURE, f"result field {key!r} must be an object")
        gateway = _str(block, "gateway") or None
        ips.append(IPConfig(address=_check_address(_str(block, "ip"), cidr=True), gateway=gateway))
        routes.extend(Route.from_json(r) for r in _objects(block, "routes"))
    return ips, routes


@dataclass(frozen=True, slots=True)
class Result:
    """A CNI ADD result (an IPAM plugin's result simply has no interfaces)."""

    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)

    def to_json(self, version: str) -> dict[str, Any]:
        """This result in the exact shape of CNI ``version`` (0.3.0 ... 1.1.0)."""
        if version.startswith(("0.1.", "0.2.")):
            raise CniError(
                ErrorCode.INCOMPATIBLE_CNI_VERSION,
                f"cannot express a result in CNI version {version}",
                "supported result versions are 0.3.0 and later",
            )
        body: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            body["interfaces"] = [i.to_json(version) for i in self.interfaces]
        if self.ips:
            body["ips"] = [ip.to_json(version) for ip in self.ips]
        if self.routes:
            body["routes"] = [r.to_json(version) for r in self.routes]
        if self.dns:
            body["dns"] = self.dns.to_json()
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """Read a result of any version we know; raises ``CniError`` code 6 on a bad one."""
        if not isinstance(data, Mapping):
            raise CniError(ErrorCode.DECODING_FAILURE, "a CNI result must be a JSON object")
        dns_data = data.get("dns")
        dns_data = {} if dns_data is None else dns_data
        if not isinstance(dns_data, Mapping):
            raise CniError(ErrorCode.DECODING_FAILURE, "result field 'dns' must be an object")
        dns = DNS.from_json(dns_data)
        if "ip4" in data or "ip6" in data:
            ips, routes = _legacy_ips(data)
            return cls(ips=tuple(ips), routes=tuple(routes), dns=dns)
        result = cls(
            interfaces=tuple(Interface.from_json(i) for i in _objects(data, "interfaces")),
            ips=tuple(IPConfig.from_json(ip) for ip in _objects(data, "ips")),
            routes=tuple(Route.from_json(r) for r in _objects(data, "routes")),
            dns=dns,
        )
        for ip in result.ips:
            if ip.interface is not None and not 0 <= ip.interface < len(result.interfaces):
                raise CniError(
                    ErrorCode.DECODING_FAILURE,
                    f"result IP {ip.address} points at interface {ip.interface}, "
                    f"but there are {len(result.interfaces)} interfaces",
                )
        return result


def convert_result(data: Mapping[str, Any], version: str) -> dict[str, Any]:
    """A delegate's result JSON, re-expressed in ``version``."""
    return Result.from_json(data).to_json(version)


# --------------------------------------------------------------------------------------------
# CNI_ARGS


def parse_cni_args(raw: str, known: Collection[str] | None = None) -> dict[str, str]:
    """Parse ``CNI_ARGS`` (``K=V;K=V``) into a dict.

    With ``known`` given, a key outside it is an error unless the args carry a true
    ``IgnoreUnknown`` (libcni's rule; kubelet always sends ``IgnoreUnknown=1``). Empty segments
    are skipped and a value may itself contain ``=``; a segment without ``=`` or with an empty
    key is an error (code 4, since CNI_ARGS is an environment variable).
    """
    pairs: dict[str, str] = {}
    for segment in raw.split(";"):
        if not segment:
            continue
        key, sep, value = segment.partition("=")
        if not sep or not key:
            raise CniError(
                ErrorCode.INVALID_ENVIRONMENT_VARIABLES, f"CNI_ARGS: invalid pair {segment!r}"
            )
        pairs[key] = value
    if known is not None:
        ignore_unknown = pairs.get("IgnoreUnknown", "").lower() in ("1", "true", "t")
        unknown = sorted(k for k in pairs if k not in known and k != "IgnoreUnknown")
        if unknown and not ignore_unknown:
            raise CniError(
                ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
                f"CNI_ARGS: unknown keys {unknown}",
                "set IgnoreUnknown=1 to allow them",
            )
    return pairs
