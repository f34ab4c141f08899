"""Recording fakes of the three adapters the ``danm`` verbs take (API, kernel, plugin exec).

Each is checked against its protocol by mypy (``_check_*`` at the bottom; the API one is the
shared ``tests.unit.fake_kube``). They record what they were asked and answer what the test set
up, RawExec-style; no MagicMock.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.io.cniexec import PluginExec, PluginFailed, PluginRequest
from common.io.netlink import (
    AddressInfo,
    IPAddress,
    IpFamily,
    IPInterface,
    IPNetwork,
    IpvlanMode,
    LinkInfo,
    LinkNotFound,
    NamespaceNotFound,
    Netlink,
    RouteInfo,
    RouteSpec,
    RuleInfo,
)
from tests.unit import fake_kube


class FakeKube(fake_kube.FakeKube):
    """The shared in-memory API, refusing the verbs the CNI must never use."""

    def __init__(self) -> None:
        super().__init__(
            forbidden={"patch": "the CNI never patches", "watch": "the CNI never watches"}
        )


class FakeNetlink:
    """Links per netns (None = host), recorded operations, optional failures by method name."""

    def __init__(self, host_links: Sequence[str] = ("parent0",)) -> None:
        self.links: dict[str | None, dict[str, list[str]]] = {
            None: {name: [] for name in host_links}
        }
        self.ops: list[tuple[Any, ...]] = []
        self.fail: dict[str, Exception] = {}
        self.gone_netns: set[str] = set()
        self.routes: list[tuple[str, RouteSpec, int]] = []
        self.rules: list[tuple[str, str, int]] = []
        self.sysctls: list[tuple[str | None, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def add_netns(self, netns: str) -> None:
        self.links.setdefault(netns, {"lo": []})

    def _ns(self, netns: str | None, operation: str) -> dict[str, list[str]]:
        if netns is not None and (netns in self.gone_netns or netns not in self.links):
            raise NamespaceNotFound(operation, f"{netns} does not exist")
        return self.links[netns]

    def _record(self, name: str, *args: Any) -> None:
        with self._lock:
            self.ops.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def _link(self, name: str, netns: str | None) -> LinkInfo:
        if name not in self._ns(netns, f"get {name}"):
            raise LinkNotFound(f"look up link {name}", "no such device")
        mac = "02:00:00:00:00:" + f"{len(name):02x}"
        return LinkInfo(
            name=name, index=2, kind="ipvlan", mtu=1500, up=True, oper_state="UP", mac=mac
        )

    def get_link(self, name: str, *, netns: str | None = None) -> LinkInfo:
        return self._link(name, netns)

    def list_links(self, *, netns: str | None = None) -> list[LinkInfo]:
        return [self._link(n, netns) for n in self._ns(netns, "list")]

    def set_link_up(self, name: str, *, netns: str | None = None) -> None:
        self._record("set_link_up", name, netns)
        self._link(name, netns)

    def set_link_down(self, name: str, *, netns: str | None = None) -> None:
        self._record("set_link_down", name, netns)

    def rename_link(self, name: str, new_name: str, *, netns: str | None = None) -> None:
        self._record("rename_link", name, new_name, netns)
        links = self._ns(netns, "rename")
        links[new_name] = links.pop(name)

    def delete_link(self, name: str, *, netns: str | None = None) -> None:
        self._record("delete_link", name, netns)
        links = self._ns(netns, f"delete {name}")
        if name not in links:
            raise LinkNotFound(f"delete link {name}", "no such device")
        del links[name]

    def create_ipvlan(
        self,
        parent: str,
        *,
        mode: IpvlanMode = "l2",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo:
        self._record("create_ipvlan", parent, mode, name, netns)
        links = self._ns(netns, "create")
        if parent not in links:
            raise LinkNotFound(f"create ipvlan on {parent}", "parent device does not exist")
        assert name is not None
        links[name] = []
        return self._link(name, netns)

    def create_macvlan(
        self,
        parent: str,
        *,
        mode: str = "bridge",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo:
        raise AssertionError("not used by the CNI")

    def create_vlan(
        self, name: str, *, parent: str, vlan_id: int, up: bool = True, netns: str | None = None
    ) -> LinkInfo:
        raise AssertionError("not used by the CNI")

    def create_vxlan(
        self,
        name: str,
        *,
        parent: str,
        vni: int,
        local: IPAddress,
        group: IPAddress | None = None,
        port: int = 4789,
        learning: bool = True,
        l2miss: bool = True,
        l3miss: bool = True,
        up: bool = True,
        netns: str | None = None,
    ) -> LinkInfo:
        raise AssertionError("not used by the CNI")

    def move_link(
        self,
        name: str,
        target_netns: str,
        *,
        new_name: str | None = None,
        netns: str | None = None,
    ) -> None:
        self._record("move_link", name, target_netns, new_name, netns)
        source = self._ns(netns, "move")
        target = self._ns(target_netns, "move")
        target[new_name or name] = source.pop(name)

    def add_address(
        self, device: str, address: IPInterface | str, *, netns: str | None = None
    ) -> None:
        self._record("add_address", device, str(address), netns)
        self._ns(netns, "add address")[device].append(str(address))

    def list_addresses(
        self, device: str, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[AddressInfo]:
        links = self._ns(netns, "list addresses")
        if device not in links:
            raise LinkNotFound(f"list addresses of {device}", "no such device")
        return [
            AddressInfo(2, ipaddress.ip_interface(a), "universe", None, 0) for a in links[device]
        ]

    def vxlan_local_address(self, device: str, *, netns: str | None = None) -> IPAddress | None:
        return None

    def write_sysctls(self, settings: Mapping[str, str], *, netns: str | None = None) -> None:
        self._record("write_sysctls", dict(settings), netns)
        self._ns(netns, "sysctl")
        self.sysctls.append((netns, "", dict(settings)))

    def set_interface_sysctls(
        self,
        device: str,
        settings: Mapping[str, str],
        *,
        family: IpFamily = 6,
        netns: str | None = None,
    ) -> None:
        self._record("set_interface_sysctls", device, dict(settings), netns)
        self.sysctls.append((netns, device, dict(settings)))

    def add_routes(
        self,
        routes: Sequence[RouteSpec],
        *,
        device: str,
        table: int = 0,
        netns: str | None = None,
    ) -> None:
        self._record("add_routes", device, table, netns)
        self.routes.extend((device, r, table) for r in routes)

    def list_routes(
        self, *, table: int = 0, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RouteInfo]:
        return []

    def add_rule(
        self,
        source: IPNetwork | IPInterface,
        *,
        table: int,
        priority: int | None = None,
        netns: str | None = None,
    ) -> None:
        self._record("add_rule", str(source), table, netns)
        self.rules.append((str(netns), str(source), table))

    def list_rules(
        self, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RuleInfo]:
        return []

    def announce_ipv4(
        self, device: str, address: ipaddress.IPv4Address, *, netns: str | None = None
    ) -> None:
        self._record("announce_ipv4", device, str(address), netns)


@dataclass
class ExecCall:
    plugin: str
    request: PluginRequest
    config: dict[str, Any]


@dataclass
class FakeExec:
    """Answers ADD like the reference plugins do (one interface, the fakeipam addresses)."""

    calls: list[ExecCall] = field(default_factory=list)
    failures: dict[tuple[str, str], Exception] = field(default_factory=dict)
    answer: Callable[[str, PluginRequest, dict[str, Any]], dict[str, Any] | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(
        self, plugin: str, request: PluginRequest, config: bytes, *, timeout_s: float
    ) -> dict[str, Any] | None:
        import json

        decoded = json.loads(config)
        with self.lock:
            self.calls.append(ExecCall(plugin, request, decoded))
        failure = self.failures.get((plugin, request.command))
        if failure is not None:
            raise failure
        if self.answer is not None:
            return self.answer(plugin, request, decoded)
        if request.command != "ADD":
            return None
        if "prevResult" in decoded:
            # NB: chained plugins (portmap, tuning ...) pass the previous result on.
            return {**decoded["prevResult"], "cniVersion": decoded.get("cniVersion")}
        ips = (decoded.get("ipam") or {}).get("ips") or []
        return {
            "cniVersion": decoded.get("cniVersion", "0.4.0"),
            "interfaces": [
                {"name": request.ifname, "mac": "0a:58:00:00:00:01", "sandbox": request.netns}
            ],
            "ips": [{"address": ip["ipcidr"], "interface": 0} for ip in ips],
        }

    def of(self, command: str) -> list[ExecCall]:
        return [c for c in self.calls if c.request.command == command]


def plugin_failure(plugin: str, command: str, msg: str = "boom") -> PluginFailed:
    return PluginFailed(plugin, command, code=100, msg=msg)


_check_netlink: Netlink = FakeNetlink()
_check_exec: PluginExec = FakeExec()
