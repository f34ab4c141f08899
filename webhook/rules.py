"""Every admission rule of DANM's API objects, as pure validators that return a denial or None.

The rules are the README's numbered lists ("List of validation rules") plus those the original's
code enforced without documenting them (danm-behaviour §7.2, §7.5, §13.16), plus the checks it
lacked (§13.17 address families, route destinations, host interface names, VLAN/VxLAN ranges,
changes of ``cidr``/``net6`` under connected Pods). Validators run in the original's order and
the first failure denies, so a user fixes one thing at a time in a predictable order.

Validators never call the API: whatever they need from the cluster (the first Pod still connected
to the network) is fetched beforehand by the caller and handed in as :class:`NetworkReview`
facts. Each :class:`Denial` carries the rule (our code name, the README number when it has one,
and the rule in plain words), the field it is about, and the original's error text as the core of
the message, so ``kubectl`` users who knew the original see the words they know.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from common.ipam import vni as vnis
from common.ipam.errors import InvalidVniRange
from common.model import ModelError, Network, TenantConfig, is_dynamic_type
from common.model.constants import (
    KIND_CLUSTER_NETWORK,
    KIND_DANMNET,
    KIND_TENANT_NETWORK,
    MAX_NETWORK_ID_LENGTH,
    MAX_VLAN_ID,
    MAX_VXLAN_ID,
    NETWORK_TYPE_SRIOV,
)
from common.rules.naming import (
    InterfaceNameError,
    vlan_host_interface_name,
    vxlan_host_interface_name,
)

CREATE: Final = "CREATE"
UPDATE: Final = "UPDATE"
DELETE: Final = "DELETE"
MIN_IPV4_PREFIXLEN: Final = 8
VNI_TYPES: Final = ("vlan", "vxlan")


@dataclass(frozen=True, slots=True)
class Rule:
    """One admission rule: ``code`` (§7 validator name), the README's number, plain words."""

    code: str
    readme: str
    words: str

    def __str__(self) -> str:
        readme = f" / README {self.readme}" if self.readme else ""
        return f"{self.code}{readme}: {self.words}"


