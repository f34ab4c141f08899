"""CNI CHECK: is what ADD reported still there?

CRI-O calls CHECK right after every ADD (for configs of version 0.4.0 and later), so it must be
real but cheap. It verifies, from the ``prevResult`` the runtime passes (or, without one, the
result stored in the node record):

* every interface of the result that lives in the sandbox exists in the Pod's netns and carries
  the addresses the result gave it;
* every address DANM's IPAM reserved for the container is still marked as taken in its
  network's bit array (a reservation freed behind the Pod's back is a duplicate-IP in waiting);
* every DanmEp of the container still exists;
* every delegate (CNI 0.4.0 or later) passes its own CHECK, given the result its ADD returned
  (recorded on the node) as ``prevResult``, as a runtime would call a plugin it ran itself.

One ``CniError`` lists every problem found.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.cni.types import CniError, ErrorCode, Result
from common.io.cniexec import PluginExec, PluginExecError, PluginRequest
from common.io.kube import KubeApi, KubeError, NotFound
from common.io.netlink import LinkNotFound, NamespaceNotFound, Netlink, NetlinkFailure
from common.ipam.errors import AddressInUse, IpamError
from common.ipam.network_ipam import reserve_for
from common.model import ModelError, NetworkKind, network_from_dict
from common.model.resources import DANMEPS
from danm.delegates import chain_order, delegate_stdin, passes_prev_result
from danm.delete import NodeStore, network_resource
from danm.state import AttachmentRecord, NodeRecord


@dataclass(frozen=True, slots=True)
class CheckRequest:
    container_id: str
    netns: str
    prev_result: Mapping[str, Any] | None = None
    cni_path: tuple[str, ...] = ()
    cni_args: str = ""
    timeout_s: float = 10.0


def _interface_problems(result: Result, netns: str, netlink: Netlink) -> list[str]:
    problems: list[str] = []
    for position, interface in enumerate(result.interfaces):
        if not interface.sandbox:
            continue
        expected = {
            ipaddress.ip_interface(ip.address) for ip in result.ips if ip.interface == position
        }
        try:
            found = netlink.list_addresses(interface.name, netns=netns)
        except LinkNotFound:
            problems.append(f"interface {interface.name} is missing in {netns}")
            continue
        except NamespaceNotFound:
            return [f"the network namespace {netns} does not exist"]
        except NetlinkFailure as error:
            problems.append(f"interface {interface.name}: {error}")
            continue
        present = {info.interface for info in found}
        for missing in sorted(expected - present, key=str):
            problems.append(f"interface {interface.name} lacks address {missing}")
    return problems


def _still_reserved(network_json: Mapping[str, Any], kind: NetworkKind, address: str) -> bool:
    """Whether ``address`` is marked as taken (asking to reserve it again must fail)."""
    network = network_from_dict(dict(network_json), kind=kind.value)
    is_v6 = ":" in address
    try:
        reserve_for(network, "" if is_v6 else address, address if is_v6 else "")
    except AddressInUse:
        return True
    except IpamError:
        # NB: not an address DANM tracks in this network (outside its ranges): nothing to check.
        return True
    return False


def _reservation_problems(attachment: AttachmentRecord, api: KubeApi) -> list[str]:
    addresses = [a for a in (attachment.ip4, attachment.ip6) if a]
    if not addresses:
        return []
    where = f"network {attachment.network_kind.value}:{attachment.network_name}"
    try:
        raw = api.get(
            network_resource(attachment.network_kind),
            attachment.network_namespace or None,
            attachment.network_name,
        )
    except NotFound:
        return [f"{where} of {attachment.ifname} no longer exists"]
    except KubeError as error:
        return [f"cannot read {where}: {error}"]
    problems = []
    for address in addresses:
        try:
            reserved = _still_reserved(raw, attachment.network_kind, address)
        except ModelError as error:
            return [f"{where} is malformed: {error}"]
        if not reserved:
            problems.append(
                f"address {address} of {attachment.ifname} is no longer reserved in {where}"
            )
    return problems


def _danmep_problems(record: NodeRecord, attachment: AttachmentRecord, api: KubeApi) -> list[str]:
    if not attachment.danmep:
        return []
    try:
        api.get(DANMEPS, record.pod_namespace, attachment.danmep)
    except NotFound:
        return [f"DanmEp {attachment.danmep} of {attachment.ifname} no longer exists"]
    except KubeError as error:
        return [f"cannot read DanmEp {attachment.danmep}: {error}"]
    return []


def _delegate_problems(
    request: CheckRequest, record: NodeRecord, attachment: AttachmentRecord, exec_: PluginExec
) -> list[str]:
    recorded = attachment.delegate
    if recorded is None or recorded.result is None:
        # NB: no recorded ADD result (a record from before results were kept, or one rebuilt
        # from DanmEps): CHECK without prevResult is an error for every reference plugin.
        return []
    delegate = recorded.to_delegate_config()
    if not passes_prev_result(delegate):
        return []
    plugin_request = PluginRequest(
        command="CHECK",
        container_id=record.container_id,
        netns=request.netns or record.netns,
        ifname=attachment.ifname,
        args=request.cni_args,
        path=request.cni_path,
    )
    for index in chain_order(delegate, "CHECK"):
        plugin = delegate.plugin_types[index]
        try:
            exec_.run(
                plugin,
                plugin_request,
                delegate_stdin(delegate, index, recorded.result),
                timeout_s=request.timeout_s,
            )
        except PluginExecError as error:
            return [f"delegate {plugin} of {attachment.ifname} failed its CHECK: {error}"]
    return []


def cmd_check(
    request: CheckRequest,
    *,
    api: KubeApi,
    netlink: Netlink,
    store: NodeStore,
    exec_: PluginExec | None = None,
) -> None:
    """Raise one ``CniError`` naming the Pod and every problem, or return when all is well."""
    with store.locked(request.container_id):
        record = store.load(request.container_id)
    if record is None:
        raise CniError(
            ErrorCode.UNKNOWN_CONTAINER,
            f"DANM has no record of container {request.container_id} on this node",
            "ADD never succeeded here, or DEL already ran",
        )
    source = request.prev_result if request.prev_result is not None else record.result
    if source is None:
        raise CniError(
            ErrorCode.PLUGIN_ERROR,
            f"nothing to check for container {request.container_id}: no prevResult was passed "
            "and ADD has not finished",
        )
    result = Result.from_json(source)
    problems = _interface_problems(result, request.netns or record.netns, netlink)
    for attachment in record.attachments:
        problems.extend(_reservation_problems(attachment, api))
        problems.extend(_danmep_problems(record, attachment, api))
        if exec_ is not None:
            problems.extend(_delegate_problems(request, record, attachment, exec_))
    if problems:
        raise CniError(
            ErrorCode.PLUGIN_ERROR,
            f"CHECK failed for Pod {record.pod_namespace}/{record.pod_name} "
            f"(container {request.container_id})",
            "; ".join(problems),
        )
