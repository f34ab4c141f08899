"""The ``danm`` CNI network configuration (the JSON the runtime puts on stdin), read and checked.

Keys of the original (danm-behaviour.md §3.2) plus the ones this implementation needs:

=========================  ===============================================  ==================
key                        default                                          meaning
=========================  ===============================================  ==================
``kubeconfig``             ``""`` (in-cluster config)                       API credentials
``cniDir``                 env ``CNI_CONF_DIR``, else ``/etc/cni/net.d``   static delegate confs
``namingScheme``           ``""``                                           ``legacy`` or not
``delegateTimeoutSeconds`` ``30``                                           one ADD deadline
``stateDir``               ``/var/lib/danm``                                node-local records
``checkpointFile``         kubelet's ``kubelet_internal_checkpoint``        device-plugin IDs
``podResourcesSocket``     kubelet's ``pod-resources/kubelet.sock``         device-plugin IDs
=========================  ===============================================  ==================

``podResourcesSocket`` and ``checkpointFile`` say where the SR-IOV device IDs a Pod was given
come from. When the socket exists, the kubelet Pod Resources API (``Get``, else ``List``) is the
source; when it does not exist or the call fails (one 2 s deadline covers connect and call),
the checkpoint file is read instead, as the original did. ``""`` switches the API off.
Kubelets still write the checkpoint, but the API is the supported interface since Kubernetes
1.21 and the original moved to it in v4.3.0 (danm-behaviour.md §12), hence it goes first.

``cniDir``: the original read only the key although its README promised the ``CNI_CONF_DIR``
environment variable (§13.25). Both are honoured now: the key wins when present, then a
non-empty ``CNI_CONF_DIR``, then the default; our ``integration/cni_config/README.md`` says so.

``delegateTimeoutSeconds`` bounds the whole parallel provisioning of one ADD (every delegate,
the built-in IPVLAN, and the IPAM writes with their conflict retries). The seed waited about
30 s while its message said "3000 seconds" and its README "10 seconds" (§13.1). We keep 30 s
and make it configurable: 10 s is too short for DANM IPAM under contention (every interface is a
read-modify-write of one network object, and dozens of Pods starting at once on one network
retry on 409s), while the callers' own deadlines are far longer: kubelet's
``--runtime-request-timeout`` defaults to 2 minutes for RunPodSandbox, and CRI-O allows 5 minutes
for network setup. 30 s leaves ample room inside those for the rollback that follows a timeout.
Values above :data:`MAX_DELEGATE_TIMEOUT_S` are refused because the runtime would have given up
on the Pod long before.

Every other key (``name``, ``type``, ``cniVersion``, runtime-injected ``prevResult``,
``runtimeConfig``, ``*_comment`` ...) is left alone; version negotiation is ``common.cni``'s job.
Paths must be absolute: a CNI plugin's working directory is whatever the runtime had. Every error
is a ``CniError`` with code 7 (invalid network config) naming the offending key, or code 4 when
the bad value came from ``CNI_CONF_DIR``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from common.cni.types import CniError, ErrorCode
from common.model.constants import DEFAULT_CNI_DIR

CNI_CONF_DIR_ENV: Final = "CNI_CONF_DIR"
DEFAULT_DELEGATE_TIMEOUT_S: Final = 30.0
MAX_DELEGATE_TIMEOUT_S: Final = 600.0
DEFAULT_STATE_DIR: Final = "/var/lib/danm"
DEFAULT_CHECKPOINT_FILE: Final = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
# NB: the same path as common.io.podresources.DEFAULT_SOCKET, not imported: only an SR-IOV ADD
# needs that module, and every verb parses this config.
DEFAULT_POD_RESOURCES_SOCKET: Final = "/var/lib/kubelet/pod-resources/kubelet.sock"

KEY_KUBECONFIG: Final = "kubeconfig"
KEY_CNI_DIR: Final = "cniDir"
KEY_NAMING_SCHEME: Final = "namingScheme"
KEY_DELEGATE_TIMEOUT: Final = "delegateTimeoutSeconds"
KEY_STATE_DIR: Final = "stateDir"
KEY_CHECKPOINT_FILE: Final = "checkpointFile"
KEY_POD_RESOURCES_SOCKET: Final = "podResourcesSocket"


@dataclass(frozen=True, slots=True)
class DanmConfig:
    """The DANM-specific part of the stdin config, defaults applied."""

    name: str = ""
    kubeconfig: str = ""
    cni_dir: str = DEFAULT_CNI_DIR
    naming_scheme: str = ""
    delegate_timeout_s: float = DEFAULT_DELEGATE_TIMEOUT_S
    state_dir: str = DEFAULT_STATE_DIR
    checkpoint_file: str = DEFAULT_CHECKPOINT_FILE
    pod_resources_socket: str = DEFAULT_POD_RESOURCES_SOCKET


def _invalid(key: str, reason: str, value: Any) -> CniError:
    return CniError(
        ErrorCode.INVALID_NETWORK_CONFIG,
        f"invalid danm network configuration: key {key!r} {reason}",
        f"got {value!r}",
    )


def _string(config: Mapping[str, Any], key: str, default: str) -> str:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(key, "must be a string", value)
    return value


def _absolute_path(config: Mapping[str, Any], key: str, default: str, *, optional: bool) -> str:
    value = _string(config, key, default)
    if not value:
        if optional:
            return ""
        raise _invalid(key, "must not be empty; leave the key out to use the default", value)
    if not value.startswith("/"):
        raise _invalid(
            key,
            "must be an absolute path: a CNI plugin runs in whatever directory the runtime has",
            value,
        )
    if "\x00" in value:
        raise _invalid(key, "must not contain a NUL character", value)
    return value


def _timeout(config: Mapping[str, Any]) -> float:
    value = config.get(KEY_DELEGATE_TIMEOUT)
    if value is None:
        return DEFAULT_DELEGATE_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(KEY_DELEGATE_TIMEOUT, "must be a number of seconds", value)
    if not math.isfinite(value) or not 0 < value <= MAX_DELEGATE_TIMEOUT_S:
        raise _invalid(
            KEY_DELEGATE_TIMEOUT,
            f"must be more than 0 and at most {MAX_DELEGATE_TIMEOUT_S:g} seconds",
            value,
        )
    return float(value)


def _cni_dir(config: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    if config.get(KEY_CNI_DIR) is not None:
        return _absolute_path(config, KEY_CNI_DIR, DEFAULT_CNI_DIR, optional=False)
    from_env = environ.get(CNI_CONF_DIR_ENV, "")
    if not from_env:
        return DEFAULT_CNI_DIR
    if not from_env.startswith("/") or "\x00" in from_env:
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
            f"invalid {CNI_CONF_DIR_ENV} environment variable: it must be an absolute path "
            f"(it is used because the danm network configuration has no {KEY_CNI_DIR!r} key)",
            f"got {from_env!r}",
        )
    return from_env


def parse_config(config: Mapping[str, Any], environ: Mapping[str, str]) -> DanmConfig:
    """Read the DANM keys of the decoded stdin ``config``; ``environ`` supplies CNI_CONF_DIR."""
    if not isinstance(config, Mapping):
        raise CniError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            "invalid danm network configuration: expected a JSON object",
            f"got {type(config).__name__}",
        )
    return DanmConfig(
        name=_string(config, "name", ""),
        kubeconfig=_absolute_path(config, KEY_KUBECONFIG, "", optional=True),
        cni_dir=_cni_dir(config, environ),
        naming_scheme=_string(config, KEY_NAMING_SCHEME, ""),
        delegate_timeout_s=_timeout(config),
        state_dir=_absolute_path(config, KEY_STATE_DIR, DEFAULT_STATE_DIR, optional=False),
        checkpoint_file=_absolute_path(
            config, KEY_CHECKPOINT_FILE, DEFAULT_CHECKPOINT_FILE, optional=False
        ),
        pod_resources_socket=_absolute_path(
            config, KEY_POD_RESOURCES_SOCKET, DEFAULT_POD_RESOURCES_SOCKET, optional=True
        ),
    )
