"""Result merging in annotation order with re-based indices, DNS union, IPVLAN shape, errors."""

from __future__ import annotations

import pytest

from common.cni.types import DNS, Interface, IPConfig, Result, Route
from danm.merge import (
    AttachmentResult,
    ConnectionFailure,
    combined_error_message,
    has_ipv4_on,
    ipvlan_result,
    merge_dns,
    merge_results,
)

NETNS = "/var/run/netns/pod"


def test_ipvlan_result_shape():
    result = ipvlan_result(
        ifname="eth1",
        mac="52:54:00:12:34:56",
        sandbox=NETNS,
        ip4="10.0.0.5/24",
        ip6="2001:db8::5/64",
        routes={"10.2.0.0/16": "10.0.0.1", "10.1.0.0/16": "10.0.0.1"},
        routes6={"2001:db9::/64": "2001:db8::1"},
    )
    assert result == Result(
        interfaces=(Interface(name="eth1", mac="52:54:00:12:34:56", sandbox=NETNS),),
        ips=(
            IPConfig(address="10.0.0.5/24", interface=0),
            IPConfig(address="2001:db8::5/64", interface=0),
        ),
        routes=(
            Route(dst="10.1.0.0/16", gw="10.0.0.1"),
            Route(dst="10.2.0.0/16", gw="10.0.0.1"),
            Route(dst="2001:db9::/64", gw="2001:db8::1"),
        ),
    )
    # and it survives every result version
    for version in ("0.3.1", "0.4.0", "1.0.0", "1.1.0"):
        assert Result.from_json(result.to_json(version)) == result


def test_ipvlan_result_l2_only():
    result = ipvlan_result(ifname="eth0", mac="aa:bb:cc:dd:ee:ff", sandbox=NETNS)
    assert result.ips == ()
    assert result.routes == ()


def macvlan_part(
    index: int, ifname: str, address: str, *, with_index: bool = True
) -> AttachmentResult:
    return AttachmentResult(
        index=index,
        ifname=ifname,
        result=Result(
            interfaces=(Interface(name=ifname, mac=f"02:00:00:00:00:0{index}", sandbox=NETNS),),
            ips=(IPConfig(address=address, interface=0 if with_index else None),),
        ),
    )


def bridge_part(index: int, ifname: str, address: str) -> AttachmentResult:
    # the reference bridge plugin: bridge, host veth, container veth; IP on index 2
    return AttachmentResult(
        index=index,
        ifname=ifname,
        result=Result(
            interfaces=(
                Interface(name="cni0", mac="02:aa:00:00:00:01"),
                Interface(name="veth1234", mac="02:aa:00:00:00:02"),
                Interface(name=ifname, mac="02:aa:00:00:00:03", sandbox=NETNS),
            ),
            ips=(IPConfig(address=address, gateway="10.9.0.1", interface=2),),
            routes=(Route(dst="0.0.0.0/0", gw="10.9.0.1"),),
            dns=DNS(nameservers=("10.9.0.10",), domain="cluster.local", search=("a",)),
        ),
    )


def test_merge_orders_by_connection_and_rebases_indices():
    parts = [
        # arrival order is not annotation order
        macvlan_part(2, "eth2", "10.2.0.5/24"),
        bridge_part(1, "eth1", "10.9.0.7/24"),
        macvlan_part(0, "eth0", "10.0.0.5/24"),
    ]
    merged = merge_results(parts)
    assert [i.name for i in merged.interfaces] == ["eth0", "cni0", "veth1234", "eth1", "eth2"]
    assert [(ip.address, ip.interface) for ip in merged.ips] == [
        ("10.0.0.5/24", 0),
        ("10.9.0.7/24", 3),
        ("10.2.0.5/24", 4),
    ]
    assert merged.ips[1].gateway == "10.9.0.1"
    assert merged.routes == (Route(dst="0.0.0.0/0", gw="10.9.0.1"),)
    assert merged.dns == DNS(nameservers=("10.9.0.10",), domain="cluster.local", search=("a",))
    # every index points at an interface of the right name
    for ip in merged.ips:
        assert ip.interface is not None
        assert merged.interfaces[ip.interface].sandbox == NETNS
    assert Result.from_json(merged.to_json("1.0.0")) == merged


