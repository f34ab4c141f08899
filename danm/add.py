"""CNI ADD: every network connection of a Pod, provisioned in parallel, all or nothing.

``cmd_add`` receives its adapters (``api``, ``netlink``, ``exec_``, the node ``store``) as
parameters, so unit tests drive it with fakes; ``danm.cni`` builds the real ones. Order of work:

1. Under the container's lock, look at the node record. A record with a stored result and every
   attachment created means this ADD already happened: return that result again (no second
   address, no second DanmEp; the seed duplicated both, §13.6). A partial record (a crashed or
   timed-out earlier ADD) is torn down first.
2. Read the Pod (``K8S_POD_NAMESPACE``/``K8S_POD_NAME`` from ``CNI_ARGS``), parse its
   ``danm.k8s.io/interfaces`` annotation, fetch the networks (or the default network: DanmNet
   ``default``, TenantNetwork ``default``, ClusterNetwork ``default``), and plan every interface
   (``danm.plan``: names, backends, AllowedTenants). Device-pool IDs are chosen up front so no
   ID goes to two interfaces. Any problem here fails ADD before anything is touched.
3. Write the node record (with the DanmEp names chosen now) *before* touching anything, so DEL
   can always undo whatever the next steps manage to do.
4. Reserve the DANM IPAM addresses of every connection: ONE conditional write
   (``update_with_retry``) per network, covering all of the Pod's connections to it in annotation
   order, the networks in parallel under the deadline (``delegateTimeoutSeconds``). Writes of one
   object conflict and back off, so a write per connection would make a multi-interface Pod
   slow. Every reserved address goes into the record in one update before any interface work;
   a failed reservation skips straight to step 6's rollback.
5. Provision every connection in its own thread under the same deadline: the built-in IPVLAN
   or the delegate (dynamic macvlan/sriov config, or the static
   ``<cniDir>/<NetworkID>.conf``/``.conflist`` with ``fakeipam`` when DANM allocated), then
   routes/policy routes/IPv6 sysctls in the Pod, then the DanmEp. Each step is written to the
   record as soon as it is done.
6. Wait for *all* workers (they are bounded by the deadline), so no worker is still creating
   things while we roll back (§13.31). If any failed, undo everything from the record (links,
   delegate ADDs, addresses, DanmEps) and return one error listing every failed connection,
   naming the Pod. Otherwise merge the results in annotation order (``danm.merge``), store the
   merged result in the record and return it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from common.cni.types import CniError, ErrorCode, Interface, IPConfig, Result, Route
from common.cni.version import LATEST_VERSION
from common.io.cniexec import PluginExec, PluginExecError, PluginRequest
from common.io.kube import (
    AlreadyExists,
    KubeApi,
    KubeError,
    KubeUnavailable,
    NotFound,
    update_with_retry,
)
from common.io.netlink import NamespaceNotFound, Netlink, NetlinkFailure
from common.ipam.errors import IpamError
from common.ipam.network_ipam import reserving_many
from common.model import (
    AnnotationError,
    DanmEp,
    DanmEpInterface,
    DanmEpSpec,
    ModelError,
    Network,
    network_from_dict,
    new_metadata,
    parse_interfaces,
)
from common.model.constants import NETWORK_TYPE_MACVLAN, NETWORK_TYPE_SRIOV
from common.model.resources import DANMEPS, PODS
from common.rules.naming import InterfaceNameError, parent_device_name
from danm.delegates import (
    DelegateConfig,
    DelegateConfigError,
    chain_order,
    chain_plugin_config,
    macvlan_config,
    missing_static_config,
    sriov_config,
    static_config,
    static_config_paths,
)
from danm.delete import (
    Deadline,
    NodeStore,
    PodArgs,
    RecordKeeper,
    TeardownContext,
    network_resource,
    teardown,
)
from danm.devices import DeviceError, pools_from_checkpoint, select_devices
from danm.ipvlan import configure_interface, create_ipvlan_interface, ensure_parent
from danm.merge import AttachmentResult, ConnectionFailure, combined_error_message, has_ipv4_on
from danm.merge import merge_results as merge_attachment_results
from danm.plan import (
    Backend,
    NetworkRef,
    PlanError,
    PlannedAttachment,
    PodInfo,
    classify_network_type,
    default_network_candidates,
    plan_attachments,
    required_networks,
)
from danm.state import (
    AttachmentRecord,
    DelegateRecord,
    NodeRecord,
    Phase,
    TeardownStep,
    mark_created,
    mark_done,
    new_record,
    with_attachment,
)

log = logging.getLogger("danm")

#: How long ADD waits past the deadline for workers to return before rolling back anyway.
WORKER_GRACE_S = 5.0
#: The rollback after a failed ADD gets this much time of its own.
ROLLBACK_TIMEOUT_S = 30.0

ReadFile = Callable[[str], bytes | None]
"""Reads a node file; None when it does not exist."""
PfLookup = Callable[[str], str]
"""PCI address of a VF → interface name of its physical function."""
PodResourcesLookup = Callable[[str, str, str, float], Mapping[str, Any] | None]
"""``(socket, namespace, name, timeout_s)`` → the Pod's ``PodResources`` in JSON form from the
kubelet Pod Resources API; None when the kubelet does not list the Pod. Raises
``common.io.podresources.PodResourcesError`` when the API cannot answer."""


@dataclass(frozen=True, slots=True)
class AddRequest:
    """One ADD call: the CNI environment plus the DANM settings that matter for it."""

    container_id: str
    netns: str
    ifname: str
    cni_args: str
    cni_path: tuple[str, ...]
    cni_dir: str
    naming_scheme: str = ""
    timeout_s: float = 30.0
    checkpoint_file: str = ""
    hostname: str = ""
    pod_resources_socket: str = ""


def _query_pod_resources(
    socket_path: str, namespace: str, name: str, timeout_s: float
) -> Mapping[str, Any] | None:
    # NB: imported here: only an ADD with an SR-IOV connection talks to the kubelet.
    from common.io.podresources import find_pod_resources_json

    return find_pod_resources_json(socket_path, namespace, name, timeout_s)


@dataclass(frozen=True, slots=True)
class NodeFiles:
    """Node file readers (real ones in ``danm.cni``, dicts in tests)."""

    read_file: ReadFile
    read_checkpoint: ReadFile
    pf_name: PfLookup
    pod_resources: PodResourcesLookup = _query_pod_resources


def _default_read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _no_pf(device_id: str) -> str:
    return ""


DEFAULT_FILES = NodeFiles(read_file=_default_read, read_checkpoint=_default_read, pf_name=_no_pf)


# --------------------------------------------------------------------------------------------
# Reading the Pod and its networks


def _api_error(what: str, error: KubeError) -> CniError:
    code = (
        ErrorCode.TRY_AGAIN_LATER if isinstance(error, KubeUnavailable) else ErrorCode.PLUGIN_ERROR
    )
    return CniError(code, what, str(error))


def fetch_pod(api: KubeApi, pod: PodArgs) -> PodInfo:
    """The Pod named in CNI_ARGS, as ``PodInfo``."""
    if not pod.name or not pod.namespace:
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
            "CNI_ARGS must name the Pod (K8S_POD_NAMESPACE and K8S_POD_NAME)",
            "kubelet always passes them; a hand-made call must set them too",
        )
    try:
        return PodInfo.from_object(api.get(PODS, pod.namespace, pod.name))
    except NotFound as error:
        raise CniError(
            ErrorCode.PLUGIN_ERROR, f"Pod {pod.ref} does not exist in the API", str(error)
        ) from error
    except KubeError as error:
        raise _api_error(f"cannot read Pod {pod.ref} from the API", error) from error


def get_network(api: KubeApi, ref: NetworkRef) -> Network | None:
    """The network object ``ref`` names, or None when it does not exist."""
    try:
        raw = api.get(network_resource(ref.kind), ref.namespace or None, ref.name)
    except NotFound:
        return None
    except KubeError as error:
        raise _api_error(f"cannot read network {ref} from the API", error) from error
    try:
        return network_from_dict(raw, kind=ref.kind.value)
    except ModelError as error:
        raise CniError(
            ErrorCode.PLUGIN_ERROR, f"network object {ref} is malformed", str(error)
        ) from error


def plan_for_pod(api: KubeApi, pod: PodInfo, naming_scheme: str) -> tuple[PlannedAttachment, ...]:
    """Annotation (or default network) → the checked plan; ``CniError`` listing every problem."""
    try:
        connections = parse_interfaces(pod.name, pod.annotations)
    except AnnotationError as error:
        raise CniError(
            ErrorCode.PLUGIN_ERROR,
            f"DANM annotation of Pod {pod.ref} cannot be parsed",
            str(error),
        ) from error
    networks: dict[NetworkRef, Network | None] = {}
    default: Network | None = None
    if connections:
        for ref in required_networks(pod, connections):
            networks[ref] = get_network(api, ref)
    else:
        for ref in default_network_candidates(pod.namespace):
            default = get_network(api, ref)
            if default is not None:
                break
    try:
        return plan_attachments(
            pod, connections, networks, naming_scheme=naming_scheme, default_network=default
        )
    except PlanError as error:
        raise CniError(ErrorCode.PLUGIN_ERROR, str(error)) from error


def choose_devices(
    planned: Sequence[PlannedAttachment],
    pod: PodInfo,
    checkpoint_file: str,
    files: NodeFiles,
    *,
    pod_resources_socket: str = "",
) -> dict[int, str]:
    """A distinct device-pool ID per SR-IOV connection (empty when there are none).

    The IDs come from the kubelet Pod Resources API at ``pod_resources_socket`` when it answers
    for the Pod, else from the checkpoint file (``danm.config`` explains the order). Every error
    names both sources and what each said.
    """
    requests = [(p.index, p.device_pool) for p in planned if p.device_pool]
    if not requests:
        return {}
    pools, sources = _device_pools(pod, checkpoint_file, pod_resources_socket, files)
    try:
        return select_devices(pools, requests, pod=pod.ref)
    except DeviceError as error:
        raise CniError(
            ErrorCode.PLUGIN_ERROR, f"cannot pick devices for Pod {pod.ref}", f"{error} ({sources})"
        ) from error


def _device_pools(
    pod: PodInfo, checkpoint_file: str, socket_path: str, files: NodeFiles
) -> tuple[dict[str, tuple[str, ...]], str]:
    """The Pod's device IDs per pool, and a note naming the source used and the one not used."""
    from common.io.devices import DeviceReadError
    from common.io.podresources import DEFAULT_TIMEOUT_S, PodResourcesError
    from danm.devices import pools_from_pod_resources

    api_note = "kubelet Pod Resources API: not configured"
    socket_absent = False
    if socket_path:
        try:
            found = files.pod_resources(socket_path, pod.namespace, pod.name, DEFAULT_TIMEOUT_S)
            if found is None:
                api_note = f"kubelet Pod Resources API {socket_path}: does not list the Pod"
            else:
                pools = pools_from_pod_resources(found)
                return pools, (
                    f"device IDs from the kubelet Pod Resources API {socket_path}; "
                    f"kubelet checkpoint {checkpoint_file or '(not configured)'}: not read"
                )
        except PodResourcesError as error:
            api_note, socket_absent = str(error), error.absent
        except DeviceError as error:
            api_note = f"kubelet Pod Resources API {socket_path}: {error}"
        log.log(
            logging.INFO if socket_absent else logging.WARNING,
            "Pod %s: reading device IDs from the checkpoint file instead (%s)",
            pod.ref,
            api_note,
        )
    if not checkpoint_file:
        return {}, f"kubelet checkpoint: not configured; {api_note}"
    try:
        raw = files.read_checkpoint(checkpoint_file)
        if raw is None:
            return {}, f"kubelet checkpoint {checkpoint_file}: does not exist; {api_note}"
        pools = pools_from_checkpoint(raw, pod.uid)
    except (DeviceReadError, DeviceError) as error:
        raise CniError(
            ErrorCode.PLUGIN_ERROR,
            f"cannot pick devices for Pod {pod.ref}",
            f"kubelet checkpoint {checkpoint_file}: {error}; {api_note}",
        ) from error
    return pools, f"device IDs from the kubelet checkpoint {checkpoint_file}; {api_note}"