# NB: README numbers are the DanmNet list's; TenantNetwork and ClusterNetwork refer to the same.
CIDR4 = Rule("V-ip4", "DanmNet rule 1", "cidr must be an IPv4 CIDR no larger than /8")
ROUTES4 = Rule(
    "V-ip4", "DanmNet rule 2", "routes need a cidr, IPv4 destinations and gateways inside cidr"
)
NET6 = Rule("V-ip6", "DanmNet rule 3", "net6 must be an IPv6 CIDR")
ROUTES6 = Rule(
    "V-ip6", "DanmNet rule 4", "routes6 need a net6, IPv6 destinations and gateways inside net6"
)
ALLOC = Rule("V-pool", "DanmNet rule 5", "alloc and alloc6 are DANM's own bookkeeping")
POOL_WITHOUT_CIDR = Rule("V-pool", "DanmNet rule 6", "allocation_pool needs a cidr")
POOL_IN_CIDR = Rule("V-pool", "DanmNet rules 7-8", "allocation_pool must lie inside cidr")
POOL_ORDER = Rule("V-pool", "DanmNet rule 9", "allocation_pool end must come after its start")
POOL6 = Rule("V-pool6", "", "allocation_pool_v6 and alloc6 must fit net6")
VIDS = Rule("V-vids", "DanmNet rule 10", "vlan and vxlan cannot be given together")
VID_RANGE = Rule("V-vids", "", f"vlan is 1-{MAX_VLAN_ID} and vxlan 1-{MAX_VXLAN_ID}")
NID_MISSING = Rule("V-nid", "", "NetworkID is mandatory")
NID_LENGTH = Rule(
    "V-nid", "DanmNet rule 11", f"NetworkID of a dynamic backend is at most {MAX_NETWORK_ID_LENGTH}"
)
HOST_IFNAME = Rule("V-nid", "", "the VLAN/VxLAN host interface name must be valid on Linux")
ALLOWED_TENANTS = Rule("V-noAT", "DanmNet rule 12", "AllowedTenants only exists on ClusterNetworks")
DEVICE = Rule(
    "V-netype",
    "DanmNet rule 13",
    "SR-IOV needs device_pool and no host_device; no network has both",
)
DEVICE_CHANGE = Rule(
    "V-vni",
    "DanmNet rule 14",
    "host_device, device_pool, vlan and vxlan stay fixed while Pods are connected",
)
CIDR_CHANGE = Rule("V-cidr", "", "cidr and net6 stay fixed while Pods are connected")
DELETE_CONNECTED = Rule(
    "V-delete", "DanmNet rule 15", "a network cannot be deleted while Pods are connected"
)
TNET_VNI = Rule(
    "V-tnet", "TenantNetwork rules 1-2", "a TenantNetwork's vlan/vxlan come from its TenantConfig"
)
TNET_FIXED = Rule(
    "V-tnet",
    "TenantNetwork rules 3-6",
    "a TenantNetwork's host_device, device_pool, vlan and vxlan cannot be changed",
)
TENANCY = Rule("V-tconf", "", "a TenantNetwork must fit an interface profile of the TenantConfig")
KIND = Rule(
    "V-kind", "", "the webhook handles DanmNet, TenantNetwork, ClusterNetwork, TenantConfig"
)
OBJECT = Rule("V-object", "", "the object must be well formed")
TC_NOT_EMPTY = Rule("TC", "TenantConfig rule 1", "hostDevices or networkIds must be given")
TC_NAME = Rule("TC", "", "every hostDevices entry needs a name")
TC_VNI_PAIR = Rule("TC", "TenantConfig rule 2", "vniType and vniRange go together")
TC_VNI_TYPE = Rule("TC", "", "vniType is vlan or vxlan")
TC_ALLOC = Rule("TC", "", "a profile's alloc is DANM's own bookkeeping")
TC_RANGE = Rule("TC", "", f"vniRange is a list like 200-299,305 of VNIs up to {vnis.MAX_VNI}")
TC_DUPLICATE = Rule("TC", "", "each (name, vniType) profile is listed once")
TC_MAPPING = Rule("TC", "TenantConfig rule 3", "NetworkType and NetworkID of a mapping are set")
TC_MAPPING_LENGTH = Rule(
    "TC",
    "TenantConfig rule 4",
    f"a NetworkID mapped to a dynamic type is at most {MAX_NETWORK_ID_LENGTH} characters",
)


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused: the broken rule, the field, and the message core."""

    rule: Rule
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} [rule {self.rule}; field {self.field}]"


class Denied(Exception):
    """Raised by pure steps that find a broken rule midway (e.g. while mutating)."""

    def __init__(self, denial: Denial) -> None:
        self.denial = denial
        super().__init__(str(denial))


def malformed(kind: str, error: ModelError) -> Denial:
    """The denial for an object whose fields have the wrong JSON types."""
    field = error.field_path or "(object)"
    return Denial(OBJECT, field, f"the {kind or 'submitted'} object is malformed: {error.reason}")


@dataclass(frozen=True, slots=True)
class ConnectedPod:
    """A Pod that still has an interface (a DanmEp) on the network under review."""

    pod: str
    namespace: str

    def __str__(self) -> str:
        return f"Pod:{self.pod} in namespace:{self.namespace}"


@dataclass(frozen=True, slots=True)
class NetworkReview:
    """The facts network validators decide on.

    ``connected`` is a Pod still connected to ``old`` (UPDATE) or to the deleted network; the
    caller only looks it up when :func:`needs_connected_check` says a rule depends on it.
    """

    operation: str
    network: Network
    old: Network | None = None
    connected: ConnectedPod | None = None


Validator = Callable[[NetworkReview], Denial | None]


# ---------------------------------------------------------------------------------------------
# Address helpers


# NB: cached: a review parses the same few CIDRs and addresses several times, and ipaddress
# parsing is a visible share of a review's CPU; the results are immutable.
@functools.lru_cache(maxsize=1024)
def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """``address/prefix`` (decimal prefix, host bits allowed and masked), or None."""
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isascii() or not prefix.isdecimal() or len(prefix) > 3:
        return None
    try:
        return ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _route_field(name: str, key: str) -> str:
    return f'spec.Options.{name}["{key}"]'


def _check_ip_family(
    cidr: str,
    routes: Mapping[str, str],
    *,
    version: int,
    cidr_name: str,
    routes_name: str,
    cidr_rule: Rule,
    routes_rule: Rule,
) -> Denial | None:
    family = "IPv4" if version == 4 else "IPv6"
    if not cidr:
        if routes:
            return Denial(
                routes_rule,
                f"spec.Options.{routes_name}",
                "IP routes cannot be defined for a L2 network",
            )
        return None
    field = f"spec.Options.{cidr_name}"
    net = parse_cidr(cidr)
    if net is None:
        return Denial(cidr_rule, field, f"Invalid CIDR: {cidr}")
    if net.version != version:
        other = "net6" if version == 4 else "cidr"
        return Denial(
            cidr_rule,
            field,
            f"Invalid CIDR: {cidr}: {cidr_name} takes {family} only; the other family "
            f"belongs in {other}",
        )
    if version == 4 and net.prefixlen < MIN_IPV4_PREFIXLEN:
        return Denial(
            cidr_rule,
            field,
            f"Netmask of the IPv4 CIDR is bigger than the maximum allowed /{MIN_IPV4_PREFIXLEN}",
        )
    for destination, gateway in routes.items():
        route_net = parse_cidr(destination)
        if route_net is None or route_net.version != version:
            return Denial(
                routes_rule,
                _route_field(routes_name, destination),
                f"Route destination:{destination} is not a valid {family} CIDR",
            )
        address = parse_address(gateway)
        if address is None or address.version != version or address not in net:
            return Denial(
                routes_rule,
                _route_field(routes_name, destination),
                f"Specified GW address:{gateway} is not part of CIDR:{cidr}",
            )
    return None


# ---------------------------------------------------------------------------------------------
# Network validators (§7.2)


def check_ipv4(review: NetworkReview) -> Denial | None:
    """V-ip4: cidr is IPv4, /8 or longer; routes only with a cidr, gateways inside it."""
    options = review.network.options
    return _check_ip_family(
        options.cidr,
        options.routes,
        version=4,
        cidr_name="cidr",
        routes_name="routes",
        cidr_rule=CIDR4,
        routes_rule=ROUTES4,
    )


def check_ipv6(review: NetworkReview) -> Denial | None:
    """V-ip6: net6 is IPv6; routes6 only with a net6, gateways inside it."""
    options = review.network.options
    return _check_ip_family(
        options.net6,
        options.routes6,
        version=6,
        cidr_name="net6",
        routes_name="routes6",
        cidr_rule=NET6,
        routes_rule=ROUTES6,
    )


def base64_length(bits: int) -> int:
    """Length of the padded base64 text of a bit array of ``bits`` bits."""
    return 4 * (((bits + 7) // 8 + 2) // 3)


def _pool_address(text: str, net: ipaddress.IPv4Network) -> int | None:
    address = parse_address(text)
    if address is None or address.version != 4 or address not in net:
        return None
    return int(address)


def check_pool(review: NetworkReview) -> Denial | None:
    """V-pool: no alloc on CREATE; allocation_pool needs a cidr, lies in it, end after start."""
    options = review.network.options
    if review.operation == CREATE:
        for name, value in (("alloc", options.alloc), ("alloc6", options.alloc6)):
            if value:
                return Denial(
                    ALLOC,
                    f"spec.Options.{name}",
                    "Allocation bitmask shall not be manually defined upon creation!",
                )
    pool = options.allocation_pool
    if not options.cidr:
        if pool.start or pool.end:
            return Denial(
                POOL_WITHOUT_CIDR,
                "spec.Options.allocation_pool",
                "Allocation pool cannot be defined without CIDR!",
            )
        return None
    net = parse_cidr(options.cidr)
    if not isinstance(net, ipaddress.IPv4Network):
        return None  # NB: check_ipv4 reports it; the pool cannot be judged without a cidr.
    if review.operation == UPDATE and options.alloc and review.old is not None:
        if options.alloc != review.old.options.alloc:
            expected = base64_length(net.num_addresses)
            if len(options.alloc) != expected:
                return Denial(
                    ALLOC,
                    "spec.Options.alloc",
                    f"Allocation bitmask does not fit CIDR:{options.cidr}: it must be the "
                    f"{expected}-character base64 form of {net.num_addresses} bits",
                )
    # NB: empty bounds are checked as the defaults the webhook will fill in (§6.2), so /31 and
    # /32 networks without an explicit pool are refused here rather than failing in the CNI.
    low, high = int(net.network_address), int(net.broadcast_address)
    bounds = []
    for bound, text, default in (("start", pool.start, low + 1), ("end", pool.end, high - 1)):
        address: int | None = _pool_address(text, net) if text else default
        if address is None or not low <= address <= high:
            return Denial(
                POOL_IN_CIDR,
                f"spec.Options.allocation_pool.{bound}",
                "Allocation pool is outside of defined CIDR",
            )
        bounds.append(address)
    start, end = bounds
    if end <= start:
        return Denial(
            POOL_ORDER,
            "spec.Options.allocation_pool",
            f"Allocation pool start:{ipaddress.IPv4Address(start)} is bigger than or equal to "
            f"allocation pool end:{ipaddress.IPv4Address(end)}",
        )
    return None


def check_vids(review: NetworkReview) -> Denial | None:
    """V-vids: vlan and vxlan are exclusive and within their ranges."""
    options = review.network.options
    if options.vlan and options.vxlan:
        return Denial(
            VIDS, "spec.Options.vlan", "VLAN ID and VxLAN ID parameters are mutually exclusive"
        )
    for name, value, top in (
        ("vlan", options.vlan, MAX_VLAN_ID),
        ("vxlan", options.vxlan, MAX_VXLAN_ID),
    ):
        if not 0 <= value <= top:
            return Denial(VID_RANGE, f"spec.Options.{name}", f"{name} {value} is outside 1-{top}")
    return None


def check_network_id(review: NetworkReview) -> Denial | None:
    """V-nid: NetworkID given; short enough for dynamic types; host interface names valid."""
    network = review.network
    network_id = network.network_id
    if not network_id:
        return Denial(
            NID_MISSING, "spec.NetworkID", "Spec.NetworkID mandatory parameter is missing!"
        )
    if len(network_id) > MAX_NETWORK_ID_LENGTH and is_dynamic_type(network.network_type):
        return Denial(
            NID_LENGTH,
            "spec.NetworkID",
            f"Spec.NetworkID cannot be longer than {MAX_NETWORK_ID_LENGTH} characters "
            "(otherwise VLAN and VxLAN host interface creation might fail)!",
        )
    options = network.options
    try:
        if options.vxlan:
            vxlan_host_interface_name(network_id)
        elif options.vlan:
            vlan_host_interface_name(network_id, options.vlan)
    except InterfaceNameError as error:
        return Denial(HOST_IFNAME, "spec.NetworkID", f"Spec.NetworkID is unusable: {error}")
    return None


def check_no_allowed_tenants(review: NetworkReview) -> Denial | None:
    """V-noAT: AllowedTenants, even an empty list, only on ClusterNetworks."""
    spec_source = review.network.spec.source or {}
    if "AllowedTenants" in spec_source:
        return Denial(
            ALLOWED_TENANTS,
            "spec.AllowedTenants",
            "AllowedTenants attribute is only valid for the ClusterNetwork API!",
        )
    return None


_DEVICE_FIELDS: Final = ("host_device", "device_pool", "vlan", "vxlan")


def _changed(new: Network, old: Network | None, names: Iterable[str]) -> list[str]:
    if old is None:
        return []
    return [n for n in names if getattr(new.options, n) != getattr(old.options, n)]


def check_tenant_network(review: NetworkReview) -> Denial | None:
    """V-tnet: tenants neither pick nor change VNIs and devices."""
    options = review.network.options
    if review.operation == CREATE and (options.vlan or options.vxlan):
        return Denial(
            TNET_VNI,
            "spec.Options.vlan" if options.vlan else "spec.Options.vxlan",
            "Manually configuring Spec.Options.vlan, or Spec.Options.vxlan attributes is not "
            "allowed for TenantNetworks!",
        )
    if review.operation == UPDATE:
        changed = _changed(review.network, review.old, _DEVICE_FIELDS)
        if changed:
            return Denial(
                TNET_FIXED,
                f"spec.Options.{changed[0]}",
                "Manually changing any one of Spec.Options.host_device, device_pool, vlan, or "
                "vxlan attributes is not allowed for TenantNetworks!",
            )
    return None


def check_network_type(review: NetworkReview) -> Denial | None:
    """V-netype: SR-IOV (any case, §13.7) wants device_pool only; nobody has both."""
    network = review.network
    options = network.options
    if network.network_type.lower() == NETWORK_TYPE_SRIOV:
        if not options.device_pool or options.host_device:
            return Denial(
                DEVICE,
                "spec.Options.device_pool",
                "Spec.Options.device_pool must, and Spec.Options.host_device cannot be provided "
                "for SR-IOV networks!",
            )
    elif options.device_pool and options.host_device:
        return Denial(
            DEVICE,
            "spec.Options.host_device",
            "Spec.Options.device_pool and Spec.Options.host_device cannot be provided together!",
        )
    return None


def check_device_change(review: NetworkReview) -> Denial | None:
    """V-vni (README rule 14): no device or VNI change while a Pod is connected."""
    if review.operation != UPDATE or review.connected is None:
        return None
    changed = _changed(review.network, review.old, _DEVICE_FIELDS)
    if not changed:
        return None
    return Denial(
        DEVICE_CHANGE,
        f"spec.Options.{changed[0]}",
        "cannot change VNI/host_device of a network which has Pods connected to it e.g. "
        f"{review.connected}",
    )


def check_cidr_change(review: NetworkReview) -> Denial | None:
    """V-cidr: re-initialising alloc/alloc6 would forget the addresses connected Pods hold."""
    if review.operation != UPDATE or review.connected is None:
        return None
    changed = _changed(review.network, review.old, ("cidr", "net6"))
    if not changed:
        return None
    return Denial(
        CIDR_CHANGE,
        f"spec.Options.{changed[0]}",
        f"cannot change {changed[0]} of a network which has Pods connected to it e.g. "
        f"{review.connected}: the addresses they hold would be lost from its allocation",
    )


#: Fields whose change on UPDATE makes a rule depend on the connected Pods.
POD_SENSITIVE_FIELDS: Final = (*_DEVICE_FIELDS, "cidr", "net6")


def needs_connected_check(new: Network, old: Network | None) -> bool:
    """Whether an UPDATE from ``old`` to ``new`` must know about connected Pods."""
    return bool(_changed(new, old, POD_SENSITIVE_FIELDS))


VALIDATORS: Final[dict[str, tuple[Validator, ...]]] = {
    KIND_DANMNET: (
        check_ipv4,
        check_ipv6,
        check_pool,
        check_vids,
        check_network_id,
        check_no_allowed_tenants,
        check_network_type,
        check_device_change,
        check_cidr_change,
    ),
    KIND_CLUSTER_NETWORK: (
        check_ipv4,
        check_ipv6,
        check_pool,
        check_vids,
        check_network_id,
        check_network_type,
        check_device_change,
        check_cidr_change,
    ),
    # NB: NetworkID may come from the TenantConfig, so V-nid runs after mutation (POST_VALIDATORS).
    KIND_TENANT_NETWORK: (
        check_ipv4,
        check_ipv6,
        check_pool,
        check_vids,
        check_no_allowed_tenants,
        check_tenant_network,
        check_network_type,
        check_cidr_change,
    ),
}

POST_VALIDATORS: Final[tuple[Validator, ...]] = (check_network_id,)


def first_denial(review: NetworkReview, validators: Sequence[Validator]) -> Denial | None:
    for validator in validators:
        denial = validator(review)
        if denial is not None:
            return denial
    return None


def validate_network(review: NetworkReview) -> Denial | None:
    """Run the CREATE/UPDATE validators of the network's kind; the first denial, or None."""
    return first_denial(review, VALIDATORS[review.network.KIND.value])


