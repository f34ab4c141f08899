"""The desired host links as a pure function of the network objects."""

from __future__ import annotations

from typing import Any

import pytest

from netwatcher.desired import (
    REASON_CONFLICT,
    REASON_INVALID_NAME,
    REASON_INVALID_NETWORK,
    REASON_NAME_TOO_LONG,
    HostLink,
    NetworkObject,
    NetworkRef,
    desired_state,
)


def net(
    name: str,
    *,
    kind: str = "DanmNet",
    network_id: str | None = None,
    created: str = "2024-01-01T00:00:00Z",
    namespace: str = "default",
    **options: Any,
) -> NetworkObject:
    metadata = {"name": name, "creationTimestamp": created, "uid": f"uid-{name}"}
    if kind != "ClusterNetwork":
        metadata["namespace"] = namespace
    body = {
        "apiVersion": "danm.k8s.io/v1",
        "metadata": metadata,
        "spec": {"NetworkID": name if network_id is None else network_id, "Options": options},
    }
    return NetworkObject(kind, body)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, []),
        ({"host_device": "eth0"}, []),
        ({"vlan": 10}, []),
        ({"vxlan": 10}, []),
        ({"host_device": "eth0", "vlan": 10}, [HostLink("n1.10", "vlan", "eth0", 10)]),
        ({"host_device": "eth0", "vxlan": 77}, [HostLink("vx_n1", "vxlan", "eth0", 77)]),
        (
            {"host_device": "eth0", "vlan": 4094, "vxlan": 16777214},
            [
                HostLink("n1.4094", "vlan", "eth0", 4094),
                HostLink("vx_n1", "vxlan", "eth0", 16777214),
            ],
        ),
    ],
)
def test_links_wanted_by_one_network(options: dict[str, Any], expected: list[HostLink]):
    state = desired_state([net("n1", **options)])
    assert sorted(state.links.values(), key=lambda link: link.name) == expected
    assert state.problems == ()
    for link in expected:
        assert [u.name for u in state.users[link.name]] == ["n1"]


@pytest.mark.parametrize("kind", ["DanmNet", "TenantNetwork", "ClusterNetwork"])
def test_every_network_kind_counts(kind: str):
    state = desired_state([net("n1", kind=kind, host_device="eth0", vxlan=5)])
    (user,) = state.users["vx_n1"]
    assert user.kind == kind
    assert user.namespace == ("" if kind == "ClusterNetwork" else "default")
    assert str(user).startswith(kind)


@pytest.mark.parametrize(
    ("network_id", "options", "reason", "fragment"),
    [
        ("abcdefghijklm", {"vxlan": 5}, REASON_NAME_TOO_LONG, "'vx_abcdefghijklm' is 16 bytes"),
        ("abcdefghijk", {"vlan": 1000}, REASON_NAME_TOO_LONG, "'abcdefghijk.1000' is 16 bytes"),
        ("", {"vlan": 5}, REASON_INVALID_NETWORK, "NetworkID is empty"),
        ("a b", {"vlan": 5}, REASON_INVALID_NAME, "characters Linux refuses"),
        ("n1", {"vlan": 4095}, REASON_INVALID_NETWORK, "vlan 4095 is outside 1-4094"),
        ("n1", {"vxlan": 16777215}, REASON_INVALID_NETWORK, "outside 1-16777214"),
        ("n1", {"vlan": "ten"}, REASON_INVALID_NETWORK, "spec.Options.vlan"),
    ],
)
def test_refused_networks_become_problems(
    network_id: str, options: dict[str, Any], reason: str, fragment: str
):
    state = desired_state(
        [
            net("bad", network_id=network_id, host_device="eth0", **options),
            net("ok", host_device="eth0", vlan=7),
        ]
    )
    assert list(state.links) == ["ok.7"], "one bad network must not stop the others"
    (problem,) = state.problems
    assert problem.network.name == "bad"
    assert problem.reason == reason
    assert fragment in problem.message


def test_twelve_character_network_id_fits_a_vxlan_name_exactly():
    state = desired_state([net("n", network_id="abcdefghijkl", host_device="eth0", vxlan=5)])
    assert list(state.links) == ["vx_abcdefghijkl"]