# --------------------------------------------------------------------------------------------
# Delegates


def build_delegate(
    *,
    network: Network,
    delegate_type: str,
    parent_device: str,
    ip4: str,
    ip6: str,
    device_id: str,
    cni_dir: str,
    files: NodeFiles,
) -> DelegateConfig:
    """The exact config DANM runs a delegate with (``DelegateConfigError`` if it cannot)."""
    network_id = network.network_id
    if delegate_type == NETWORK_TYPE_MACVLAN:
        return macvlan_config(network_id=network_id, master=parent_device, ip4=ip4, ip6=ip6)
    if delegate_type == NETWORK_TYPE_SRIOV:
        try:
            pf = files.pf_name(device_id) if device_id else ""
        except Exception as error:  # NB: only old sriov-cni releases need the PF name
            log.warning("no PF name for device %s: %s", device_id, error)
            pf = ""
        return sriov_config(
            network_id=network_id,
            device_id=device_id,
            vlan=network.options.vlan,
            pf_name=pf,
            ip4=ip4,
            ip6=ip6,
        )
    for path in static_config_paths(cni_dir, network_id):
        raw = files.read_file(path)
        if raw is not None:
            return static_config(
                network_type=delegate_type,
                network_id=network_id,
                path=path,
                raw=raw,
                ip4=ip4,
                ip6=ip6,
            )
    raise missing_static_config(network_id, delegate_type, cni_dir)