# ---------------------------------------------------------------------------------------------
# DELETE (§7.6)


def find_connected(
    endpoints: Iterable[Mapping[str, Any]], *, kind: str, name: str, namespace: str
) -> ConnectedPod | None:
    """The first Pod whose DanmEp is on network ``kind``/``namespace``/``name``.

    ``apiType ""`` counts as DanmNet, as every other DANM reader does (§13.8). Malformed DanmEps
    are skipped: they cannot be on any network.
    """
    for endpoint in endpoints:
        spec = endpoint.get("spec")
        metadata = endpoint.get("metadata")
        if not isinstance(spec, Mapping) or not isinstance(metadata, Mapping):
            continue
        api_type = spec.get("apiType") or KIND_DANMNET
        if api_type != kind or spec.get("NetworkName") != name:
            continue
        ep_namespace = metadata.get("namespace") or ""
        if kind != KIND_CLUSTER_NETWORK and ep_namespace != namespace:
            continue
        return ConnectedPod(str(spec.get("Pod") or ""), str(ep_namespace))
    return None


def check_delete(connected: ConnectedPod | None) -> Denial | None:
    """README rule 15: no deletion while a Pod is connected."""
    if connected is None:
        return None
    return Denial(
        DELETE_CONNECTED,
        "metadata.name",
        f"Network cannot be deleted because there are Pods still connected to it e.g. {connected}",
    )


