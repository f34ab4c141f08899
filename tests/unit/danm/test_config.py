"""The danm CNI config: defaults, CNI_CONF_DIR precedence, and errors naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from common.cni.types import CniError, ErrorCode
from danm.config import DanmConfig, parse_config

BASE: dict[str, Any] = {"cniVersion": "1.0.0", "name": "danm", "type": "danm"}


def test_defaults():
    assert parse_config(BASE, {}) == DanmConfig(
        name="danm",
        kubeconfig="",
        cni_dir="/etc/cni/net.d",
        naming_scheme="",
        delegate_timeout_s=30.0,
        state_dir="/var/lib/danm",
        checkpoint_file="/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
        pod_resources_socket="/var/lib/kubelet/pod-resources/kubelet.sock",
    )


def test_every_key_is_read_and_unknown_keys_are_ignored():
    config = parse_config(
        {
            **BASE,
            "kubeconfig": "/etc/kubernetes/danm.yaml",
            "cniDir": "/opt/cni/conf",
            "namingScheme": "legacy",
            "delegateTimeoutSeconds": 12.5,
            "stateDir": "/run/danm",
            "checkpointFile": "/tmp/cp",
            "podResourcesSocket": "/var/lib/kubelet/pod-resources/kubelet.sock",
            "cniDir_comment": "whatever",
            "prevResult": {"cniVersion": "1.0.0"},
        },
        {"CNI_CONF_DIR": "/ignored"},
    )
    assert config == DanmConfig(
        name="danm",
        kubeconfig="/etc/kubernetes/danm.yaml",
        cni_dir="/opt/cni/conf",
        naming_scheme="legacy",
        delegate_timeout_s=12.5,
        state_dir="/run/danm",
        checkpoint_file="/tmp/cp",
        pod_resources_socket="/var/lib/kubelet/pod-resources/kubelet.sock",
    )


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        ({}, {}, "/etc/cni/net.d"),
        ({}, {"CNI_CONF_DIR": ""}, "/etc/cni/net.d"),
        ({}, {"CNI_CONF_DIR": "/srv/cni"}, "/srv/cni"),
        ({"cniDir": "/from/key"}, {"CNI_CONF_DIR": "/srv/cni"}, "/from/key"),
        ({"cniDir": None}, {"CNI_CONF_DIR": "/srv/cni"}, "/srv/cni"),
    ],
)
def test_cni_dir_precedence(config, environ, expected):
    assert parse_config({**BASE, **config}, environ).cni_dir == expected


@pytest.mark.parametrize("timeout", [1, 30, 0.5, 600])
def test_timeout_accepted(timeout):
    assert parse_config({**BASE, "delegateTimeoutSeconds": timeout}, {}).delegate_timeout_s == (
        float(timeout)
    )


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("kubeconfig", 5, "must be a string"),
        ("kubeconfig", "relative/kubeconfig", "must be an absolute path"),
        ("cniDir", "", "must not be empty"),
        ("cniDir", "net.d", "must be an absolute path"),
        ("cniDir", ["/a"], "must be a string"),
        ("namingScheme", True, "must be a string"),
        ("delegateTimeoutSeconds", "30", "must be a number"),
        ("delegateTimeoutSeconds", True, "must be a number"),
        ("delegateTimeoutSeconds", 0, "more than 0"),
        ("delegateTimeoutSeconds", -1, "more than 0"),
        ("delegateTimeoutSeconds", 601, "at most 600"),
        ("delegateTimeoutSeconds", float("nan"), "more than 0"),
        ("delegateTimeoutSeconds", float("inf"), "more than 0"),
        ("stateDir", "", "must not be empty"),
        ("stateDir", "/var/lib/da\x00nm", "NUL"),
        ("checkpointFile", "checkpoint", "absolute path"),
        ("podResourcesSocket", "kubelet.sock", "absolute path"),
    ],
)
def test_invalid_values_name_the_key(key, value, text):
    with pytest.raises(CniError, match=text) as caught:
        parse_config({**BASE, key: value}, {})
    assert caught.value.code == ErrorCode.INVALID_NETWORK_CONFIG
    assert f"key {key!r}" in caught.value.msg
    assert repr(value) in caught.value.details


@pytest.mark.parametrize("value", ["relative", "/has\x00nul"])
def test_invalid_cni_conf_dir_env_is_an_environment_error(value):
    with pytest.raises(CniError, match="CNI_CONF_DIR") as caught:
        parse_config(BASE, {"CNI_CONF_DIR": value})
    assert caught.value.code == ErrorCode.INVALID_ENVIRONMENT_VARIABLES


def test_config_must_be_an_object():
    with pytest.raises(CniError, match="expected a JSON object") as caught:
        parse_config([], {})  # type: ignore[arg-type]
    assert caught.value.code == ErrorCode.INVALID_NETWORK_CONFIG
