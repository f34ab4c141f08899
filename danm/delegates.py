"""The exact configuration bytes DANM hands to a delegate CNI plugin, built from plain data.

Three sources (danm-behaviour.md §4):

* ``macvlan`` (§4.4) and ``sriov`` (§4.3): generated from the network object;
* any other type (a *static* delegate): the admin's file ``<cniDir>/<NetworkID>.conf`` or, new
  here, ``<cniDir>/<NetworkID>.conflist``, read by the caller and passed in as bytes.

When DANM's IPAM reserved an address for the interface, the delegate's ``ipam`` becomes
``{"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.5/24", "version": 4}, ...]}`` (IPv4 first), so
the delegate configures exactly DANM's choice. Otherwise the delegate keeps its own ``ipam``.

Fixes and decisions:

* the generated macvlan config carries ``"type": "macvlan"`` (the seed omitted it, §13.23) and
  no ``mtu``: the reference plugin refuses an MTU above its master's and the seed's fixed 1500
  therefore broke every macvlan on a VxLAN parent (MTU 1450); leaving it out lets the kernel
  inherit the master's MTU. Mode stays ``bridge``. With no DANM address the generated configs
  have *no* ``ipam`` key, rather than the seed's ``{"type": ""}``; the reference macvlan and
  sriov-cni both treat a missing/empty type as "L2 only";
* generated configs use :data:`DYNAMIC_DELEGATE_CNI_VERSION` (0.4.0, not the seed's 0.3.1):
  understood by every macvlan and sriov-cni release of the last years (Debian's plugins 1.1.1
  speak 0.1.0-1.0.0), and new enough for CHECK and for ``prevResult`` on DEL;
* a static config keeps its own ``cniVersion`` (our fakeipam answers in any version, §13.24) and
  its key order; only ``ipam`` is replaced;
* conflists (chaining, e.g. ``bridge`` + ``portmap``, a long-standing DANM request): DANM's
  addresses go into the ``ipam`` of the first plugin in the chain that has one, since that is the
  plugin that creates and addresses the interface while the chained ones (portmap, tuning,
  bandwidth...) have none. A conflist in which *several* plugins have an ``ipam`` section is
  refused when DANM allocated an address: feeding the same address to two IPAM users, or letting
  a second one allocate on DANM's range, would both be wrong. With no ``ipam`` anywhere it goes
  into the first plugin, as with a single ``.conf``. :func:`chain_plugin_config` then builds the
  per-plugin stdin the way libcni does (``name``/``cniVersion`` injected, ``prevResult`` added);
* ``.conf`` is looked for first (the seed's file), then ``.conflist``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from common.cni.types import CniError
from common.cni.version import CHECK_MIN_VERSION, requested_version, version_at_least

FAKEIPAM_TYPE: Final = "fakeipam"
DYNAMIC_DELEGATE_CNI_VERSION: Final = "0.4.0"
MACVLAN_MODE: Final = "bridge"
CONF_SUFFIX: Final = ".conf"
CONFLIST_SUFFIX: Final = ".conflist"


class DelegateConfigError(ValueError):
    """A delegate configuration cannot be built (missing/unparsable file, bad input)."""


@dataclass(frozen=True, slots=True)
class DelegateConfig:
    """What to run: the binaries of the chain (one for a plain conf) and the exact bytes.

    ``config`` is a single plugin config when ``is_list`` is false (run ``plugin_types[0]``
    with it as stdin) or a whole conflist when true (run each plugin with
    :func:`chain_plugin_config`). ``source`` is the file name it came from, or ``""``.
    """

    plugin_types: tuple[str, ...]
    config: bytes
    is_list: bool = False
    source: str = ""

    @property
    def binary(self) -> str:
        """The first (for a plain conf: the only) binary to run."""
        return self.plugin_types[0]

    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.config)
        return decoded


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def fakeipam_section(ip4: str, ip6: str) -> dict[str, Any] | None:
    """The ``ipam`` object passing DANM's addresses to fakeipam; None when there are none."""
    ips = [
        {"ipcidr": address, "version": version}
        for address, version in ((ip4, 4), (ip6, 6))
        if address
    ]
    if not ips:
        return None
    return {"type": FAKEIPAM_TYPE, "ips": ips}


def _check_network_id(network_id: str) -> None:
    # NB: NetworkID becomes a file name under cniDir; never let it climb out of that directory.
    if not network_id or "/" in network_id or "\x00" in network_id or network_id in (".", ".."):
        raise DelegateConfigError(
            f"NetworkID {network_id!r} cannot name a delegate configuration: it must be a "
            "non-empty name without '/'"
        )


