"""CNI results across spec versions, the error object and CNI_ARGS."""

from __future__ import annotations

from typing import Any

import pytest

from common.cni.types import (
    DNS,
    CniError,
    ErrorCode,
    Interface,
    IPConfig,
    Result,
    Route,
    convert_result,
    parse_cni_args,
)

FULL = Result(
    interfaces=(
        Interface(name="eth0", mac="0a:58:0a:00:00:05", sandbox="/var/run/netns/p", mtu=1450),
        Interface(name="vf0", socket_path="/run/vhu.sock", pci_id="0000:af:06.0"),
    ),
    ips=(
        IPConfig(address="10.0.0.5/24", gateway="10.0.0.1", interface=0),
        IPConfig(address="2001:db8::5/64", interface=0),
    ),
    routes=(
        Route(dst="0.0.0.0/0", gw="10.0.0.1"),
        Route(dst="10.1.0.0/16", mtu=1400, advmss=1360, priority=5, table=100, scope=0),
    ),
    dns=DNS(nameservers=("10.0.0.2",), domain="cluster.local", search=("a", "b"), options=("x",)),
)

_INTERFACES_OLD = [
    {"name": "eth0", "mac": "0a:58:0a:00:00:05", "sandbox": "/var/run/netns/p"},
    {"name": "vf0"},
]
_INTERFACES_11 = [
    {"name": "eth0", "mac": "0a:58:0a:00:00:05", "mtu": 1450, "sandbox": "/var/run/netns/p"},
    {"name": "vf0", "socketPath": "/run/vhu.sock", "pciID": "0000:af:06.0"},
]
_IPS_OLD = [
    {"version": "4", "interface": 0, "address": "10.0.0.5/24", "gateway": "10.0.0.1"},
    {"version": "6", "interface": 0, "address": "2001:db8::5/64"},
]
_IPS_1X = [
    {"interface": 0, "address": "10.0.0.5/24", "gateway": "10.0.0.1"},
    {"interface": 0, "address": "2001:db8::5/64"},
]
_ROUTES_OLD = [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}, {"dst": "10.1.0.0/16"}]
_ROUTES_11 = [
    {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
    {"dst": "10.1.0.0/16", "mtu": 1400, "advmss": 1360, "priority": 5, "table": 100, "scope": 0},
]
_DNS = {
    "nameservers": ["10.0.0.2"],
    "domain": "cluster.local",
    "search": ["a", "b"],
    "options": ["x"],
}


@pytest.mark.parametrize(
    ("version", "interfaces", "ips", "routes"),
    [
        ("0.3.0", _INTERFACES_OLD, _IPS_OLD, _ROUTES_OLD),
        ("0.3.1", _INTERFACES_OLD, _IPS_OLD, _ROUTES_OLD),
        ("0.4.0", _INTERFACES_OLD, _IPS_OLD, _ROUTES_OLD),
        ("1.0.0", _INTERFACES_OLD, _IPS_1X, _ROUTES_OLD),
        ("1.1.0", _INTERFACES_11, _IPS_1X, _ROUTES_11),
    ],
)
def test_result_shape_per_version(
    version: str, interfaces: list[Any], ips: list[Any], routes: list[Any]
) -> None:
    assert FULL.to_json(version) == {
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
        "dns": _DNS,
    }


ALL_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


#: What FULL becomes once written in a version older than 1.1.0.
WITHOUT_1_1_FIELDS = Result(
    interfaces=(
        Interface(name="eth0", mac="0a:58:0a:00:00:05", sandbox="/var/run/netns/p"),
        Interface(name="vf0"),
    ),
    ips=FULL.ips,
    routes=(Route(dst="0.0.0.0/0", gw="10.0.0.1"), Route(dst="10.1.0.0/16")),
    dns=FULL.dns,
)


@pytest.mark.parametrize("source", ALL_VERSIONS)
@pytest.mark.parametrize("target", ALL_VERSIONS)
def test_conversion_table(source: str, target: str) -> None:
    """Any supported version in, any out; only 1.1.0-only fields are lost on the way down."""
    parsed = Result.from_json(FULL.to_json(source))
    expected = FULL if source == "1.1.0" else WITHOUT_1_1_FIELDS
    assert parsed == expected
    assert convert_result(FULL.to_json(source), target) == expected.to_json(target)
    assert all(("version" in ip) == target.startswith("0.") for ip in parsed.to_json(target)["ips"])


def test_pre_1_1_fields_survive_a_round_trip_through_older_versions() -> None:
    through_old = Result.from_json(FULL.to_json("0.3.1"))
    assert through_old.ips == FULL.ips
    assert through_old.dns == FULL.dns
    assert through_old.interfaces[0] == Interface(
        name="eth0", mac="0a:58:0a:00:00:05", sandbox="/var/run/netns/p"
    )


def test_legacy_0_2_0_results_are_readable() -> None:
    legacy = {
        "cniVersion": "0.2.0",
        "ip4": {
            "ip": "10.0.0.5/24",
            "gateway": "10.0.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
        },
        "ip6": {"ip": "2001:db8::5/64"},
        "dns": {"nameservers": ["10.0.0.2"]},
    }
    assert convert_result(legacy, "0.3.1") == {
        "cniVersion": "0.3.1",
        "ips": [
            {"version": "4", "address": "10.0.0.5/24", "gateway": "10.0.0.1"},
            {"version": "6", "address": "2001:db8::5/64"},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
        "dns": {"nameservers": ["10.0.0.2"]},
    }


def test_ipam_only_result_is_minimal() -> None:
    assert Result(ips=(IPConfig("10.0.0.5/24"),)).to_json("0.3.1") == {
        "cniVersion": "0.3.1",
        "ips": [{"version": "4", "address": "10.0.0.5/24"}],
    }


def test_cannot_write_legacy_versions() -> None:
    with pytest.raises(CniError) as caught:
        FULL.to_json("0.2.0")
    assert caught.value.code == ErrorCode.INCOMPATIBLE_CNI_VERSION


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ips": [{"address": "10.0.0.300/24"}]}, "invalid CIDR address"),
        ({"ips": [{"address": "10.0.0.3"}]}, "missing prefix length"),
        ({"ips": [{"address": "10.0.0.3/24", "gateway": "nope"}]}, "invalid IP address"),
        ({"ips": [{"version": "6", "address": "10.0.0.3/24"}]}, "declares version '6'"),
        ({"ips": [{"address": "10.0.0.3/24", "interface": 2}]}, "points at interface 2"),
        ({"ips": [{"address": "10.0.0.3/24", "interface": "0"}]}, "must be an integer"),
        ({"ips": {"address": "x"}}, "must be a list of objects"),
        ({"interfaces": [{"name": 5}]}, "must be a string"),
        ({"routes": [{"dst": "10.0.0.0/8", "gw": "x"}]}, "invalid IP address"),
        ({"dns": {"nameservers": "10.0.0.2"}}, "must be a string list"),
        ({"dns": []}, "'dns' must be an object"),
        ({"ip4": "10.0.0.1/24"}, "'ip4' must be an object"),
    ],
)
def test_bad_results_are_decoding_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CniError, match=message) as caught:
        Result.from_json(data)
    assert caught.value.code == ErrorCode.DECODING_FAILURE