def run_delegate(
    exec_: PluginExec,
    delegate: DelegateConfig,
    request: PluginRequest,
    *,
    timeout_s: float,
) -> dict[str, Any] | None:
    """Run a delegate (each plugin of a chain, libcni-style) for ``request.command``."""
    if not delegate.is_list:
        return exec_.run(delegate.binary, request, delegate.config, timeout_s=timeout_s)
    previous: dict[str, Any] | None = None
    for index in chain_order(delegate, request.command):
        stdin = chain_plugin_config(delegate.config, index, previous)
        output = exec_.run(delegate.plugin_types[index], request, stdin, timeout_s=timeout_s)
        if output is not None:
            previous = output
    return previous


def _container_addresses(result: Result, ifname: str) -> tuple[str, str, str]:
    """``(ip4, ip6, mac)`` a delegate reported for the Pod interface ``ifname``."""
    position = next(
        (i for i, iface in enumerate(result.interfaces) if iface.name == ifname and iface.sandbox),
        next((i for i, iface in enumerate(result.interfaces) if iface.name == ifname), None),
    )
    mac = result.interfaces[position].mac if position is not None else ""
    ip4 = ip6 = ""
    for ip in result.ips:
        if ip.interface is not None and ip.interface != position:
            continue
        if ip.family == "4" and not ip4:
            ip4 = ip.address
        elif ip.family == "6" and not ip6:
            ip6 = ip.address
    return ip4, ip6, mac