def macvlan_config(
    *,
    network_id: str,
    master: str,
    ip4: str = "",
    ip6: str = "",
    cni_version: str = DYNAMIC_DELEGATE_CNI_VERSION,
) -> DelegateConfig:
    """The reference ``macvlan`` plugin's config for a DANM network (§4.4, fixed)."""
    _check_network_id(network_id)
    if not master:
        raise DelegateConfigError(f"macvlan network {network_id} has no master device")
    config: dict[str, Any] = {
        "cniVersion": cni_version,
        "name": network_id,
        "type": "macvlan",
        "master": master,
        "mode": MACVLAN_MODE,
    }
    ipam = fakeipam_section(ip4, ip6)
    if ipam is not None:
        config["ipam"] = ipam
    return DelegateConfig(plugin_types=("macvlan",), config=_dumps(config))


def sriov_config(
    *,
    network_id: str,
    device_id: str,
    vlan: int = 0,
    pf_name: str = "",
    ip4: str = "",
    ip6: str = "",
    cni_version: str = DYNAMIC_DELEGATE_CNI_VERSION,
) -> DelegateConfig:
    """The ``sriov`` plugin's config for one VF (§4.3).

    ``pf_name`` (the VF's physical function, found under ``/sys`` by the caller) becomes
    ``master`` for old sriov-cni releases; current ones derive it from ``deviceID`` themselves,
    so an empty ``pf_name`` leaves the key out. ``l2enable`` is kept for the old releases too.
    """
    _check_network_id(network_id)
    if not device_id:
        raise DelegateConfigError(f"sriov network {network_id} needs a device ID")
    ipam = fakeipam_section(ip4, ip6)
    config: dict[str, Any] = {
        "cniVersion": cni_version,
        "name": network_id,
        "type": "sriov",
        "deviceID": device_id,
    }
    if pf_name:
        config["master"] = pf_name
    config["vlan"] = vlan
    config["l2enable"] = ipam is None
    if ipam is not None:
        config["ipam"] = ipam
    return DelegateConfig(plugin_types=("sriov",), config=_dumps(config))


def static_config_paths(cni_dir: str, network_id: str) -> tuple[str, str]:
    """The files to try, in order: ``<cniDir>/<NetworkID>.conf`` then ``.conflist``."""
    _check_network_id(network_id)
    return (
        posixpath.join(cni_dir, network_id + CONF_SUFFIX),
        posixpath.join(cni_dir, network_id + CONFLIST_SUFFIX),
    )


def missing_static_config(network_id: str, network_type: str, cni_dir: str) -> DelegateConfigError:
    """The error for a static delegate whose config file exists under neither name (§4.2.1)."""
    return DelegateConfigError(
        f"Could not load CNI config file: {network_id}{CONF_SUFFIX} or "
        f"{network_id}{CONFLIST_SUFFIX} for plugin:{network_type} from directory:{cni_dir}"
    )


def _decode_object(raw: bytes, path: str, network_type: str) -> dict[str, Any]:
    def fail(reason: str) -> DelegateConfigError:
        return DelegateConfigError(
            f"could not parse CNI config file:{path} for plugin:{network_type}, because:{reason}"
        )

    try:
        decoded = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise fail(f"it is not UTF-8 text ({error})") from None
    except json.JSONDecodeError as error:
        raise fail(f"it is not valid JSON ({error})") from None
    if not isinstance(decoded, dict):
        raise fail(f"expected a JSON object, got {type(decoded).__name__}")
    return decoded


def _conflist_plugins(
    decoded: Mapping[str, Any], path: str, network_type: str
) -> list[dict[str, Any]]:
    plugins = decoded.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise DelegateConfigError(
            f"CNI config list file:{path} for plugin:{network_type} has no 'plugins' list"
        )
    for position, plugin in enumerate(plugins):
        if not isinstance(plugin, dict):
            raise DelegateConfigError(
                f"CNI config list file:{path}: plugins[{position}] is not a JSON object"
            )
        kind = plugin.get("type")
        if not isinstance(kind, str) or not kind or "/" in kind:
            raise DelegateConfigError(
                f"CNI config list file:{path}: plugins[{position}] has no valid 'type' "
                f"(the plugin binary name), got {kind!r}"
            )
    return plugins