def test_invalid_host_device_is_refused():
    state = desired_state([net("n1", host_device="eth0/x", vlan=5)])
    assert state.links == {}
    assert state.problems[0].reason == REASON_INVALID_NETWORK


def test_identical_links_are_shared_by_all_their_networks():
    state = desired_state(
        [
            net(
                "b",
                network_id="shared",
                host_device="eth0",
                vxlan=9,
                created="2024-01-02T00:00:00Z",
            ),
            net("a", network_id="shared", host_device="eth0", vxlan=9, kind="ClusterNetwork"),
        ]
    )
    assert state.links == {"vx_shared": HostLink("vx_shared", "vxlan", "eth0", 9)}
    assert [u.name for u in state.users["vx_shared"]] == ["a", "b"]
    assert state.problems == ()


@pytest.mark.parametrize(
    ("older", "newer", "why"),
    [
        (
            {"host_device": "eth0", "vxlan": 9},
            {"host_device": "eth1", "vxlan": 9},
            "already VxLAN VNI 9 on eth0",
        ),
        (
            {"host_device": "eth0", "vxlan": 9},
            {"host_device": "eth0", "vxlan": 10},
            "already VxLAN VNI 9 on eth0",
        ),
        (
            {"host_device": "eth0", "vlan": 9},
            {"host_device": "eth1", "vlan": 9},
            "already VLAN 9 on eth0",
        ),
    ],
)
def test_conflicting_links_are_an_error_for_the_newer_network_only(
    older: dict[str, Any], newer: dict[str, Any], why: str
):
    state = desired_state(
        [
            net("newer", network_id="x", created="2024-05-01T00:00:00Z", **newer),
            net("older", network_id="x", created="2024-01-01T00:00:00Z", **older),
        ]
    )
    assert [u.name for users in state.users.values() for u in users] == ["older"]
    (problem,) = state.problems
    assert problem.network.name == "newer"
    assert problem.reason == REASON_CONFLICT
    assert why in problem.message
    assert "DanmNet default/older" in problem.message


def test_same_vni_under_two_names_conflicts():
    state = desired_state(
        [
            net("a", host_device="eth0", vxlan=9),
            net("b", host_device="eth1", vxlan=9, created="2024-02-01T00:00:00Z"),
        ]
    )
    assert list(state.links) == ["vx_a"]
    assert "VNI 9 is already used by vx_a" in state.problems[0].message


def test_same_vlan_id_on_same_parent_under_two_names_conflicts_but_not_on_another_parent():
    state = desired_state(
        [
            net("a", host_device="eth0", vlan=9),
            net("b", host_device="eth0", vlan=9, created="2024-02-01T00:00:00Z"),
            net("c", host_device="eth1", vlan=9, created="2024-03-01T00:00:00Z"),
        ]
    )
    assert sorted(state.links) == ["a.9", "c.9"]
    (problem,) = state.problems
    assert problem.network.name == "b"
    assert "VLAN 9 on eth0 is already used by a.9" in problem.message


def test_a_conflicting_link_does_not_cost_the_network_its_other_link():
    state = desired_state(
        [
            net("a", host_device="eth0", vxlan=9),
            net("b", host_device="eth0", vxlan=9, vlan=20, created="2024-02-01T00:00:00Z"),
        ]
    )
    assert sorted(state.links) == ["b.20", "vx_a"]


def test_ties_on_creation_time_are_broken_by_identity_so_every_node_agrees():
    first = [
        net("b", network_id="x", host_device="eth1", vxlan=9),
        net("a", network_id="x", host_device="eth0", vxlan=9),
    ]
    assert desired_state(first).links["vx_x"].parent == "eth0"
    assert desired_state(list(reversed(first))).links["vx_x"].parent == "eth0"


def test_network_ref_reads_metadata_defensively():
    ref = NetworkRef.of("DanmNet", {"metadata": {"name": 5}})
    assert (ref.name, ref.namespace, ref.created, ref.uid) == ("", "", "", "")
    assert NetworkRef.of("DanmNet", {}).name == ""