def _routes(table: Mapping[str, str]) -> list[Route]:
    return [Route(dst=dst, gw=gw) for dst, gw in sorted(table.items())]


# --------------------------------------------------------------------------------------------
# One connection


@dataclass(frozen=True, slots=True)
class _Job:
    planned: PlannedAttachment
    danmep_name: str
    device_id: str
    #: DANM IPAM addresses reserved for this connection before it is provisioned.
    ip4: str = ""
    ip6: str = ""


@dataclass(frozen=True, slots=True)
class _Context:
    request: AddRequest
    pod: PodInfo
    api: KubeApi
    netlink: Netlink
    exec_: PluginExec
    files: NodeFiles
    keeper: RecordKeeper
    deadline: Deadline


class ConnectionError_(Exception):
    """One connection failed; the message is what the combined error shows for it."""


def _danm_requests(planned: PlannedAttachment) -> tuple[str, str]:
    if planned.backend is not Backend.STATIC_DELEGATE:
        return planned.ip_request, planned.ip6_request
    options = planned.network.options
    # NB: a static delegate gets DANM addresses only for families the network has ranges for;
    # its own ipam (kept when DANM allocates nothing) handles the rest.
    return (
        planned.ip_request if options.cidr else "",
        planned.ip6_request if options.net6 else "",
    )


_Reserved = dict[int, tuple[str, str]]
"""Connection index → the ``(ip4, ip6)`` written to its network."""
_Refused = dict[int, str]
"""Connection index → why its reservation failed (the combined error's text for it)."""


def _reserve_network(jobs: Sequence[_Job], ctx: _Context) -> tuple[_Reserved, _Refused]:
    """One write reserving the addresses of ``jobs`` (all on one network, annotation order)."""
    planned = jobs[0].planned
    kind = planned.network.network_kind
    mutate, outcomes = reserving_many(kind.value, [_danm_requests(j.planned) for j in jobs])
    try:
        update_with_retry(
            ctx.api,
            network_resource(kind),
            planned.ref.namespace or None,
            planned.network_name,
            mutate,
            deadline_s=max(ctx.deadline.remaining(), 0.1),
        )
    except IpamError as error:
        # NB: only the requests that failed are this Pod's failures, as with one write each;
        # the others of this network were not written, and the rollback that follows needs
        # nothing from them.
        refused = {
            job.planned.index: f"IP address reservation failed: {outcome.error}"
            for job, outcome in zip(jobs, outcomes, strict=True)
            if outcome.error is not None
        }
        return {}, refused or {
            job.planned.index: f"IP address reservation failed: {error}" for job in jobs
        }
    except KubeError as error:
        return {}, {job.planned.index: f"IP address reservation failed: {error}" for job in jobs}
    reserved = {
        job.planned.index: (outcome.ip4, outcome.ip6)
        for job, outcome in zip(jobs, outcomes, strict=True)
    }
    return reserved, {}


