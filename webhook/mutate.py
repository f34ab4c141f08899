"""The attributes DANM fills into objects on admission, computed on plain JSON data.

Users never write ``alloc``/``alloc6`` (the allocation bit arrays) or the default allocation
pools; the webhook does, with exactly the bits the IPAM in ``common.ipam`` would produce on its
own, so a network admitted here and one initialised on the fly by the CNI are indistinguishable.
The functions take and return decoded JSON (``dict``) rather than models, because the patch sent
back must touch only what DANM changes and keep every other key of the user's object as it was;
``webhook.patch`` derives the JSON Patch from the before/after pair.

Pure: no client, no I/O. Every function returns a new object and leaves its argument alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from common.ipam import ipv4, ipv6
from common.ipam import vni as vnis
from common.ipam.errors import IpamError
from common.model import canonical_network_type, copy_json_object
from webhook.rules import POOL6, Denial, Denied, parse_address, parse_cidr

JsonObject = dict[str, Any]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _child(parent: JsonObject, key: str) -> JsonObject:
    """``parent[key]`` as a dict, created (or replaced if it was null) when missing."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def options_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec.Options`` of a network as read-only data (``{}`` when absent)."""
    return _mapping(_mapping(obj.get("spec")).get("Options"))


def _inside(text: Any, net: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> bool:
    if net is None or not isinstance(text, str):
        return False
    address = parse_address(text)
    return address is not None and address.version == net.version and address in net


def _subnet_inside(text: Any, net: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> bool:
    if net is None or not isinstance(text, str):
        return False
    sub = parse_cidr(text)
    return sub is not None and sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]


def _forget_stale_pool(
    pool: JsonObject,
    old_pool: Mapping[str, Any],
    net: ipaddress.IPv4Network | ipaddress.IPv6Network | None,
    keys: tuple[str, ...],
) -> None:
    # NB: bounds the user left as they were and that no longer fit get re-defaulted; bounds the
    # user changed in the same UPDATE are theirs and are validated as written.
    for key in keys:
        if key in pool and pool[key] == old_pool.get(key):
            fits = _subnet_inside(pool[key], net) if key == "cidr" else _inside(pool[key], net)
            if not fits:
                del pool[key]
    pool.pop("lastIp", None)


def prepare_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> JsonObject:
    """The UPDATE object with allocation state tied to a changed ``cidr``/``net6`` dropped.

    The original kept ``alloc`` when ``cidr`` changed (§13.15), so the bit array described
    another network. Here a changed ``cidr`` drops ``alloc`` (re-initialised by
    :func:`default_network`), the ``lastIp`` cursor and pool bounds that were left unchanged
    but no longer fit; ``net6`` likewise for ``alloc6`` and ``allocation_pool_v6``. Whether Pods
    are connected (which forbids the change) is a rule, checked separately.
    """
    result: JsonObject = copy_json_object(new)
    options = options_of(result)
    old_options = options_of(old)
    if not options:
        return result
    writable = _child(_child(result, "spec"), "Options")
    if options.get("cidr") != old_options.get("cidr"):
        writable.pop("alloc", None)
        net = parse_cidr(str(options.get("cidr") or ""))
        pool = writable.get("allocation_pool")
        if isinstance(pool, dict):
            old_pool = _mapping(old_options.get("allocation_pool"))
            _forget_stale_pool(pool, old_pool, net, ("start", "end"))
    if options.get("net6") != old_options.get("net6"):
        writable.pop("alloc6", None)
        net6 = parse_cidr(str(options.get("net6") or ""))
        pool6 = writable.get("allocation_pool_v6")
        if isinstance(pool6, dict):
            old_pool6 = _mapping(old_options.get("allocation_pool_v6"))
            _forget_stale_pool(pool6, old_pool6, net6, ("cidr", "start", "end"))
            if not pool6:
                del writable["allocation_pool_v6"]
    return result


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _gateways(routes: Any) -> tuple[str, ...]:
    return tuple(_str(v) for v in _mapping(routes).values())


def default_network(obj: Mapping[str, Any]) -> JsonObject:
    """A validated network with DANM's defaults filled in (§7.3 steps 1-2, later fields).

    * ``NetworkType`` ``""``/absent/any case of ``ipvlan`` becomes ``ipvlan`` (§13.7: the CNI and
      netwatcher then agree on the built-in type);
    * with a ``cidr``: ``alloc`` initialised when empty (network, broadcast and gateway bits) and
      empty ``allocation_pool`` bounds defaulted to network+1 .. broadcast-1;
    * with a ``net6``: ``allocation_pool_v6`` (cidr, start, end) and ``alloc6`` initialised
      as ``common.ipam.ipv6.init_pool`` does.

    Raises :class:`Denied` when the IPv6 tracking fields cannot be initialised.
    """
    result: JsonObject = copy_json_object(obj)
    spec = _child(result, "spec")
    network_type = _str(spec.get("NetworkType"))
    canonical = canonical_network_type(network_type)
    if canonical != network_type or "NetworkType" not in spec:
        spec["NetworkType"] = canonical
    options = _mapping(spec.get("Options"))
    cidr = _str(options.get("cidr"))
    if cidr:
        writable = _child(spec, "Options")
        if not _str(writable.get("alloc")):
            writable["alloc"] = ipv4.init_alloc(cidr, _gateways(writable.get("routes")))
        pool = _child(writable, "allocation_pool")
        if not _str(pool.get("start")) or not _str(pool.get("end")):
            start, end = ipv4.default_pool(cidr)
            if not _str(pool.get("start")):
                pool["start"] = start
            if not _str(pool.get("end")):
                pool["end"] = end
    _default_ipv6(spec, cidr)
    return result


def _default_ipv6(spec: JsonObject, cidr: str) -> None:
    options = _mapping(spec.get("Options"))
    raw_pool = options.get("allocation_pool_v6")
    pool6 = _mapping(raw_pool)
    current = ipv6.Ipv6Pool(
        net6=_str(options.get("net6")),
        alloc6=_str(options.get("alloc6")),
        cidr=_str(pool6.get("cidr")),
        start=_str(pool6.get("start")),
        end=_str(pool6.get("end")),
        last_ip=_str(pool6.get("lastIp")),
        gateways=_gateways(options.get("routes6")),
    )
    if not current.net6 and raw_pool is None and not current.alloc6:
        return
    try:
        filled = ipv6.init_pool(current, cidr4=cidr)
    except IpamError as error:
        field = "spec.Options.net6" if current.net6 else "spec.Options.allocation_pool_v6"
        raise Denied(Denial(POOL6, field, str(error))) from None
    if filled == current:
        return
    writable = _child(spec, "Options")
    if filled.alloc6 != current.alloc6:
        writable["alloc6"] = filled.alloc6
    pool_out = _child(writable, "allocation_pool_v6")
    for key, before, after in (
        ("cidr", current.cidr, filled.cidr),
        ("start", current.start, filled.start),
        ("end", current.end, filled.end),
    ):
        if after != before:
            pool_out[key] = after


def attach_to_profile(
    obj: Mapping[str, Any],
    *,
    host_device: str,
    device_pool: str,
    network_id: str,
) -> JsonObject:
    """A TenantNetwork with the physical attributes chosen from its TenantConfig."""
    result: JsonObject = copy_json_object(obj)
    spec = _child(result, "spec")
    if _str(spec.get("NetworkID")) != network_id:
        spec["NetworkID"] = network_id
    options = _mapping(spec.get("Options"))
    for key, value in (("host_device", host_device), ("device_pool", device_pool)):
        if _str(options.get(key)) != value:
            _child(spec, "Options")[key] = value
    return result


def set_vni(obj: Mapping[str, Any], *, vni_type: str, vni: int) -> JsonObject:
    """A network with ``spec.Options.vlan`` or ``.vxlan`` set to the reserved VNI."""
    result: JsonObject = copy_json_object(obj)
    _child(_child(result, "spec"), "Options")[vni_type] = vni
    return result


def init_profile_allocs(config: Mapping[str, Any]) -> JsonObject:
    """A TenantConfig whose VNI profiles without ``alloc`` get a fresh 5001-bit array (§7.5)."""
    result: JsonObject = copy_json_object(config)
    devices = result.get("hostDevices")
    if isinstance(devices, list):
        for profile in devices:
            if isinstance(profile, dict) and profile.get("vniType") and not profile.get("alloc"):
                profile["alloc"] = vnis.new_vni_alloc()
    return result