# ---------------------------------------------------------------------------------------------
# TenantConfig (§7.5)


def validate_tenant_config(
    config: TenantConfig, *, operation: str, old: TenantConfig | None = None
) -> Denial | None:
    """README TenantConfig rules 1-4 and the code-only ones, in the original's order."""
    if not config.host_devices and not config.network_ids:
        return Denial(
            TC_NOT_EMPTY, "hostDevices", "Either hostDevices, or networkIds must be provided!"
        )
    old_allocs = {(p.name, p.vni_type): p.alloc for p in old.host_devices} if old else {}
    seen: set[tuple[str, str]] = set()
    for index, profile in enumerate(config.host_devices):
        denial = _check_profile(index, profile, operation, old_allocs, seen)
        if denial is not None:
            return denial
    for network_type, network_id in config.network_ids.items():
        field = f'networkIds["{network_type}"]'
        if not network_type or not network_id:
            return Denial(
                TC_MAPPING,
                field,
                "neither NetworkID, nor NetworkType can be empty in a NetworkID mapping!",
            )
        if len(network_id) > MAX_NETWORK_ID_LENGTH and is_dynamic_type(network_type):
            return Denial(
                TC_MAPPING_LENGTH,
                field,
                f"NetworkID:{network_id} cannot be longer than {MAX_NETWORK_ID_LENGTH} "
                "characters (otherwise VLAN and VxLAN host interface creation might fail)!",
            )
    return None