def _reserve_all(jobs: Sequence[_Job], ctx: _Context) -> tuple[list[_Job], list[ConnectionFailure]]:
    """Every connection's DANM IPAM addresses: one write per network, networks in parallel.

    Returns the jobs with their addresses filled in, and the connections whose reservation
    failed. Whatever was reserved is in the node record when this returns, failure or not, so
    the rollback gives it back.
    """
    by_network: dict[NetworkRef, list[_Job]] = {}
    for job in sorted(jobs, key=lambda j: j.planned.index):
        if job.planned.needs_danm_ipam:
            by_network.setdefault(job.planned.ref, []).append(job)
    groups = list(by_network.values())
    reserved: _Reserved = {}
    refused: _Refused = {}
    if len(groups) == 1:
        try:
            got, lost = _reserve_network(groups[0], ctx)
        except Exception as error:  # NB: reported per connection, as a worker's error would be
            log.error("reserving on network %s failed", groups[0][0].planned.ref, exc_info=error)
            got, lost = {}, {j.planned.index: _failure_text(error) for j in groups[0]}
        reserved.update(got)
        refused.update(lost)
    elif groups:
        pool = ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="danm-ipam")
        futures = {pool.submit(_reserve_network, group, ctx): group for group in groups}
        _done, pending = wait(futures, timeout=ctx.deadline.remaining() + WORKER_GRACE_S)
        pool.shutdown(wait=not pending, cancel_futures=True)
        for future, group in futures.items():
            if future in pending:
                late = f"IP address reservation did not finish within {ctx.deadline.total_s:g} s"
                refused.update({j.planned.index: late for j in group})
                continue
            problem = future.exception()
            if problem is not None:
                log.error("reserving on network %s failed", group[0].planned.ref, exc_info=problem)
                refused.update({j.planned.index: _failure_text(problem) for j in group})
                continue
            got, lost = future.result()
            reserved.update(got)
            refused.update(lost)
    written = {index: ips for index, ips in reserved.items() if ips[0] or ips[1]}
    if written:
        ctx.keeper.update(functools.partial(_with_addresses, written=written))
    filled = [
        dataclasses.replace(job, ip4=written[i][0], ip6=written[i][1])
        if (i := job.planned.index) in written
        else job
        for job in jobs
    ]
    failures = [
        ConnectionFailure(
            index=job.planned.index,
            network=job.planned.network_name,
            error=refused[job.planned.index],
            ifname=job.planned.ifname,
        )
        for job in jobs
        if job.planned.index in refused
    ]
    return filled, failures


def _with_addresses(record: NodeRecord, *, written: _Reserved) -> NodeRecord:
    for index, (ip4, ip6) in written.items():
        record = with_attachment(record, index, ip4=ip4, ip6=ip6)
    return record


def _builtin_ipvlan(job: _Job, ctx: _Context, ip4: str, ip6: str) -> tuple[Result, str]:
    planned = job.planned
    ensure_parent(ctx.netlink, parent=planned.parent_device, spec=planned.network.spec)
    link = create_ipvlan_interface(
        ctx.netlink,
        parent=planned.parent_device,
        netns=ctx.request.netns,
        ifname=planned.ifname,
        endpoint_id=job.danmep_name,
        ip4=ip4,
        ip6=ip6,
    )
    mac = link.mac or ""
    result = Result(
        interfaces=(Interface(name=planned.ifname, mac=mac, sandbox=ctx.request.netns),),
        ips=tuple(IPConfig(address=a, interface=0) for a in (ip4, ip6) if a),
    )
    return result, mac