def test_ip_without_interface_index_is_pointed_at_the_container_interface():
    merged = merge_results(
        [
            macvlan_part(0, "eth0", "10.0.0.5/24"),
            AttachmentResult(
                index=1,
                ifname="eth1",
                result=Result(
                    interfaces=(
                        Interface(name="eth1", mac="02:00:00:00:00:09"),  # host side, same name
                        Interface(name="eth1", mac="02:00:00:00:00:0a", sandbox=NETNS),
                    ),
                    ips=(IPConfig(address="10.1.0.5/24"),),
                ),
            ),
        ]
    )
    assert merged.ips[1].interface == 2


def test_ip_without_index_and_without_matching_interface_stays_unindexed():
    ipam_only = AttachmentResult(
        index=0, ifname="eth0", result=Result(ips=(IPConfig("10.0.0.5/24"),))
    )
    merged = merge_results([ipam_only, macvlan_part(1, "eth1", "10.1.0.5/24")])
    assert merged.ips[0].interface is None
    assert merged.ips[1].interface == 0


def test_merge_drops_duplicate_routes_and_of_nothing_is_empty():
    part = bridge_part(0, "eth0", "10.9.0.7/24")
    merged = merge_results([part, bridge_part(1, "eth1", "10.9.0.8/24")])
    assert merged.routes == (Route(dst="0.0.0.0/0", gw="10.9.0.1"),)
    assert merge_results([]) == Result()


def test_merge_refuses_two_results_for_one_connection():
    with pytest.raises(ValueError, match="same connection index"):
        merge_results([macvlan_part(0, "eth0", "10.0.0.5/24")] * 2)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], DNS()),
        ([DNS(), DNS()], DNS()),
        (
            [
                DNS(nameservers=("1.1.1.1",), search=("a",), options=("ndots:2",)),
                DNS(),
                DNS(nameservers=("8.8.8.8", "1.1.1.1"), domain="x", search=("b", "a")),
                DNS(domain="y", options=("ndots:2", "rotate")),
            ],
            DNS(
                nameservers=("1.1.1.1", "8.8.8.8"),
                domain="x",
                search=("a", "b"),
                options=("ndots:2", "rotate"),
            ),
        ),
    ],
)
def test_merge_dns(entries, expected):
    assert merge_dns(entries) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([macvlan_part(0, "eth0", "10.0.0.5/24")], True),
        ([macvlan_part(0, "eth0", "2001:db8::5/64")], False),
        ([macvlan_part(1, "eth1", "10.0.0.5/24")], False),
        ([bridge_part(0, "eth0", "10.9.0.7/24")], True),
    ],
)
def test_has_ipv4_on_eth0(parts, expected):
    assert has_ipv4_on(merge_results(parts)) is expected


def test_has_ipv4_on_ignores_unindexed_and_out_of_range():
    assert not has_ipv4_on(Result(ips=(IPConfig("10.0.0.5/24"),)))
    assert not has_ipv4_on(
        Result(interfaces=(Interface("eth0"),), ips=(IPConfig("10.0.0.5/24", interface=3),))
    )


def test_combined_error_message():
    message = combined_error_message(
        "prod/web-0",
        [
            ConnectionFailure(index=2, network="sriov-a", error="no VF left", ifname="eth2"),
            ConnectionFailure(index=0, network="internal", error="timed out after 30s"),
        ],
        total=3,
    )
    assert message.splitlines() == [
        "CNI network could not be set up for Pod:prod/web-0: 2 of 3 network connections failed",
        "connection no.:0: CNI operation for network:internal failed with:timed out after 30s",
        "connection no.:2 (eth2): CNI operation for network:sriov-a failed with:no VF left",
    ]
