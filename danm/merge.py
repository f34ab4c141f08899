"""One CNI result for the whole Pod out of one result per interface, and one error out of many.

ADD provisions every connection in parallel; the runtime wants a single result. The seed merged
in completion order and copied each sub-result's ``ips[].interface`` index unchanged, so the
indices pointed at the wrong interfaces, and it dropped DNS (danm-behaviour.md §3.7, §13.2). Here:

* results are merged in *annotation order* (connection index), whatever order they finished in;
* ``interfaces`` are concatenated and every ``ips[].interface`` is shifted by the number of
  interfaces before its sub-result. An IP that a delegate reported *without* an index is pointed
  at that attachment's container interface (the one named like the planned ifname with a
  sandbox), so runtimes can tell which interface it belongs to: containerd takes the Pod IP from
  the IPv4 of the interface named ``eth0`` and fails the sandbox without it;
* ``routes`` are concatenated in order, exact duplicates dropped;
* DNS: the union, in order (``nameservers``, ``search``, ``options`` without duplicates; the
  first non-empty ``domain``). Nothing a delegate reported is lost, and for Kubernetes Pods the
  runtime takes DNS from the Pod spec anyway, so a union cannot override anything.

The built-in IPVLAN's own result is :func:`ipvlan_result`: the interface is named like the
container ifname (not the DanmEp UUID), carries the link's real MAC and the netns path as
``sandbox`` (the seed reported the UUID, a random MAC and the infra container id, §13.5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from common.cni.types import DNS, Interface, IPConfig, Result, Route
from common.model.constants import FIRST_IFNAME


@dataclass(frozen=True, slots=True)
class AttachmentResult:
    """The result of one connection: its index (annotation order) and planned ifname."""

    index: int
    ifname: str
    result: Result


@dataclass(frozen=True, slots=True)
class ConnectionFailure:
    """One failed connection, for :func:`combined_error_message`."""

    index: int
    network: str
    error: str
    ifname: str = ""


def ipvlan_result(
    *,
    ifname: str,
    mac: str,
    sandbox: str,
    ip4: str = "",
    ip6: str = "",
    routes: Mapping[str, str] | None = None,
    routes6: Mapping[str, str] | None = None,
) -> Result:
    """The result of one built-in IPVLAN interface: itself, its addresses and main-table routes.

    ``mac`` should be the MAC read back from the link; ``sandbox`` the netns path (CNI_NETNS).
    ``routes``/``routes6`` are the network's ``dst → gateway`` maps DANM installs.
    """
    ips = tuple(IPConfig(address=a, interface=0) for a in (ip4, ip6) if a)
    route_list = [
        Route(dst=dst, gw=gw)
        for table in (routes or {}, routes6 or {})
        for dst, gw in sorted(table.items())
    ]
    return Result(
        interfaces=(Interface(name=ifname, mac=mac, sandbox=sandbox),),
        ips=ips,
        routes=tuple(route_list),
    )


def _container_interface(result: Result, ifname: str) -> int | None:
    for position, interface in enumerate(result.interfaces):
        if interface.name == ifname and interface.sandbox:
            return position
    for position, interface in enumerate(result.interfaces):
        if interface.name == ifname:
            return position
    return None


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def merge_dns(entries: Iterable[DNS]) -> DNS:
    """Union of ``entries`` in order; ``domain`` is the first non-empty one."""
    dns_list = list(entries)
    return DNS(
        nameservers=_unique(n for d in dns_list for n in d.nameservers),
        domain=next((d.domain for d in dns_list if d.domain), ""),
        search=_unique(s for d in dns_list for s in d.search),
        options=_unique(o for d in dns_list for o in d.options),
    )


def merge_results(parts: Iterable[AttachmentResult]) -> Result:
    """All ``parts`` as one result, in connection-index order (see the module docstring)."""
    ordered = sorted(parts, key=lambda part: part.index)
    indices = [part.index for part in ordered]
    if len(set(indices)) != len(indices):
        raise ValueError(f"two results for the same connection index in {indices}")
    interfaces: list[Interface] = []
    ips: list[IPConfig] = []
    routes: list[Route] = []
    for part in ordered:
        offset = len(interfaces)
        own = _container_interface(part.result, part.ifname)
        for ip in part.result.ips:
            local = ip.interface if ip.interface is not None else own
            ips.append(replace(ip, interface=None if local is None else local + offset))
        interfaces.extend(part.result.interfaces)
        routes.extend(r for r in part.result.routes if r not in routes)
    return Result(
        interfaces=tuple(interfaces),
        ips=tuple(ips),
        routes=tuple(routes),
        dns=merge_dns(part.result.dns for part in ordered),
    )


def has_ipv4_on(result: Result, ifname: str = FIRST_IFNAME) -> bool:
    """Whether ``result`` gives an IPv4 address to an interface named ``ifname``.

    containerd needs this for ``eth0``; an L2-only first interface is legal in DANM but the Pod
    sandbox then fails under containerd, so callers may want to warn.
    """
    return any(
        ip.family == "4"
        and ip.interface is not None
        and 0 <= ip.interface < len(result.interfaces)
        and result.interfaces[ip.interface].name == ifname
        for ip in result.ips
    )


def combined_error_message(pod: str, failures: Sequence[ConnectionFailure], total: int) -> str:
    """One message for every failed connection of an ADD, ordered by connection index.

    Each line keeps the original's shape ``CNI operation for network:<net> failed with:<err>``,
    prefixed with the connection index and interface so two connections to one network are told
    apart.
    """
    lines = []
    for failure in sorted(failures, key=lambda f: f.index):
        where = f"connection no.:{failure.index}"
        if failure.ifname:
            where += f" ({failure.ifname})"
        lines.append(
            f"{where}: CNI operation for network:{failure.network} failed with:{failure.error}"
        )
    head = (
        f"CNI network could not be set up for Pod:{pod}: {len(lines)} of {total} network "
        "connections failed"
    )
    return "\n".join([head, *lines])