def _delegated(job: _Job, ctx: _Context, ip4: str, ip6: str) -> tuple[Result, str, str, str]:
    planned = job.planned
    if planned.delegate_type == NETWORK_TYPE_MACVLAN:
        ensure_parent(ctx.netlink, parent=planned.parent_device, spec=planned.network.spec)
    try:
        delegate = build_delegate(
            network=planned.network,
            delegate_type=planned.delegate_type,
            parent_device=planned.parent_device,
            ip4=ip4,
            ip6=ip6,
            device_id=job.device_id,
            cni_dir=ctx.request.cni_dir,
            files=ctx.files,
        )
    except DelegateConfigError as error:
        raise ConnectionError_(f"delegate configuration failed: {error}") from error
    ctx.keeper.update(
        lambda r: with_attachment(r, planned.index, delegate=DelegateRecord.of(delegate))
    )
    request = PluginRequest(
        command="ADD",
        container_id=ctx.request.container_id,
        netns=ctx.request.netns,
        ifname=planned.ifname,
        args=ctx.request.cni_args,
        path=ctx.request.cni_path,
    )
    try:
        output = run_delegate(
            ctx.exec_, delegate, request, timeout_s=max(ctx.deadline.remaining(), 0.1)
        )
    except PluginExecError as error:
        _undo_failed_delegate(ctx, planned.index, delegate, request)
        raise ConnectionError_(
            f"CNI delegation failed: Error delegating ADD to CNI plugin:"
            f"{'+'.join(delegate.plugin_types)} because:{error}"
        ) from error
    try:
        result = Result.from_json(output) if output is not None else Result()
    except CniError as error:
        raise ConnectionError_(
            f"the result of delegate {delegate.binary} cannot be read: {error}"
        ) from error
    if output is not None:
        recorded = DelegateRecord.of(delegate, result=output)
        ctx.keeper.update(lambda r: with_attachment(r, planned.index, delegate=recorded))
    reported4, reported6, mac = _container_addresses(result, planned.ifname)
    return result, ip4 or reported4, ip6 or reported6, mac


def _undo_failed_delegate(
    ctx: _Context, index: int, delegate: DelegateConfig, add_request: PluginRequest
) -> None:
    """DEL right after a delegate's own ADD failed, then consider the delegate undone.

    NB: a plugin whose ADD failed may well refuse the DEL for the same reason (the reference
    macvlan looks its master up again and fails when it is missing), and a teardown step that
    can never succeed would keep the record, and the Pod's addresses, forever. Whatever such a
    plugin left half-made lives in the Pod's netns and goes away with it.
    """
    request = dataclasses.replace(add_request, command="DEL")
    try:
        run_delegate(ctx.exec_, delegate, request, timeout_s=max(ctx.deadline.remaining(), 1.0))
    except PluginExecError as error:
        log.warning("DEL after the failed ADD of %s: %s", add_request.ifname, error)
    ctx.keeper.update(lambda r: mark_done(r, index, TeardownStep.DELEGATE))


def _danmep_body(job: _Job, ctx: _Context, ip4: str, ip6: str, mac: str) -> dict[str, Any]:
    planned = job.planned
    pod = ctx.pod
    ep = DanmEp(
        metadata=new_metadata(job.danmep_name, pod.namespace, labels=pod.labels),
        spec=DanmEpSpec(
            network_name=planned.network_name,
            network_type=planned.network_type,
            endpoint_id=job.danmep_name,
            interface=DanmEpInterface(
                name=planned.ifname,
                address=ip4,
                address_ipv6=ip6,
                mac_address=mac,
                proutes=dict(planned.proutes),
                proutes6=dict(planned.proutes6),
                device_id=job.device_id,
            ),
            host=ctx.request.hostname,
            pod=pod.name,
            pod_uid=pod.uid,
            cid=ctx.request.container_id,
            netns=ctx.request.netns,
            api_type=planned.network.network_kind,
        ),
    )
    return ep.to_body()


def provision(job: _Job, ctx: _Context) -> AttachmentResult:
    """Create one connection; raises ``ConnectionError_`` (or an adapter error) on failure."""
    planned = job.planned
    ip4, ip6 = job.ip4, job.ip6
    if planned.backend is Backend.BUILTIN_IPVLAN:
        result, mac = _builtin_ipvlan(job, ctx, ip4, ip6)
    else:
        result, ip4, ip6, mac = _delegated(job, ctx, ip4, ip6)
    options = planned.network.options
    configure_interface(
        ctx.netlink,
        netns=ctx.request.netns,
        ifname=planned.ifname,
        ip4=ip4,
        ip6=ip6,
        routes=options.routes,
        routes6=options.routes6,
        rt_tables=options.rt_tables,
        proutes=planned.proutes,
        proutes6=planned.proutes6,
    )
    extra = [r for r in _routes(options.routes) if ip4] + [
        r for r in _routes(options.routes6) if ip6
    ]
    if extra:
        routes = list(result.routes)
        routes.extend(r for r in extra if r not in routes)
        result = dataclasses.replace(result, routes=tuple(routes))
    try:
        ctx.api.create(DANMEPS, ctx.pod.namespace, _danmep_body(job, ctx, ip4, ip6, mac))
    except AlreadyExists:
        log.info("DanmEp %s already exists (a repeated step); keeping it", job.danmep_name)
    except KubeError as error:
        raise ConnectionError_(f"DanmEp {job.danmep_name} could not be created: {error}") from error
    ctx.keeper.update(lambda r: mark_created(r, planned.index))
    return AttachmentResult(index=planned.index, ifname=planned.ifname, result=result)


