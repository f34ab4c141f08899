"""Delegate config translation: generated macvlan/sriov, static conf/conflist, chaining."""

from __future__ import annotations

import json
from typing import Any

import pytest

from danm.delegates import (
    DelegateConfig,
    DelegateConfigError,
    chain_order,
    chain_plugin_config,
    delegate_stdin,
    fakeipam_section,
    macvlan_config,
    missing_static_config,
    passes_prev_result,
    sriov_config,
    static_config,
    static_config_paths,
)

V4, V6 = "192.168.1.65/26", "2001:db8::5/64"
FAKE_V4 = {"type": "fakeipam", "ips": [{"ipcidr": V4, "version": 4}]}


@pytest.mark.parametrize(
    ("ip4", "ip6", "expected"),
    [
        ("", "", None),
        (V4, "", FAKE_V4),
        ("", V6, {"type": "fakeipam", "ips": [{"ipcidr": V6, "version": 6}]}),
        (
            V4,
            V6,
            {
                "type": "fakeipam",
                "ips": [{"ipcidr": V4, "version": 4}, {"ipcidr": V6, "version": 6}],
            },
        ),
    ],
)
def test_fakeipam_section(ip4, ip6, expected):
    assert fakeipam_section(ip4, ip6) == expected


@pytest.mark.parametrize(
    ("ip4", "expected"),
    [
        (
            V4,
            {
                "cniVersion": "0.4.0",
                "name": "macvlan-v4",
                "type": "macvlan",
                "master": "ens1f0",
                "mode": "bridge",
                "ipam": FAKE_V4,
            },
        ),
        (
            "",
            {
                "cniVersion": "0.4.0",
                "name": "macvlan-v4",
                "type": "macvlan",
                "master": "ens1f0",
                "mode": "bridge",
            },
        ),
    ],
)
def test_macvlan_config(ip4, expected):
    delegate = macvlan_config(network_id="macvlan-v4", master="ens1f0", ip4=ip4)
    assert delegate.binary == "macvlan"
    assert delegate.plugin_types == ("macvlan",)
    assert not delegate.is_list
    assert json.loads(delegate.config) == expected
    assert list(json.loads(delegate.config)) == list(expected)  # key order too


def test_macvlan_config_version_override_and_errors():
    config = macvlan_config(network_id="n", master="vx_n", cni_version="1.0.0").json()
    assert config["cniVersion"] == "1.0.0"
    with pytest.raises(DelegateConfigError, match="has no master"):
        macvlan_config(network_id="n", master="")
    with pytest.raises(DelegateConfigError, match="NetworkID ''"):
        macvlan_config(network_id="", master="eth0")


def test_sriov_config_with_addresses():
    delegate = sriov_config(
        network_id="sriov-test", device_id="0000:af:06.0", vlan=500, pf_name="enp175s0f1", ip4=V4
    )
    assert delegate.binary == "sriov"
    assert delegate.json() == {
        "cniVersion": "0.4.0",
        "name": "sriov-test",
        "type": "sriov",
        "deviceID": "0000:af:06.0",
        "master": "enp175s0f1",
        "vlan": 500,
        "l2enable": False,
        "ipam": FAKE_V4,
    }


def test_sriov_config_l2_without_pf_name():
    delegate = sriov_config(network_id="sriov-test", device_id="0000:af:06.0")
    assert delegate.json() == {
        "cniVersion": "0.4.0",
        "name": "sriov-test",
        "type": "sriov",
        "deviceID": "0000:af:06.0",
        "vlan": 0,
        "l2enable": True,
    }
    with pytest.raises(DelegateConfigError, match="needs a device ID"):
        sriov_config(network_id="s", device_id="")


def test_static_config_paths():
    assert static_config_paths("/etc/cni/net.d", "flannel_net") == (
        "/etc/cni/net.d/flannel_net.conf",
        "/etc/cni/net.d/flannel_net.conflist",
    )


@pytest.mark.parametrize("network_id", ["", "..", ".", "../etc/passwd", "a/b", "a\x00"])
def test_network_id_cannot_escape_the_directory(network_id):
    with pytest.raises(DelegateConfigError, match="cannot name a delegate configuration"):
        static_config_paths("/etc/cni/net.d", network_id)


def test_missing_static_config_message():
    error = missing_static_config("example_network", "bridge", "/etc/cni/net.d")
    assert str(error) == (
        "Could not load CNI config file: example_network.conf or example_network.conflist "
        "for plugin:bridge from directory:/etc/cni/net.d"
    )


