"""DANM IPAM over a whole network object: the glue between the models and the address maths.

``common.ipam.ipv4``/``ipv6`` work on plain pools of strings; the CNI works on
:class:`~common.model.Network` objects and writes them back with optimistic concurrency
(``common.io.kube.update_with_retry``). This module is the translation between the two, so that
one call reserves (or releases) both address families of one Pod interface and returns the
network as it must be written:

* :func:`reserve_for` / :func:`release_for` take and return models. When nothing changed, the
  very same object is returned (``result is network``), which tells the caller to skip the write;
* :func:`reserving` / :func:`releasing` wrap them as the ``mutate`` callback of
  ``update_with_retry`` (JSON object in, JSON object or ``None`` out) and capture the addresses
  of the attempt that was finally written;
* :func:`reserving_many` does the same for every connection a Pod has on one network, so the
  whole Pod costs one write per network instead of one per connection (writes of one object
  conflict with each other and back off).

Both families are computed before anything is returned, so a failing IPv6 request never leaves a
half-done IPv4 reservation behind: nothing is written at all. Errors keep their IPAM class
(``AddressExhausted``, ``InvalidAddressRequest`` ...) and get the original's wording as a prefix:
``failed to allocate IP address for network:<name> with error:<reason>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.ipam import ipv4, ipv6
from common.ipam.errors import IpamError
from common.ipam.ipv4 import Ipv4Pool
from common.ipam.ipv6 import Ipv6Pool
from common.model import Network, network_from_dict

N = TypeVar("N", bound=Network)
JsonObject = dict[str, Any]


def ipv4_pool_of(network: Network) -> Ipv4Pool:
    """The IPv4 IPAM fields of ``network`` (cidr, alloc, allocation_pool, routes gateways)."""
    options = network.options
    return Ipv4Pool(
        cidr=options.cidr,
        alloc=options.alloc,
        start=options.allocation_pool.start,
        end=options.allocation_pool.end,
        last_ip=options.allocation_pool.last_ip,
        gateways=tuple(options.routes.values()),
    )


def ipv6_pool_of(network: Network) -> Ipv6Pool:
    """The IPv6 IPAM fields of ``network`` (net6, alloc6, allocation_pool_v6, routes6 gateways)."""
    options = network.options
    pool6 = options.allocation_pool_v6
    return Ipv6Pool(
        net6=options.net6,
        alloc6=options.alloc6,
        cidr=pool6.cidr,
        start=pool6.start,
        end=pool6.end,
        last_ip=pool6.last_ip,
        gateways=tuple(options.routes6.values()),
    )


def with_ipv4_pool(network: N, pool: Ipv4Pool) -> N:
    """``network`` with the IPv4 IPAM fields of ``pool`` written back; same object if equal."""
    if pool == ipv4_pool_of(network):
        return network
    allocation_pool = dataclasses.replace(
        network.options.allocation_pool, start=pool.start, end=pool.end, last_ip=pool.last_ip
    )
    return network.with_options(alloc=pool.alloc, allocation_pool=allocation_pool)


def with_ipv6_pool(network: N, pool: Ipv6Pool) -> N:
    """``network`` with the IPv6 IPAM fields of ``pool`` written back; same object if equal."""
    if pool == ipv6_pool_of(network):
        return network
    allocation_pool_v6 = dataclasses.replace(
        network.options.allocation_pool_v6,
        cidr=pool.cidr,
        start=pool.start,
        end=pool.end,
        last_ip=pool.last_ip,
    )
    return network.with_options(alloc6=pool.alloc6, allocation_pool_v6=allocation_pool_v6)


def _wrap(error: IpamError, verb: str, network: Network) -> IpamError:
    # NB: same class as the cause, so callers still branch on AddressExhausted & co.
    wrapped = type(error)(
        f"failed to {verb} IP address for network:{network.name} with error:{error}"
    )
    wrapped.__cause__ = error
    return wrapped


def reserve_for(network: N, ip_request: str, ip6_request: str) -> tuple[N, str, str]:
    """Reserve the addresses one connection asks for: ``(updated network, ip4 CIDR, ip6 CIDR)``.

    Requests are the connection's ``ip``/``ip6``: ``""``/``"none"`` (nothing), ``"dynamic"`` or a
    static CIDR. An address not asked for comes back as ``""``. The network is returned unchanged
    (the same object) when no bit array changed. Raises an :class:`IpamError` subclass whose
    message names the network.
    """
    try:
        pool4, ip4 = ipv4.reserve(ipv4_pool_of(network), ip_request, network=network.name)
        pool6, ip6 = ipv6.reserve(
            ipv6_pool_of(network), ip6_request, network=network.name, cidr4=network.options.cidr
        )
    except IpamError as error:
        raise _wrap(error, "allocate", network) from error
    return with_ipv6_pool(with_ipv4_pool(network, pool4), pool6), ip4, ip6


def release_for(network: N, ip4: str, ip6: str) -> N:
    """Give back the addresses of one interface; the same object if nothing was reserved.

    ``ip4``/``ip6`` may be plain or CIDR, ``""`` or ``"none"``; addresses this network does not
    track (outside cidr/allocation_pool_v6.cidr, another family) are ignored, as in the original.
    """
    try:
        pool4 = ipv4.release(ipv4_pool_of(network), ip4, network=network.name)
        pool6 = ipv6.release(ipv6_pool_of(network), ip6, network=network.name)
    except IpamError as error:
        raise _wrap(error, "release", network) from error
    return with_ipv6_pool(with_ipv4_pool(network, pool4), pool6)


@dataclass(slots=True)
class Reservation:
    """Addresses reserved by the last run of a :func:`reserving` callback (``""`` = none).

    ``error`` is set (by :func:`reserving_many` only) when this request failed in the last run.
    """

    ip4: str = ""
    ip6: str = ""
    attempts: int = 0
    error: IpamError | None = None


def reserving(
    kind: str, ip_request: str, ip6_request: str
) -> tuple[Callable[[JsonObject], JsonObject | None], Reservation]:
    """A ``mutate`` callback for ``update_with_retry`` that reserves, and where it reports to.

    The callback may run several times (once per conflict); ``Reservation`` always holds the
    addresses of the latest run, which after ``update_with_retry`` returns are the ones written.
    It returns ``None`` when the network needs no write (nothing requested, or IPv6-less "none").
    ``kind`` is the network's kind, because objects read from List responses lack it.
    """
    outcome = Reservation()

    def mutate(current: JsonObject) -> JsonObject | None:
        outcome.attempts += 1
        network = network_from_dict(current, kind=kind)
        updated, outcome.ip4, outcome.ip6 = reserve_for(network, ip_request, ip6_request)
        return None if updated is network else updated.to_dict()

    return mutate, outcome


def reserving_many(
    kind: str, requests: Sequence[tuple[str, str]]
) -> tuple[Callable[[JsonObject], JsonObject | None], list[Reservation]]:
    """One ``mutate`` callback reserving every ``(ip, ip6)`` request of one network, in order.

    The result is exactly that of reserving the requests one after another (a static address
    asked for twice is refused the second time; every request sees the ones before it), but
    written at once. A failing request does not stop the later ones, so each
    :class:`Reservation` says for itself whether it failed (``error``), as separate calls would.
    If any failed, the run raises the first failure (an :class:`IpamError` naming the network)
    and nothing is written. Every run starts from blank reservations, so after
    ``update_with_retry`` they describe the run that was written (or that failed last).
    """
    outcomes = [Reservation() for _ in requests]

    def mutate(current: JsonObject) -> JsonObject | None:
        original = network_from_dict(current, kind=kind)
        network = original
        for outcome, (ip_request, ip6_request) in zip(outcomes, requests, strict=True):
            outcome.attempts += 1
            outcome.ip4 = outcome.ip6 = ""
            outcome.error = None
            try:
                network, outcome.ip4, outcome.ip6 = reserve_for(network, ip_request, ip6_request)
            except IpamError as error:
                outcome.error = error
        first_error = next((o.error for o in outcomes if o.error is not None), None)
        if first_error is not None:
            raise first_error
        return None if network is original else network.to_dict()

    return mutate, outcomes


def releasing(kind: str, ip4: str, ip6: str) -> Callable[[JsonObject], JsonObject | None]:
    """A ``mutate`` callback for ``update_with_retry`` that releases ``ip4``/``ip6``."""

    def mutate(current: JsonObject) -> JsonObject | None:
        network = network_from_dict(current, kind=kind)
        updated = release_for(network, ip4, ip6)
        return None if updated is network else updated.to_dict()

    return mutate


__all__ = [
    "Reservation",
    "ipv4_pool_of",
    "ipv6_pool_of",
    "release_for",
    "releasing",
    "reserve_for",
    "reserving",
    "with_ipv4_pool",
    "with_ipv6_pool",
]