def _failure_text(error: BaseException) -> str:
    if isinstance(error, ConnectionError_ | NetlinkFailure | KubeError | PluginExecError):
        return str(error)
    return f"unexpected {type(error).__name__}: {error}"


# --------------------------------------------------------------------------------------------
# The verb


def _replay(existing: NodeRecord) -> Result | None:
    if existing.result is None or not existing.attachments:
        return None
    if any(a.phase is not Phase.CREATED for a in existing.attachments):
        return None
    return Result.from_json(existing.result)


def cmd_add(
    request: AddRequest,
    *,
    api: KubeApi,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
    files: NodeFiles = DEFAULT_FILES,
) -> Result:
    """CNI ADD for one container (see the module docstring); ``CniError`` on any failure."""
    pod_args = PodArgs.parse(request.cni_args, strict=True)
    with store.locked(request.container_id, wait_s=request.timeout_s):
        existing = store.load(request.container_id)
        if existing is not None:
            replayed = _replay(existing)
            if replayed is not None:
                log.info("ADD %s: already done, returning the recorded result", pod_args.ref)
                return replayed
            _clean_partial(existing, request, api, netlink, exec_, store)
        return _add_locked(request, pod_args, api, netlink, exec_, store, files)


def _clean_partial(
    existing: NodeRecord,
    request: AddRequest,
    api: KubeApi,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
) -> None:
    log.info("ADD %s: undoing an unfinished earlier ADD first", request.container_id)
    outcome = teardown(
        RecordKeeper(store, existing),
        TeardownContext(
            api=api,
            netlink=netlink,
            exec_=exec_,
            cni_path=request.cni_path,
            deadline=Deadline(request.timeout_s),
            netns=request.netns,
            cni_args=request.cni_args,
        ),
    )
    if not outcome.complete:
        raise CniError(
            ErrorCode.TRY_AGAIN_LATER,
            f"an earlier, unfinished ADD of container {request.container_id} could not be "
            "undone yet",
            "; ".join(outcome.local + outcome.deferred),
        )


def _add_locked(
    request: AddRequest,
    pod_args: PodArgs,
    api: KubeApi,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
    files: NodeFiles,
) -> Result:
    deadline = Deadline(request.timeout_s)
    pod = fetch_pod(api, pod_args)
    planned = plan_for_pod(api, pod, request.naming_scheme)
    devices = choose_devices(
        planned,
        pod,
        request.checkpoint_file,
        files,
        pod_resources_socket=request.pod_resources_socket,
    )
    jobs = [_Job(p, str(uuid.uuid4()), devices.get(p.index, "")) for p in planned]

    record = new_record(
        container_id=request.container_id,
        pod_uid=pod.uid,
        pod_name=pod.name,
        pod_namespace=pod.namespace,
        netns=request.netns,
        ifname=request.ifname,
        planned=planned,
    )
    for job in jobs:
        record = with_attachment(
            record, job.planned.index, danmep=job.danmep_name, device_id=job.device_id
        )
    keeper = RecordKeeper(store, record)
    store.save(record)

    try:
        netlink.write_sysctls({"net/ipv6/conf/all/disable_ipv6": "0"}, netns=request.netns)
    except NamespaceNotFound as error:
        _discard(keeper)
        raise CniError(
            ErrorCode.PLUGIN_ERROR,
            f"the network namespace of Pod {pod.ref} does not exist",
            str(error),
        ) from error
    except NetlinkFailure as error:
        _discard(keeper)
        raise CniError(
            ErrorCode.PLUGIN_ERROR, f"failed to prepare Pod {pod.ref} for IPv6", str(error)
        ) from error

    ctx = _Context(request, pod, api, netlink, exec_, files, keeper, deadline)
    jobs, failures = _reserve_all(jobs, ctx)
    results: list[AttachmentResult] = []
    if not failures:
        results, failures = _provision_all(jobs, ctx)
    if failures:
        _rollback_and_raise(jobs, failures, ctx)
    merged = merge_attachment_results(results)
    if not has_ipv4_on(merged):
        log.warning(
            "Pod %s has no IPv4 address on eth0; containerd takes the Pod IP from there", pod.ref
        )
    keeper.update(lambda r: dataclasses.replace(r, result=merged.to_json(LATEST_VERSION)))
    log.info("ADD %s for Pod %s: %d interfaces", request.container_id, pod.ref, len(results))
    return merged