def static_config(
    *,
    network_type: str,
    network_id: str,
    path: str,
    raw: bytes,
    ip4: str = "",
    ip6: str = "",
) -> DelegateConfig:
    """The delegate config of a static network from its file's ``raw`` bytes (§4.2.1).

    ``path`` is the file that was read; a name ending in ``.conflist`` is a chain. Without DANM
    addresses a plain conf is passed on byte for byte; a conflist is always re-checked.
    """
    _check_network_id(network_id)
    if not network_type:
        raise DelegateConfigError(f"static delegate of NetworkID {network_id} has no type")
    name = posixpath.basename(path)
    ipam = fakeipam_section(ip4, ip6)
    decoded = _decode_object(raw, path, network_type)
    if not path.endswith(CONFLIST_SUFFIX):
        if ipam is None:
            return DelegateConfig(plugin_types=(network_type,), config=raw, source=name)
        return DelegateConfig(
            plugin_types=(network_type,), config=_dumps({**decoded, "ipam": ipam}), source=name
        )
    plugins = _conflist_plugins(decoded, path, network_type)
    types = tuple(str(plugin["type"]) for plugin in plugins)
    if ipam is not None:
        with_ipam = [i for i, plugin in enumerate(plugins) if plugin.get("ipam") is not None]
        if len(with_ipam) > 1:
            listed = ", ".join(f"plugins[{i}] ({types[i]})" for i in with_ipam)
            raise DelegateConfigError(
                f"CNI config list file:{path} for plugin:{network_type} has more than one "
                f"plugin with an 'ipam' section ({listed}), so DANM cannot tell which one "
                "should get the address it allocated; keep 'ipam' in one plugin only"
            )
        target = with_ipam[0] if with_ipam else 0
        plugins = [
            {**plugin, "ipam": ipam} if i == target else plugin for i, plugin in enumerate(plugins)
        ]
        decoded = {**decoded, "plugins": plugins}
    return DelegateConfig(plugin_types=types, config=_dumps(decoded), is_list=True, source=name)


def chain_plugin_config(
    conflist: bytes, index: int, prev_result: Mapping[str, Any] | None = None
) -> bytes:
    """Stdin for plugin ``index`` of a conflist, as libcni builds it.

    The list's ``name`` and ``cniVersion`` are injected into the plugin's own config and
    ``prevResult`` is added when given (ADD: the previous plugin's result, none for the first;
    DEL/CHECK with version >= 0.4.0: the cached result of the whole chain). DEL runs the plugins
    in reverse order; that is the caller's loop.
    """
    decoded = json.loads(conflist)
    plugins = decoded.get("plugins") if isinstance(decoded, dict) else None
    if not isinstance(plugins, list) or not 0 <= index < len(plugins):
        raise DelegateConfigError(f"conflist has no plugin number {index}")
    plugin = dict(plugins[index])
    plugin["name"] = decoded.get("name", "")
    plugin["cniVersion"] = requested_version(decoded)
    if prev_result is not None:
        plugin["prevResult"] = dict(prev_result)
    return _dumps(plugin)


def passes_prev_result(delegate: DelegateConfig) -> bool:
    """Whether DEL and CHECK hand this delegate its cached ADD result as ``prevResult``.

    CNI 0.4.0 introduced ``prevResult`` on DEL and the CHECK verb; older configs get neither,
    as libcni does, since a 0.3.x plugin may refuse a key its version does not know.
    """
    try:
        return version_at_least(requested_version(delegate.json()), CHECK_MIN_VERSION)
    except (CniError, ValueError, TypeError):
        return False


def delegate_stdin(
    delegate: DelegateConfig, index: int, prev_result: Mapping[str, Any] | None = None
) -> bytes:
    """Stdin for plugin ``index`` of ``delegate`` (0 for a plain conf) with ``prevResult``.

    A plain conf's recorded bytes are used as they are when there is no ``prev_result``, so
    that DEL runs the delegate with exactly what ADD ran it with.
    """
    if delegate.is_list:
        return chain_plugin_config(delegate.config, index, prev_result)
    if prev_result is None:
        return delegate.config
    return _dumps({**delegate.json(), "prevResult": dict(prev_result)})


def chain_order(delegate: DelegateConfig, command: str) -> Sequence[int]:
    """The plugin indices to run for ``command``: reverse order for DEL, as libcni does."""
    indices = range(len(delegate.plugin_types))
    return list(reversed(indices)) if command == "DEL" else list(indices)