def _check_profile(
    index: int,
    profile: Any,
    operation: str,
    old_allocs: Mapping[tuple[str, str], str],
    seen: set[tuple[str, str]],
) -> Denial | None:
    where = f"hostDevices[{index}]"
    name = profile.name
    if not name:
        return Denial(TC_NAME, f"{where}.name", "name attribute of a hostDevice must not be empty!")
    if bool(profile.vni_type) != bool(profile.vni_range):
        return Denial(
            TC_VNI_PAIR,
            f"{where}.vniRange" if profile.vni_type else f"{where}.vniType",
            f"vniRange and vniType attributes must be provided together for interface:{name}",
        )
    if profile.vni_type and profile.vni_type not in VNI_TYPES:
        return Denial(
            TC_VNI_TYPE,
            f"{where}.vniType",
            f"{profile.vni_type} is not in allowed vniType values: {{vlan,vxlan}} for "
            f"interface:{name}",
        )
    if operation == CREATE and profile.alloc:
        return Denial(
            TC_ALLOC,
            f"{where}.alloc",
            f"Allocation bitmask for interface: {name} shall not be manually defined upon "
            "creation!",
        )
    try:
        ranges = vnis.parse_vni_range(profile.vni_range)
    except InvalidVniRange as error:
        return Denial(
            TC_RANGE,
            f"{where}.vniRange",
            f"vniRange for interface:{name} must be improperly formatted because its parsing "
            f"fails with:{error}",
        )
    try:
        vnis.check_max_vni(ranges, profile_name=name)
    except InvalidVniRange as error:
        return Denial(TC_RANGE, f"{where}.vniRange", str(error))
    key = (name, profile.vni_type)
    if key in seen:
        return Denial(
            TC_DUPLICATE,
            f"{where}.name",
            f"interface profile:{name} with vniType:{profile.vni_type or '(none)'} is listed "
            "more than once",
        )
    seen.add(key)
    if profile.alloc and profile.alloc != old_allocs.get(key):
        expected = base64_length(vnis.VNI_ALLOC_BITS)
        if len(profile.alloc) != expected:
            return Denial(
                TC_ALLOC,
                f"{where}.alloc",
                f"Allocation bitmask for interface: {name} must be the {expected}-character "
                f"base64 form of {vnis.VNI_ALLOC_BITS} bits",
            )
    return None