def _discard(keeper: RecordKeeper) -> None:
    """Forget a record of which nothing was created yet."""
    keeper.store.remove(keeper.record.container_id)


def _provision_all(
    jobs: Sequence[_Job], ctx: _Context
) -> tuple[list[AttachmentResult], list[ConnectionFailure]]:
    results: list[AttachmentResult] = []
    failures: list[ConnectionFailure] = []
    pool = ThreadPoolExecutor(max_workers=max(len(jobs), 1), thread_name_prefix="danm-add")
    futures: dict[Future[AttachmentResult], _Job] = {
        pool.submit(provision, job, ctx): job for job in jobs
    }
    _done, pending = wait(futures, timeout=ctx.deadline.remaining() + WORKER_GRACE_S)
    # NB: every worker is awaited, even after one failed: rollback must not race running ones.
    pool.shutdown(wait=not pending, cancel_futures=True)
    for future, job in futures.items():
        planned = job.planned
        failure: str | None = None
        if future in pending:
            failure = f"did not finish within {ctx.deadline.total_s:g} s"
        else:
            error = future.exception()
            if error is None:
                results.append(future.result())
            else:
                failure = _failure_text(error)
                if not isinstance(error, ConnectionError_ | NetlinkFailure | KubeError):
                    log.error("connection %d failed", planned.index, exc_info=error)
        if failure is not None:
            failures.append(
                ConnectionFailure(
                    index=planned.index,
                    network=planned.network_name,
                    error=failure,
                    ifname=planned.ifname,
                )
            )
    return results, failures


def _rollback_and_raise(
    jobs: Sequence[_Job], failures: Sequence[ConnectionFailure], ctx: _Context
) -> None:
    message = combined_error_message(ctx.pod.ref, failures, len(jobs))
    log.error("ADD %s failed, rolling back:\n%s", ctx.request.container_id, message)
    outcome = teardown(
        ctx.keeper,
        TeardownContext(
            api=ctx.api,
            netlink=ctx.netlink,
            exec_=ctx.exec_,
            cni_path=ctx.request.cni_path,
            deadline=Deadline(ROLLBACK_TIMEOUT_S),
            netns=ctx.request.netns,
            cni_args=ctx.request.cni_args,
        ),
    )
    if outcome.complete:
        details = "everything this ADD had created was removed again"
    else:
        details = "rollback is incomplete, the node record keeps the rest for DEL/GC: " + "; ".join(
            outcome.local + outcome.deferred
        )
    raise CniError(ErrorCode.PLUGIN_ERROR, message, details)


def rebuild_delegate_for(
    api: KubeApi, cni_dir: str, files: NodeFiles
) -> Callable[[AttachmentRecord], AttachmentRecord]:
    """For DEL without a node record: the delegate config a DanmEp's interface was made with."""

    def rebuild(attachment: AttachmentRecord) -> AttachmentRecord:
        network = get_network(
            api,
            NetworkRef(
                attachment.network_kind, attachment.network_name, attachment.network_namespace
            ),
        )
        if network is None:
            return attachment
        _, delegate_type = classify_network_type(network.network_type)
        options = network.options
        ip4 = attachment.ip4 if options.cidr else ""
        ip6 = attachment.ip6 if options.net6 else ""
        try:
            parent = (
                parent_device_name(network.spec) if delegate_type == NETWORK_TYPE_MACVLAN else ""
            )
            delegate = build_delegate(
                network=network,
                delegate_type=delegate_type,
                parent_device=parent,
                ip4=ip4,
                ip6=ip6,
                device_id=attachment.device_id,
                cni_dir=cni_dir,
                files=files,
            )
        except (DelegateConfigError, InterfaceNameError) as error:
            log.warning("cannot rebuild the delegate of %s: %s", attachment.ifname, error)
            return attachment
        return dataclasses.replace(attachment, delegate=DelegateRecord.of(delegate))

    return rebuild


__all__ = [
    "AddRequest",
    "NodeFiles",
    "build_delegate",
    "cmd_add",
    "fetch_pod",
    "get_network",
    "plan_for_pod",
    "provision",
    "rebuild_delegate_for",
    "run_delegate",
]