FLANNEL = (
    b'{"cniVersion": "0.3.0", "name": "cbr0", "type": "flannel",\n'
    b' "delegate": {"isDefaultGateway": true}, "ipam": {"type": "host-local"}}\n'
)


def test_static_conf_without_danm_addresses_is_passed_byte_for_byte():
    delegate = static_config(
        network_type="flannel", network_id="flannel", path="/d/flannel.conf", raw=FLANNEL
    )
    assert delegate == DelegateConfig(("flannel",), FLANNEL, False, "flannel.conf")


def test_static_conf_gets_fakeipam_and_keeps_version_and_key_order():
    delegate = static_config(
        network_type="flannel",
        network_id="flannel",
        path="/d/flannel.conf",
        raw=FLANNEL,
        ip4=V4,
        ip6=V6,
    )
    config = delegate.json()
    assert list(config) == ["cniVersion", "name", "type", "delegate", "ipam"]
    assert config["cniVersion"] == "0.3.0"
    assert config["ipam"] == fakeipam_section(V4, V6)
    assert delegate.binary == "flannel"


def test_static_conf_without_ipam_gets_one():
    raw = b'{"cniVersion":"1.0.0","name":"br","type":"bridge","bridge":"br0"}'
    delegate = static_config(
        network_type="bridge", network_id="br", path="/d/br.conf", raw=raw, ip4=V4
    )
    assert delegate.json()["ipam"] == FAKE_V4


def test_static_binary_is_the_network_type_as_written():
    raw = b'{"cniVersion":"1.0.0","name":"x","type":"something-else"}'
    delegate = static_config(network_type="MyPlugin", network_id="x", path="/d/x.conf", raw=raw)
    assert delegate.binary == "MyPlugin"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "it is not valid JSON"),
        (b"\xff\xfe", "it is not UTF-8 text"),
        (b"[1, 2]", "expected a JSON object, got list"),
    ],
)
def test_static_conf_parse_errors(raw, reason):
    with pytest.raises(DelegateConfigError) as caught:
        static_config(network_type="bridge", network_id="br", path="/d/br.conf", raw=raw)
    message = str(caught.value)
    assert message.startswith("could not parse CNI config file:/d/br.conf for plugin:bridge")
    assert reason in message


CHAIN: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "name": "br-chain",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "br0",
            "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"},
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def test_conflist_without_danm_addresses():
    raw = json.dumps(CHAIN).encode()
    delegate = static_config(network_type="bridge", network_id="br", path="/d/br.conflist", raw=raw)
    assert delegate.is_list
    assert delegate.plugin_types == ("bridge", "portmap")
    assert delegate.source == "br.conflist"
    assert delegate.json() == CHAIN


def test_conflist_ipam_goes_into_the_plugin_that_has_one():
    chain = {**CHAIN, "plugins": [{"type": "tuning"}, *CHAIN["plugins"]]}
    delegate = static_config(
        network_type="bridge",
        network_id="br",
        path="/d/br.conflist",
        raw=json.dumps(chain).encode(),
        ip4=V4,
    )
    plugins = delegate.json()["plugins"]
    assert plugins[0] == {"type": "tuning"}
    assert plugins[1] == {"type": "bridge", "bridge": "br0", "ipam": FAKE_V4}
    assert plugins[2] == CHAIN["plugins"][1]


def test_conflist_without_any_ipam_gets_it_in_the_first_plugin():
    chain = {"cniVersion": "1.0.0", "name": "c", "plugins": [{"type": "ptp"}, {"type": "portmap"}]}
    delegate = static_config(
        network_type="ptp",
        network_id="c",
        path="/d/c.conflist",
        raw=json.dumps(chain).encode(),
        ip6=V6,
    )
    assert delegate.json()["plugins"][0]["ipam"] == fakeipam_section("", V6)
    assert "ipam" not in delegate.json()["plugins"][1]


def test_conflist_with_two_ipam_plugins_is_refused_only_when_danm_allocates():
    chain = {
        "cniVersion": "1.0.0",
        "name": "c",
        "plugins": [
            {"type": "bridge", "ipam": {"type": "host-local"}},
            {"type": "other", "ipam": {"type": "dhcp"}},
        ],
    }
    raw = json.dumps(chain).encode()
    assert static_config(network_type="bridge", network_id="c", path="/d/c.conflist", raw=raw)
    with pytest.raises(
        DelegateConfigError, match=r"plugins\[0\] \(bridge\), plugins\[1\] \(other\)"
    ):
        static_config(network_type="bridge", network_id="c", path="/d/c.conflist", raw=raw, ip4=V4)


