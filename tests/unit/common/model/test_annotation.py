"""The danm.k8s.io/interfaces Pod annotation: parsing, every error case, serialisation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.model import (
    AnnotationError,
    NetworkConnection,
    NetworkKind,
    default_connection,
    parse_interfaces,
    parse_interfaces_json,
    serialize_interfaces,
)

KEY = "danm.k8s.io/interfaces"
POD = "web-7d9f"


def _parse(value: Any) -> list[NetworkConnection]:
    text = value if isinstance(value, str) else json.dumps(value)
    return parse_interfaces(POD, {KEY: text})


def test_full_example() -> None:
    connections = _parse(
        [
            {"network": "flannel"},
            {
                "tenantNetwork": "internal",
                "ip": "dynamic",
                "ip6": "none",
                "proutes": {"10.0.0.0/8": "10.1.0.1"},
            },
            {
                "clusterNetwork": "ext",
                "ip": "10.10.0.101/24",
                "ip6": "2001:db8::5/64",
                "proutes6": {"2001:db8:1::/48": "2001:db8::1"},
            },
            {"network": "flannel", "ip": "none"},
        ]
    )
    assert connections == [
        NetworkConnection(kind=NetworkKind.DANMNET, name="flannel"),
        NetworkConnection(
            kind=NetworkKind.TENANT_NETWORK,
            name="internal",
            ip="dynamic",
            ip6="none",
            proutes={"10.0.0.0/8": "10.1.0.1"},
        ),
        NetworkConnection(
            kind=NetworkKind.CLUSTER_NETWORK,
            name="ext",
            ip="10.10.0.101/24",
            ip6="2001:db8::5/64",
            proutes6={"2001:db8:1::/48": "2001:db8::1"},
        ),
        NetworkConnection(kind=NetworkKind.DANMNET, name="flannel", ip="none"),
    ]
    assert [c.reference_key for c in connections] == [
        "network",
        "tenantNetwork",
        "clusterNetwork",
        "network",
    ]


@pytest.mark.parametrize(
    "annotations",
    [None, {}, {"other": "x"}, {KEY: "[]"}, {KEY: " [ ] "}],
    ids=["none", "no_annotations", "other_key", "empty_list", "empty_list_spaces"],
)
def test_no_connections(annotations: dict[str, str] | None) -> None:
    assert parse_interfaces(POD, annotations) == []


@pytest.mark.parametrize(
    "key", ["x.danm.k8s.io/interfaces", "danm.k8s.io/interfaces-old", "DANM.k8s.io/interfaces"]
)
def test_key_must_match_exactly(key: str) -> None:
    assert parse_interfaces(POD, {key: '[{"network":"a"}]'}) == []
    assert parse_interfaces(POD, {key: "garbage", KEY: '[{"network":"b"}]'})[0].name == "b"


def test_null_values_count_as_absent() -> None:
    [connection] = _parse([{"network": "a", "clusterNetwork": None, "ip": None, "proutes": None}])
    assert connection == NetworkConnection(kind=NetworkKind.DANMNET, name="a")


def test_empty_ip_means_omitted() -> None:
    assert _parse([{"network": "a", "ip": "", "ip6": ""}])[0].ip == ""


def test_bad_json_names_pod_and_json_error() -> None:
    with pytest.raises(AnnotationError) as caught:
        parse_interfaces(POD, {KEY: '[{"network": "a",}]'})
    message = str(caught.value)
    assert message.startswith(
        f"Can't create network interfaces for Pod: {POD} due to badly formatted "
        "danm.k8s.io/interfaces definition in Pod annotation:"
    )
    assert "Expecting property name enclosed in double quotes: line 1 column 18" in message
    assert caught.value.pod == POD
    assert caught.value.index is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Expecting value"),
        ('{"network":"a"}', "expected a JSON list of network connections, got object"),
        ("null", "expected a JSON list of network connections, got null"),
        ('"a"', 'expected a JSON list of network connections, got string "a"'),
        ('[{"network":"a","network":"b"}]', 'duplicate key "network" in a JSON object'),
    ],
)
def test_whole_annotation_errors(text: str, reason: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        parse_interfaces_json(POD, text)
    assert f"Pod: {POD} " in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.index is None


def test_annotation_value_not_a_string() -> None:
    with pytest.raises(AnnotationError, match=f"Pod: {POD} .*expected a JSON string, got list"):
        parse_interfaces(POD, {KEY: [{"network": "a"}]})


ENTRY_ERRORS = [
    ("not_object", "x", 'is not a JSON object, got string "x"'),
    ("list_entry", [], "is not a JSON object, got list"),
    ("unknown_key", {"network": "a", "ipv6": "dynamic"}, 'has unknown key "ipv6"'),
    ("wrong_case", {"Network": "a"}, 'has unknown key "Network"'),
    ("go_internal_device", {"network": "a", "Device": "0000:af:06.0"}, 'has unknown key "Device"'),
    ("go_internal_seq", {"network": "a", "SequenceId": 3}, 'has unknown key "SequenceId"'),
    ("no_reference", {"ip": "dynamic"}, "contains invalid number of network references:0"),
    (
        "two_references",
        {"network": "a", "clusterNetwork": "b"},
        "contains invalid number of network references:2",
    ),
    (
        "three_references",
        {"network": "a", "tenantNetwork": "b", "clusterNetwork": "c"},
        "contains invalid number of network references:3",
    ),
    ("name_not_string", {"network": 5}, 'has a non-string "network" value: number 5'),
    ("name_empty", {"tenantNetwork": ""}, 'has an empty "tenantNetwork" name'),
    ("ip_not_string", {"network": "a", "ip": 10}, 'has a non-string "ip" value: number 10'),
    ("ip_keyword_case", {"network": "a", "ip": "Dynamic"}, 'has invalid "ip":"Dynamic"'),
    ("ip_without_prefix", {"network": "a", "ip": "10.0.0.5"}, 'has invalid "ip":"10.0.0.5"'),
    (
        "ip_netmask",
        {"network": "a", "ip": "10.0.0.5/255.255.255.0"},
        'has invalid "ip":"10.0.0.5/255.255.255.0"',
    ),
    ("ip_bad_prefix", {"network": "a", "ip": "10.0.0.5/33"}, 'has invalid "ip":"10.0.0.5/33"'),
    (
        "ip_is_v6",
        {"network": "a", "ip": "2001:db8::5/64"},
        'has invalid "ip":"2001:db8::5/64": expected "dynamic", "none" or an IPv4 address '
        "in CIDR form",
    ),
    (
        "ip6_is_v4",
        {"network": "a", "ip6": "10.0.0.5/24"},
        'has invalid "ip6":"10.0.0.5/24": expected "dynamic", "none" or an IPv6 address '
        "in CIDR form",
    ),
    ("ip6_zone", {"network": "a", "ip6": "fe80::1%eth0/64"}, 'has invalid "ip6":"fe80::1%eth0/64"'),
    ("ip6_garbage", {"network": "a", "ip6": "auto"}, 'has invalid "ip6":"auto"'),
    (
        "proutes_list",
        {"network": "a", "proutes": ["10.0.0.0/8"]},
        'has invalid "proutes": expected an object mapping IPv4 destination CIDRs to gateway '
        "addresses, got list",
    ),
    (
        "proutes_dst_not_cidr",
        {"network": "a", "proutes": {"10.0.0.1": "10.0.0.254"}},
        'has invalid "proutes" destination "10.0.0.1": expected an IPv4 CIDR',
    ),
    (
        "proutes_dst_v6",
        {"network": "a", "proutes": {"2001:db8::/64": "10.0.0.1"}},
        'has invalid "proutes" destination "2001:db8::/64"',
    ),
    (
        "proutes_gw_v6",
        {"network": "a", "proutes": {"10.0.0.0/8": "2001:db8::1"}},
        'has invalid "proutes" gateway string "2001:db8::1" for destination "10.0.0.0/8": '
        "expected an IPv4 address",
    ),
    (
        "proutes_gw_cidr",
        {"network": "a", "proutes": {"10.0.0.0/8": "10.0.0.1/24"}},
        'has invalid "proutes" gateway string "10.0.0.1/24"',
    ),
    (
        "proutes_gw_number",
        {"network": "a", "proutes": {"10.0.0.0/8": 1}},
        'has invalid "proutes" gateway number 1',
    ),
    (
        "proutes6_dst_v4",
        {"network": "a", "proutes6": {"10.0.0.0/8": "2001:db8::1"}},
        'has invalid "proutes6" destination "10.0.0.0/8": expected an IPv6 CIDR',
    ),
    (
        "proutes6_gw_v4",
        {"network": "a", "proutes6": {"2001:db8::/64": "10.0.0.1"}},
        'has invalid "proutes6" gateway string "10.0.0.1" for destination "2001:db8::/64": '
        "expected an IPv6 address",
    ),
]


@pytest.mark.parametrize(
    ("entry", "reason"), [c[1:] for c in ENTRY_ERRORS], ids=[c[0] for c in ENTRY_ERRORS]
)
def test_entry_errors_name_pod_and_index(entry: Any, reason: str) -> None:
    # NB: the bad entry sits at index 2 so the message must carry the real position.
    annotation = [{"network": "ok"}, {"clusterNetwork": "ok2", "ip": "dynamic"}, entry]
    with pytest.raises(AnnotationError) as caught:
        _parse(annotation)
    error = caught.value
    assert str(error).startswith(
        f"DANM annotation is invalid for Pod: {POD}, because:network connection no.:2 "
    )
    assert reason in str(error)
    assert error.pod == POD
    assert error.index == 2
    assert reason in error.reason


def test_invalid_reference_count_text_matches_original() -> None:
    with pytest.raises(AnnotationError) as caught:
        _parse([{"network": "a", "tenantNetwork": "b"}])
    assert str(caught.value) == (
        f"DANM annotation is invalid for Pod: {POD}, because:network connection no.:0 "
        "contains invalid number of network references:2"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ip", "10.10.0.101/24"),
        ("ip", "10.10.0.0/8"),
        ("ip", "none"),
        ("ip6", "dynamic"),
        ("ip6", "2001:db8::ff/128"),
        ("ip6", "::ffff:10.0.0.1/96"),
    ],
)
def test_valid_ip_requests(key: str, value: str) -> None:
    [connection] = _parse([{"network": "a", key: value}])
    assert getattr(connection, key) == value


def test_policy_routes_accept_host_bits_like_go() -> None:
    [connection] = _parse([{"network": "a", "proutes": {"10.0.0.7/8": "10.0.0.1"}}])
    assert connection.proutes == {"10.0.0.7/8": "10.0.0.1"}


def test_default_connection() -> None:
    connection = default_connection(NetworkKind.CLUSTER_NETWORK)
    assert connection == NetworkConnection(
        kind=NetworkKind.CLUSTER_NETWORK, name="default", ip="dynamic"
    )
    assert default_connection(NetworkKind.DANMNET, "other").name == "other"


def test_serialize_round_trip() -> None:
    connections = [
        NetworkConnection(kind=NetworkKind.DANMNET, name="a"),
        NetworkConnection(
            kind=NetworkKind.TENANT_NETWORK,
            name="b",
            ip="dynamic",
            proutes={"10.0.0.0/8": "10.0.0.1"},
        ),
        NetworkConnection(
            kind=NetworkKind.CLUSTER_NETWORK, name="c", ip6="none", proutes6={"::/0": "2001:db8::1"}
        ),
    ]
    text = serialize_interfaces(connections)
    assert json.loads(text) == [
        {"network": "a"},
        {"tenantNetwork": "b", "ip": "dynamic", "proutes": {"10.0.0.0/8": "10.0.0.1"}},
        {"clusterNetwork": "c", "ip6": "none", "proutes6": {"::/0": "2001:db8::1"}},
    ]
    assert parse_interfaces_json(POD, text) == connections
