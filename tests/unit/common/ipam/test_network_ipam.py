"""Network-level IPAM glue: model <-> pools, both families at once, errors, retry callbacks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.io import kube
from common.ipam import ipv4, network_ipam
from common.ipam.errors import (
    AddressExhausted,
    AddressInUse,
    CorruptAllocation,
    InvalidAddressRequest,
)
from common.ipam.ipv4 import Ipv4Pool
from common.ipam.ipv6 import Ipv6Pool
from common.model import ClusterNetwork, DanmNet, Network, network_from_dict
from common.model.resources import DANMNETS, Resource

CIDR = "10.0.0.0/29"
NET6 = "2001:db8::/64"


def net_dict(**options: Any) -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "internal", "namespace": "default", "resourceVersion": "1"},
        "spec": {"NetworkID": "internal", "NetworkType": "ipvlan", "Options": options},
        "status": {"unmodelled": True},
    }


def net(**options: Any) -> Network:
    return network_from_dict(net_dict(**options))


V4 = {"cidr": CIDR, "alloc": ipv4.init_alloc(CIDR)}
V6 = {"net6": NET6}


def test_pools_read_every_ipam_field():
    network = net(
        cidr=CIDR,
        alloc="gAE=",
        allocation_pool={"start": "10.0.0.2", "end": "10.0.0.5", "lastIp": "10.0.0.3/29"},
        routes={"10.1.0.0/16": "10.0.0.6"},
        net6=NET6,
        alloc6="x",
        allocation_pool_v6={"cidr": "2001:db8::/120", "start": "2001:db8::2", "end": "a"},
        routes6={"2001:db9::/64": "2001:db8::fe"},
    )
    assert network_ipam.ipv4_pool_of(network) == Ipv4Pool(
        CIDR, "gAE=", "10.0.0.2", "10.0.0.5", "10.0.0.3/29", ("10.0.0.6",)
    )
    assert network_ipam.ipv6_pool_of(network) == Ipv6Pool(
        NET6, "x", "2001:db8::/120", "2001:db8::2", "a", "", ("2001:db8::fe",)
    )


@pytest.mark.parametrize(("ip", "ip6"), [("", ""), ("none", ""), ("", "none"), ("none", "none")])
def test_reserve_without_request_returns_the_same_object(ip, ip6):
    network = net(**V4, **V6)
    updated, ip4, ip6_out = network_ipam.reserve_for(network, ip, ip6)
    assert updated is network
    assert (ip4, ip6_out) == ("", "")


@pytest.mark.parametrize(
    ("options", "ip", "ip6", "want4", "want6"),
    [
        (V4, "dynamic", "", "10.0.0.1/29", ""),
        (V4, "10.0.0.5/29", "", "10.0.0.5/29", ""),
        ({**V4, **V6}, "dynamic", "dynamic", "10.0.0.1/29", "2001:db8::1/64"),
        (V6, "", "dynamic", "", "2001:db8::1/64"),
        (V6, "none", "2001:db8::10/64", "", "2001:db8::10/64"),
        # NB: a cidr without alloc (no webhook) is initialised on the fly
        ({"cidr": CIDR}, "dynamic", "", "10.0.0.1/29", ""),
    ],
)
def test_reserve_for(options, ip, ip6, want4, want6):
    network = net(**options)
    updated, ip4, ip6_out = network_ipam.reserve_for(network, ip, ip6)
    assert (ip4, ip6_out) == (want4, want6)
    assert updated is not network
    assert type(updated) is DanmNet
    # the reserved addresses are now taken: the same static request fails
    if want4:
        with pytest.raises(AddressInUse):
            network_ipam.reserve_for(updated, want4, "")
    if want6:
        with pytest.raises(AddressInUse):
            network_ipam.reserve_for(updated, "", want6)


def test_reserve_writes_pool_fields_back_and_keeps_unknown_fields():
    updated, _, _ = network_ipam.reserve_for(net(**V4, **V6), "dynamic", "dynamic")
    body = updated.to_dict()
    options = body["spec"]["Options"]
    assert options["allocation_pool"] == {
        "start": "10.0.0.1",
        "end": "10.0.0.6",
        "lastIp": "10.0.0.1/29",
    }
    assert options["allocation_pool_v6"]["cidr"] == "2001:db8::/112"
    assert options["allocation_pool_v6"]["lastIp"] == "2001:db8::1/64"
    assert options["alloc"] != V4["alloc"]
    assert options["alloc6"]
    assert body["status"] == {"unmodelled": True}
    assert body["metadata"]["resourceVersion"] == "1"


def test_successive_dynamic_reservations_are_distinct():
    network = net(**V4)
    seen = []
    for _ in range(6):
        network, ip4, _ = network_ipam.reserve_for(network, "dynamic", "")
        seen.append(ip4)
    assert seen == [f"10.0.0.{i}/29" for i in range(1, 7)]
    with pytest.raises(AddressExhausted) as caught:
        network_ipam.reserve_for(network, "dynamic", "")
    message = str(caught.value)
    assert message.startswith("failed to allocate IP address for network:internal with error:")
    assert "no free IPv4 address left" in message
    assert isinstance(caught.value.__cause__, AddressExhausted)


@pytest.mark.parametrize(
    ("options", "ip", "ip6", "error", "text"),
    [
        ({}, "dynamic", "", InvalidAddressRequest, "has no cidr"),
        (V4, "10.0.0.5/24", "", InvalidAddressRequest, "prefix length /29"),
        # NB: the IPv4 part would succeed; the IPv6 error still aborts the whole reservation
        (V4, "dynamic", "dynamic", InvalidAddressRequest, "has no net6"),
    ],
)
def test_reserve_errors_are_wrapped_and_keep_their_class(options, ip, ip6, error, text):
    network = net(**options)
    with pytest.raises(error, match=text) as caught:
        network_ipam.reserve_for(network, ip, ip6)
    assert str(caught.value).startswith("failed to allocate IP address for network:internal")


def test_release_round_trip_restores_the_allocation():
    network = net(**V4, **V6)
    reserved, ip4, ip6 = network_ipam.reserve_for(network, "dynamic", "dynamic")
    released = network_ipam.release_for(reserved, ip4, ip6)
    assert released.options.alloc == V4["alloc"]
    # IPv6 tracking was initialised by the reservation; only the address bit is gone again
    again, ip4_again, ip6_again = network_ipam.reserve_for(released, "10.0.0.1/29", ip6)
    assert (ip4_again, ip6_again) == (ip4, ip6)
    assert again.options.alloc == reserved.options.alloc


@pytest.mark.parametrize(
    ("ip4", "ip6"),
    [("", ""), ("none", "none"), ("10.9.9.9/24", ""), ("10.0.0.3/29", ""), ("", "2001:db8::5")],
)
def test_release_of_nothing_tracked_returns_the_same_object(ip4, ip6):
    # 10.0.0.3 is free; 10.9.9.9 is outside; no alloc6 tracked yet
    network = net(**V4, **V6)
    assert network_ipam.release_for(network, ip4, ip6) is network


def test_release_corrupt_alloc_is_wrapped():
    network = net(cidr=CIDR, alloc="AAAAAAAA")
    with pytest.raises(
        CorruptAllocation, match="failed to release IP address for network:internal"
    ):
        network_ipam.release_for(network, "10.0.0.1/29", "")


def test_cluster_network_type_is_kept():
    network = network_from_dict({**net_dict(**V4), "kind": "ClusterNetwork"})
    updated, _, _ = network_ipam.reserve_for(network, "dynamic", "")
    assert type(updated) is ClusterNetwork


# --------------------------------------------------------------------------------------------
# As update_with_retry callbacks


def test_reserving_callback_reports_and_returns_none_when_nothing_to_write():
    mutate, outcome = network_ipam.reserving("DanmNet", "none", "")
    assert mutate(net_dict(**V4)) is None
    assert (outcome.ip4, outcome.ip6, outcome.attempts) == ("", "", 1)


def test_reserving_callback_returns_the_body_to_write():
    mutate, outcome = network_ipam.reserving("DanmNet", "dynamic", "")
    current = net_dict(**V4)
    written = mutate(current)
    assert written is not None
    assert written["spec"]["Options"]["alloc"] != V4["alloc"]
    assert written["status"] == {"unmodelled": True}
    assert outcome.ip4 == "10.0.0.1/29"


def test_reserving_accepts_list_items_without_kind():
    body = net_dict(**V4)
    del body["kind"]
    mutate, outcome = network_ipam.reserving("TenantNetwork", "dynamic", "")
    assert mutate(body) is not None
    assert outcome.ip4 == "10.0.0.1/29"


@dataclass
class RacingKube:
    """One network; before our first write lands, another node reserves an address."""

    obj: dict[str, Any]
    rival: Callable[[dict[str, Any]], dict[str, Any] | None]
    raced: bool = False
    writes: list[dict[str, Any]] = field(default_factory=list)

    def get(self, resource: Resource, namespace: str | None, name: str, **_: Any) -> Any:
        return copy.deepcopy(self.obj)

    def replace(self, resource: Resource, namespace: str | None, name: str, body: Any, **_: Any):
        if not self.raced:
            self.raced = True
            winner = self.rival(copy.deepcopy(self.obj))
            assert winner is not None
            winner["metadata"]["resourceVersion"] = "2"
            self.obj = winner
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise kube.Conflict(409, "Conflict", "the object has been modified")
        self.writes.append(copy.deepcopy(body))
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = "3"
        return copy.deepcopy(self.obj)


def test_reserving_under_a_conflict_reports_the_address_actually_written():
    rival, rival_outcome = network_ipam.reserving("DanmNet", "dynamic", "")
    api = RacingKube(net_dict(**V4), rival)
    mutate, outcome = network_ipam.reserving("DanmNet", "dynamic", "")
    kube.update_with_retry(
        api,  # type: ignore[arg-type]
        DANMNETS,
        "default",
        "internal",
        mutate,
        sleep=lambda _: None,
        jitter=lambda: 0.0,
    )
    assert rival_outcome.ip4 == "10.0.0.1/29"
    assert outcome.ip4 == "10.0.0.2/29"
    assert outcome.attempts == 2
    assert len(api.writes) == 1
    final = network_from_dict(api.obj)
    # both addresses are taken in the stored object
    for taken in ("10.0.0.1/29", "10.0.0.2/29"):
        with pytest.raises(AddressInUse):
            network_ipam.reserve_for(final, taken, "")


def test_releasing_callback():
    reserved, ip4, _ = network_ipam.reserve_for(net(**V4), "dynamic", "")
    body = reserved.to_dict()
    mutate = network_ipam.releasing("DanmNet", ip4, "")
    written = mutate(body)
    assert written is not None
    assert written["spec"]["Options"]["alloc"] == V4["alloc"]
    assert network_ipam.releasing("DanmNet", "10.0.0.5/29", "")(body) is None


# One write for many connections of one network


def test_reserving_many_reserves_in_order_in_one_body():
    mutate, outcomes = network_ipam.reserving_many(
        "DanmNet", [("dynamic", ""), ("10.0.0.5/29", ""), ("none", ""), ("dynamic", "")]
    )
    written = mutate(net_dict(**V4))
    assert written is not None
    assert [o.ip4 for o in outcomes] == ["10.0.0.1/29", "10.0.0.5/29", "", "10.0.0.2/29"]
    assert all(o.error is None and o.attempts == 1 for o in outcomes)
    final = network_from_dict(written)
    for taken in ("10.0.0.1/29", "10.0.0.2/29", "10.0.0.5/29"):
        with pytest.raises(AddressInUse):
            network_ipam.reserve_for(final, taken, "")


def test_reserving_many_with_nothing_to_reserve_writes_nothing():
    mutate, outcomes = network_ipam.reserving_many("DanmNet", [("none", ""), ("", "")])
    assert mutate(net_dict(**V4)) is None
    assert [(o.ip4, o.ip6, o.attempts) for o in outcomes] == [("", "", 1), ("", "", 1)]


def test_reserving_many_refuses_a_static_address_asked_twice_for_the_second_request():
    mutate, outcomes = network_ipam.reserving_many(
        "DanmNet", [("10.0.0.3/29", ""), ("10.0.0.3/29", ""), ("dynamic", "")]
    )
    with pytest.raises(AddressInUse, match="network:internal"):
        mutate(net_dict(**V4))
    first, second, third = outcomes
    assert first.error is None
    assert first.ip4 == "10.0.0.3/29"
    assert isinstance(second.error, AddressInUse)
    assert "network:internal" in str(second.error)
    assert second.ip4 == ""
    # NB: later requests still run, as separate calls would have, so each reports for itself.
    assert third.error is None
    assert third.ip4 == "10.0.0.1/29"


def test_reserving_many_reports_every_exhausted_request():
    # a /29 has 6 usable addresses: the 7th and 8th dynamic requests fail
    mutate, outcomes = network_ipam.reserving_many("DanmNet", [("dynamic", "")] * 8)
    with pytest.raises(AddressExhausted, match="network:internal"):
        mutate(net_dict(**V4))
    assert [o.error is not None for o in outcomes] == [False] * 6 + [True, True]


def test_reserving_many_resets_every_outcome_per_run():
    fill, _ = network_ipam.reserving_many("DanmNet", [("dynamic", "")] * 6)
    full = fill(net_dict(**V4))
    assert full is not None
    mutate, outcomes = network_ipam.reserving_many("DanmNet", [("dynamic", ""), ("dynamic", "")])

    assert mutate(net_dict(**V4)) is not None
    assert [(o.ip4, o.error) for o in outcomes] == [("10.0.0.1/29", None), ("10.0.0.2/29", None)]
    with pytest.raises(AddressExhausted):
        mutate(copy.deepcopy(full))
    assert [(o.ip4, o.error is None) for o in outcomes] == [("", False), ("", False)]
    assert mutate(net_dict(**V4)) is not None
    assert [(o.ip4, o.error) for o in outcomes] == [("10.0.0.1/29", None), ("10.0.0.2/29", None)]
    assert [o.attempts for o in outcomes] == [3, 3]


def test_reserving_many_under_a_conflict_reports_the_addresses_actually_written():
    rival, _ = network_ipam.reserving("DanmNet", "dynamic", "")
    api = RacingKube(net_dict(**V4), rival)
    mutate, outcomes = network_ipam.reserving_many("DanmNet", [("dynamic", ""), ("dynamic", "")])
    kube.update_with_retry(
        api,  # type: ignore[arg-type]
        DANMNETS,
        "default",
        "internal",
        mutate,
        sleep=lambda _: None,
        jitter=lambda: 0.0,
    )
    assert [o.ip4 for o in outcomes] == ["10.0.0.2/29", "10.0.0.3/29"]
    assert [o.attempts for o in outcomes] == [2, 2]
    assert len(api.writes) == 1