def test_error_json_omits_empty_details() -> None:
    assert CniError(ErrorCode.IO_FAILURE, "boom").to_json("1.0.0") == {
        "cniVersion": "1.0.0",
        "code": 5,
        "msg": "boom",
    }
    assert CniError(100, "m", "d").to_json("0.4.0") == {
        "cniVersion": "0.4.0",
        "code": 100,
        "msg": "m",
        "details": "d",
    }


def test_error_codes_match_the_spec() -> None:
    assert {c.name: int(c) for c in ErrorCode} == {
        "INCOMPATIBLE_CNI_VERSION": 1,
        "UNSUPPORTED_FIELD": 2,
        "UNKNOWN_CONTAINER": 3,
        "INVALID_ENVIRONMENT_VARIABLES": 4,
        "IO_FAILURE": 5,
        "DECODING_FAILURE": 6,
        "INVALID_NETWORK_CONFIG": 7,
        "TRY_AGAIN_LATER": 11,
        "PLUGIN_NOT_AVAILABLE": 50,
        "LIMITED_CONNECTIVITY": 51,
        "PLUGIN_ERROR": 100,
        "INTERNAL": 999,
    }


K8S_ARGS = (
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("A=1", {"A": "1"}),
        ("A=1;B=2", {"A": "1", "B": "2"}),
        ("A=;B=x=y", {"A": "", "B": "x=y"}),
        ("A=1;;B=2;", {"A": "1", "B": "2"}),
        (
            K8S_ARGS,
            {
                "IgnoreUnknown": "1",
                "K8S_POD_NAMESPACE": "default",
                "K8S_POD_NAME": "web-0",
                "K8S_POD_INFRA_CONTAINER_ID": "abc",
            },
        ),
    ],
)
def test_parse_cni_args(raw: str, expected: dict[str, str]) -> None:
    assert parse_cni_args(raw) == expected


@pytest.mark.parametrize("raw", ["A", "A=1;B", "=1"])
def test_parse_cni_args_rejects_malformed_pairs(raw: str) -> None:
    with pytest.raises(CniError, match="invalid pair") as caught:
        parse_cni_args(raw)
    assert caught.value.code == ErrorCode.INVALID_ENVIRONMENT_VARIABLES


def test_parse_cni_args_unknown_keys() -> None:
    known = {"K8S_POD_NAMESPACE", "K8S_POD_NAME"}
    assert parse_cni_args(K8S_ARGS, known)["K8S_POD_NAME"] == "web-0"
    assert parse_cni_args("IgnoreUnknown=true;X=1", known) == {"IgnoreUnknown": "true", "X": "1"}
    with pytest.raises(CniError, match=r"unknown keys \['X'\]"):
        parse_cni_args("K8S_POD_NAME=a;X=1", known)
    with pytest.raises(CniError, match="unknown keys"):
        parse_cni_args("IgnoreUnknown=0;X=1", known)