@pytest.mark.parametrize(
    ("chain", "text"),
    [
        ({"cniVersion": "1.0.0", "name": "c"}, "has no 'plugins' list"),
        ({"plugins": []}, "has no 'plugins' list"),
        ({"plugins": ["bridge"]}, r"plugins\[0\] is not a JSON object"),
        ({"plugins": [{"type": ""}]}, r"plugins\[0\] has no valid 'type'"),
        ({"plugins": [{"type": "../../bin/sh"}]}, r"plugins\[0\] has no valid 'type'"),
    ],
)
def test_invalid_conflists(chain, text):
    with pytest.raises(DelegateConfigError, match=text):
        static_config(
            network_type="bridge",
            network_id="c",
            path="/d/c.conflist",
            raw=json.dumps(chain).encode(),
        )


def test_chain_plugin_config_injects_name_version_and_prev_result():
    raw = json.dumps(CHAIN).encode()
    first = json.loads(chain_plugin_config(raw, 0))
    assert first == {**CHAIN["plugins"][0], "name": "br-chain", "cniVersion": "1.0.0"}
    prev = {"cniVersion": "1.0.0", "ips": [{"address": V4}]}
    second = json.loads(chain_plugin_config(raw, 1, prev))
    assert second == {
        **CHAIN["plugins"][1],
        "name": "br-chain",
        "cniVersion": "1.0.0",
        "prevResult": prev,
    }
    with pytest.raises(DelegateConfigError, match="no plugin number 2"):
        chain_plugin_config(raw, 2)


def test_chain_plugin_config_uses_cni_versions_when_there_is_no_cni_version():
    chain = {"cniVersions": ["0.4.0", "1.0.0", "9.9.9"], "name": "x", "plugins": [{"type": "a"}]}
    assert json.loads(chain_plugin_config(json.dumps(chain).encode(), 0))["cniVersion"] == "1.0.0"


def test_chain_order():
    delegate = DelegateConfig(("a", "b", "c"), b"{}", True)
    assert list(chain_order(delegate, "ADD")) == [0, 1, 2]
    assert list(chain_order(delegate, "CHECK")) == [0, 1, 2]
    assert list(chain_order(delegate, "DEL")) == [2, 1, 0]


@pytest.mark.parametrize(
    ("version", "passes"),
    [("0.3.0", False), ("0.3.1", False), ("0.4.0", True), ("1.0.0", True), ("1.1.0", True)],
)
def test_prev_result_goes_to_delegates_of_cni_0_4_0_and_later(version: str, passes: bool) -> None:
    plain = DelegateConfig(("macvlan",), json.dumps({"cniVersion": version}).encode())
    chain = {"cniVersion": version, "name": "c", "plugins": [{"type": "bridge"}]}
    listed = DelegateConfig(("bridge",), json.dumps(chain).encode(), True)
    assert passes_prev_result(plain) is passes
    assert passes_prev_result(listed) is passes


def test_a_delegate_without_a_readable_version_gets_no_prev_result() -> None:
    assert passes_prev_result(DelegateConfig(("x",), b'{"cniVersion": "banana"}')) is False


def test_delegate_stdin_of_a_plain_conf() -> None:
    raw = b'{"cniVersion":"1.0.0", "type":"macvlan"}'
    delegate = DelegateConfig(("macvlan",), raw)
    assert delegate_stdin(delegate, 0) == raw  # byte for byte when nothing is added
    prev = {"cniVersion": "1.0.0", "ips": [{"address": V4}]}
    assert json.loads(delegate_stdin(delegate, 0, prev)) == {
        "cniVersion": "1.0.0",
        "type": "macvlan",
        "prevResult": prev,
    }


def test_delegate_stdin_of_a_chain_gives_every_plugin_the_prev_result() -> None:
    delegate = DelegateConfig(("bridge", "portmap"), json.dumps(CHAIN).encode(), True)
    prev = {"cniVersion": "1.0.0", "ips": [{"address": V4}]}
    for index in (0, 1):
        assert json.loads(delegate_stdin(delegate, index, prev))["prevResult"] == prev
