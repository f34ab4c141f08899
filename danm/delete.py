"""CNI DEL, and the teardown machinery that ADD's rollback and GC share with it.

DEL must be repeatable, must succeed when the netns or the Pod is already gone, and must not be
held hostage by the API server (danm#165/#166: a DEL that needed a cluster-wide DanmEp list
leaked interfaces and addresses whenever the API hiccuped). So it works from the node record ADD
wrote *before* creating anything (``danm.state``, stored by :class:`NodeStore`):

1. take the container's lock (ADD/DEL/CHECK/GC of one container never overlap);
2. load the record; without one (a pre-record ADD, or a lost state dir) rebuild the same
   information from the container's DanmEps (matched by CID, and by Pod UID when known);
3. undo every pending step, attachments in parallel, each attachment's steps in order
   (link or delegate DEL → give the addresses back → delete the DanmEp), ticking each step off
   in the record as soon as it succeeded, so nothing is ever done twice (an address freed twice
   could already belong to another Pod, whereabouts#207);
4. remove the record once nothing is left.

Outcome rules: a step that fails because the API is unreachable (or refuses) leaves the record
with that step pending and DEL still succeeds: the interface is gone, and the next DEL or the GC
verb finishes the job. A step that fails *locally* (a delegate's DEL failed or timed out, a link
could not be deleted) fails DEL with code 11 so that the runtime retries it, because only the
node can undo that. "Not there any more" (no netns, no link, no network object, no DanmEp) counts
as done.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common.cni.types import CniError, ErrorCode, parse_cni_args
from common.io import statefile
from common.io.cniexec import PluginExec, PluginExecError, PluginNotFound, PluginRequest
from common.io.kube import KubeApi, KubeError, NotFound, is_retryable, update_with_retry
from common.io.netlink import LinkNotFound, NamespaceNotFound, Netlink, NetlinkFailure
from common.ipam.network_ipam import releasing
from common.model import DanmEp, ModelError, NetworkKind
from common.model.resources import CLUSTERNETWORKS, DANMEPS, DANMNETS, TENANTNETWORKS, Resource
from danm.delegates import chain_order, delegate_stdin, passes_prev_result
from danm.plan import Backend, classify_network_type
from danm.state import (
    RECORD_SUFFIX,
    AttachmentRecord,
    NodeRecord,
    Phase,
    StateRecordError,
    TeardownAction,
    TeardownStep,
    decode_record,
    encode_record,
    is_finished,
    mark_done,
    pending_teardown,
    record_file_name,
)

log = logging.getLogger("danm")

#: CNI_ARGS keys DANM reads (kubelet always adds IgnoreUnknown=1).
KNOWN_CNI_ARGS = frozenset(
    {"IgnoreUnknown", "IP", "K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID"}
    | {"K8S_POD_UID"}
)
LOCK_SUFFIX = ".lock"
#: How long a verb waits for another verb holding the same container's lock.
LOCK_WAIT_S = 30.0
#: Attempts of one API write in teardown when the error is retryable (5xx, 429, unreachable).
API_ATTEMPTS = 3
API_RETRY_PAUSE_S = 0.2


# --------------------------------------------------------------------------------------------
# Small shared pieces


def network_resource(kind: NetworkKind) -> Resource:
    """The REST resource of a network kind."""
    return {
        NetworkKind.DANMNET: DANMNETS,
        NetworkKind.TENANT_NETWORK: TENANTNETWORKS,
        NetworkKind.CLUSTER_NETWORK: CLUSTERNETWORKS,
    }[NetworkKind(kind)]


@dataclass(frozen=True, slots=True)
class PodArgs:
    """The Pod identity kubelet passes in ``CNI_ARGS``."""

    name: str = ""
    namespace: str = ""
    infra_container_id: str = ""
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, raw: str, *, strict: bool) -> PodArgs:
        """From ``CNI_ARGS``; ``strict`` refuses unknown keys without ``IgnoreUnknown``."""
        pairs = parse_cni_args(raw, KNOWN_CNI_ARGS if strict else None)
        return cls(
            name=pairs.get("K8S_POD_NAME", ""),
            namespace=pairs.get("K8S_POD_NAMESPACE", ""),
            infra_container_id=pairs.get("K8S_POD_INFRA_CONTAINER_ID", ""),
            uid=pairs.get("K8S_POD_UID", ""),
        )

    @classmethod
    def parse_lenient(cls, raw: str) -> PodArgs:
        """As :meth:`parse`, but malformed args give an empty identity (DEL must not fail)."""
        try:
            return cls.parse(raw, strict=False)
        except CniError as error:
            log.warning("ignoring malformed CNI_ARGS %r: %s", raw, error)
            return cls()


class Deadline:
    """One absolute point in time shared by every step of a verb."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.total_s = seconds
        self.at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


# --------------------------------------------------------------------------------------------
# Node records on disk


class NodeStore:
    """The node records of one state directory: load, save, list, remove, and lock."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def load(self, container_id: str) -> NodeRecord | None:
        name = record_file_name(container_id)
        raw = statefile.read(self.directory, name)
        if raw is None:
            return None
        return decode_record(
            raw, source=os.path.join(self.directory, name), container_id=container_id
        )

    def save(self, record: NodeRecord) -> None:
        statefile.write_atomic(
            self.directory, record_file_name(record.container_id), encode_record(record)
        )

    def remove(self, container_id: str) -> None:
        statefile.remove(self.directory, record_file_name(container_id))

    def container_ids(self) -> list[str]:
        return [
            name.removesuffix(RECORD_SUFFIX)
            for name in statefile.list_names(self.directory, RECORD_SUFFIX)
        ]

    @contextlib.contextmanager
    def locked(self, container_id: str, *, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        """Hold the container's lock (an ``flock`` on ``<stateDir>/<id>.lock``)."""
        record_file_name(container_id)  # NB: validates the id before it names a file
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, container_id + LOCK_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            give_up = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= give_up:
                        raise CniError(
                            ErrorCode.TRY_AGAIN_LATER,
                            f"another DANM operation on container {container_id} is still "
                            f"running after {wait_s:g} s",
                            f"lock file {path}",
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)

    def forget_lock(self, container_id: str) -> None:
        """Remove the lock file of a container that has no record any more."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.directory, container_id + LOCK_SUFFIX))


class RecordKeeper:
    """The current record of one container, saved after every change; thread-safe."""

    def __init__(self, store: NodeStore, record: NodeRecord) -> None:
        self.store = store
        self._record = record
        self._lock = threading.Lock()

    @property
    def record(self) -> NodeRecord:
        with self._lock:
            return self._record

    def update(self, change: Callable[[NodeRecord], NodeRecord]) -> NodeRecord:
        with self._lock:
            self._record = change(self._record)
            self.store.save(self._record)
            return self._record


# --------------------------------------------------------------------------------------------
# Teardown


@dataclass(frozen=True, slots=True)
class TeardownContext:
    """What teardown needs besides the record: adapters, the CNI environment, the deadline."""

    api: KubeApi | None
    netlink: Netlink
    exec_: PluginExec
    cni_path: tuple[str, ...]
    deadline: Deadline
    netns: str = ""
    """The Pod netns to work in (CNI_NETNS of the call); empty = gone, skip netns steps."""
    cni_args: str = ""


@dataclass(slots=True)
class TeardownOutcome:
    """What could not be undone: ``local`` problems fail DEL, ``deferred`` ones wait for GC."""

    local: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.local and not self.deferred

    def extend(self, other: TeardownOutcome) -> None:
        self.local.extend(other.local)
        self.deferred.extend(other.deferred)


class _Deferred(Exception):
    """A step that must wait (API unreachable or refusing); DEL may still succeed."""


def _retrying(what: str, action: Callable[[], Any], deadline: Deadline) -> Any:
    for attempt in range(1, API_ATTEMPTS + 1):
        try:
            return action()
        except KubeError as error:
            if not is_retryable(error) or attempt == API_ATTEMPTS or deadline.expired():
                raise
            log.info("%s: retrying after %s", what, error)
            time.sleep(min(API_RETRY_PAUSE_S * attempt, deadline.remaining()))
    raise AssertionError("unreachable")


def _remove_link(action: TeardownAction, record: NodeRecord, ctx: TeardownContext) -> None:
    # NB: never the record's netns: an empty CNI_NETNS means the namespace is gone, and a
    # /proc/<pid>/ns/net path may by now name another process's namespace.
    netns = ctx.netns
    ifname = action.attachment.ifname
    if not netns:
        return
    try:
        ctx.netlink.delete_link(ifname, netns=netns)
    except (LinkNotFound, NamespaceNotFound):
        log.info("link %s in %s is already gone", ifname, netns)


def _delegate_del(action: TeardownAction, record: NodeRecord, ctx: TeardownContext) -> None:
    attachment = action.attachment
    delegate = attachment.delegate
    if delegate is None:
        return
    request = PluginRequest(
        command="DEL",
        container_id=record.container_id,
        netns=ctx.netns,
        ifname=attachment.ifname,
        args=ctx.cni_args,
        path=ctx.cni_path,
    )
    config = delegate.to_delegate_config()
    # NB: libcni hands DEL the cached ADD result (CNI >= 0.4.0); some plugins release what they
    # made only from it. Without a recorded result (ADD never finished), DEL goes without.
    prev_result = delegate.result if passes_prev_result(config) else None
    for index in chain_order(config, "DEL"):
        stdin = delegate_stdin(config, index, prev_result)
        ctx.exec_.run(delegate.plugin_types[index], request, stdin, timeout_s=_time(ctx))


def _time(ctx: TeardownContext) -> float:
    return max(ctx.deadline.remaining(), 0.1)


def _release_ips(action: TeardownAction, record: NodeRecord, ctx: TeardownContext) -> None:
    attachment = action.attachment
    if ctx.api is None:
        raise _Deferred("the API server is not configured or not reachable")
    api = ctx.api
    resource = network_resource(attachment.network_kind)
    namespace = attachment.network_namespace or None
    mutate = releasing(attachment.network_kind.value, attachment.ip4, attachment.ip6)
    try:
        _retrying(
            f"release {attachment.ip4 or ''} {attachment.ip6 or ''}",
            lambda: update_with_retry(
                api,
                resource,
                namespace,
                attachment.network_name,
                mutate,
                deadline_s=_time(ctx),
            ),
            ctx.deadline,
        )
    except NotFound:
        log.info(
            "network %s %s is gone; its addresses went with it",
            attachment.network_kind.value,
            attachment.network_name,
        )


def _delete_danmep(action: TeardownAction, record: NodeRecord, ctx: TeardownContext) -> None:
    if ctx.api is None:
        raise _Deferred("the API server is not configured or not reachable")
    api = ctx.api
    name = action.attachment.danmep
    try:
        _retrying(
            f"delete DanmEp {name}",
            lambda: api.delete(DANMEPS, record.pod_namespace, name),
            ctx.deadline,
        )
    except NotFound:
        pass


_STEP_ACTIONS: dict[TeardownStep, Callable[[TeardownAction, NodeRecord, TeardownContext], None]] = {
    TeardownStep.LINK: _remove_link,
    TeardownStep.DELEGATE: _delegate_del,
    TeardownStep.IPS: _release_ips,
    TeardownStep.DANMEP: _delete_danmep,
}


def _describe(attachment: AttachmentRecord) -> str:
    return (
        f"connection no.:{attachment.index} ({attachment.ifname}) of network "
        f"{attachment.network_kind.value}:{attachment.network_name}"
    )


def _tick(record: NodeRecord, *, index: int, step: TeardownStep) -> NodeRecord:
    return mark_done(record, index, step)


def _teardown_attachment(
    keeper: RecordKeeper, actions: Sequence[TeardownAction], ctx: TeardownContext
) -> TeardownOutcome:
    outcome = TeardownOutcome()
    for action in actions:
        what = f"{action.step.value} of {_describe(action.attachment)}"
        try:
            _STEP_ACTIONS[action.step](action, keeper.record, ctx)
        except _Deferred as error:
            outcome.deferred.append(f"{what}: {error}")
            break
        except KubeError as error:
            outcome.deferred.append(f"{what}: {error}")
            break
        except PluginNotFound as error:
            # NB: the binary is gone: retrying DEL cannot help, GC can once it is back.
            outcome.deferred.append(f"{what}: {error}")
            break
        except (PluginExecError, NetlinkFailure) as error:
            outcome.local.append(f"{what}: {error}")
            break
        keeper.update(functools.partial(_tick, index=action.index, step=action.step))
        log.info("teardown: %s done", what)
    return outcome


def teardown(keeper: RecordKeeper, ctx: TeardownContext) -> TeardownOutcome:
    """Undo every pending step of the record (see the module docstring); never raises for a
    failed step, it reports it. The record file is removed when nothing is left."""
    by_attachment: dict[int, list[TeardownAction]] = {}
    for action in pending_teardown(keeper.record):
        by_attachment.setdefault(action.index, []).append(action)
    outcome = TeardownOutcome()
    groups = list(by_attachment.values())
    if len(groups) == 1:
        outcome.extend(_teardown_attachment(keeper, groups[0], ctx))
    elif groups:
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            for part in pool.map(lambda g: _teardown_attachment(keeper, g, ctx), groups):
                outcome.extend(part)
    if is_finished(keeper.record):
        keeper.store.remove(keeper.record.container_id)
    return outcome


# --------------------------------------------------------------------------------------------
# Fallback: a record rebuilt from DanmEps


def _ep_attachment(index: int, ep: DanmEp) -> AttachmentRecord:
    backend, _ = classify_network_type(ep.spec.network_type)
    kind = ep.network_kind
    namespace = "" if kind is NetworkKind.CLUSTER_NETWORK else ep.namespace
    return AttachmentRecord(
        index=index,
        ifname=ep.interface.name,
        network_kind=kind,
        network_name=ep.spec.network_name,
        network_namespace=namespace,
        network_type=ep.spec.network_type,
        backend=backend,
        # NB: release_for ignores addresses outside the network's ranges, so an address a
        # delegate's own IPAM chose is never "freed" in DANM's bit arrays.
        danm_ipam=True,
        ip4=ep.interface.address,
        ip6=ep.interface.address_ipv6,
        danmep=ep.name,
        device_id=ep.interface.device_id,
        phase=Phase.CREATED,
    )


def record_from_danmeps(
    api: KubeApi,
    *,
    container_id: str,
    pod: PodArgs,
    netns: str,
    ifname: str,
    rebuild_delegate: Callable[[AttachmentRecord], AttachmentRecord] | None = None,
) -> NodeRecord | None:
    """A record for a container ADDed without one, from its DanmEps (None if it has none).

    DanmEps are matched by ``CID`` (and by ``PodUID`` when kubelet passed one): never by Pod
    name, which a new Pod of a StatefulSet reuses (whereabouts#176). ``rebuild_delegate`` fills
    in the delegate config for delegated networks, which the DanmEp does not carry.
    """
    listing = api.list(DANMEPS, pod.namespace or None)
    eps: list[DanmEp] = []
    for item in listing.get("items") or []:
        try:
            ep = DanmEp.from_dict(item)
        except ModelError as error:
            log.warning("skipping unreadable DanmEp: %s", error)
            continue
        if ep.spec.cid != container_id:
            continue
        if pod.uid and ep.spec.pod_uid and ep.spec.pod_uid != pod.uid:
            continue
        eps.append(ep)
    if not eps:
        return None
    eps.sort(key=lambda e: e.interface.name)
    attachments = []
    for index, ep in enumerate(eps):
        attachment = _ep_attachment(index, ep)
        if attachment.backend is not Backend.BUILTIN_IPVLAN and rebuild_delegate is not None:
            attachment = rebuild_delegate(attachment)
        attachments.append(attachment)
    first = eps[0]
    return NodeRecord(
        container_id=container_id,
        pod_uid=first.spec.pod_uid,
        pod_name=first.spec.pod,
        pod_namespace=first.namespace,
        netns=netns or first.spec.netns,
        ifname=ifname,
        attachments=tuple(attachments),
    )


# --------------------------------------------------------------------------------------------
# The verb


@dataclass(frozen=True, slots=True)
class DelRequest:
    container_id: str
    netns: str
    ifname: str
    cni_args: str
    cni_path: tuple[str, ...]


def cmd_del(
    request: DelRequest,
    *,
    api: KubeApi | None,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
    timeout_s: float,
    rebuild_delegate: Callable[[AttachmentRecord], AttachmentRecord] | None = None,
    api_problem: str = "",
) -> TeardownOutcome:
    """CNI DEL for one container; raises ``CniError`` only for local failures (see module doc).

    ``api`` may be None when no client could be built (``api_problem`` says why); DEL then
    does everything the node can do alone and leaves the rest in the record.
    """
    pod = PodArgs.parse_lenient(request.cni_args)
    deadline = Deadline(timeout_s)
    ctx = TeardownContext(
        api=api,
        netlink=netlink,
        exec_=exec_,
        cni_path=request.cni_path,
        deadline=deadline,
        netns=request.netns,
        cni_args=request.cni_args,
    )
    with store.locked(request.container_id):
        try:
            record = store.load(request.container_id)
        except StateRecordError as error:
            # NB: a damaged record must not wedge the Pod's teardown; DanmEps still say a lot.
            log.error("DEL %s: %s; falling back to DanmEps", request.container_id, error)
            record = None
        if record is None:
            record = _fallback_record(request, pod, api, rebuild_delegate, api_problem)
            if record is None:
                store.forget_lock(request.container_id)
                return TeardownOutcome()
            store.save(record)
        outcome = teardown(RecordKeeper(store, record), ctx)
        if outcome.complete:
            store.forget_lock(request.container_id)
    for problem in outcome.deferred:
        log.warning("DEL %s (Pod %s): deferred: %s", request.container_id, pod.ref, problem)
    if outcome.local:
        raise CniError(
            ErrorCode.TRY_AGAIN_LATER,
            f"DANM could not tear down every interface of container {request.container_id} "
            f"(Pod {record.pod_namespace}/{record.pod_name})",
            "; ".join(outcome.local + outcome.deferred),
        )
    return outcome


def _fallback_record(
    request: DelRequest,
    pod: PodArgs,
    api: KubeApi | None,
    rebuild_delegate: Callable[[AttachmentRecord], AttachmentRecord] | None,
    api_problem: str,
) -> NodeRecord | None:
    if api is None:
        log.warning(
            "DEL %s: no node record and no API client (%s): nothing to tear down",
            request.container_id,
            api_problem or "not configured",
        )
        return None
    try:
        return record_from_danmeps(
            api,
            container_id=request.container_id,
            pod=pod,
            netns=request.netns,
            ifname=request.ifname,
            rebuild_delegate=rebuild_delegate,
        )
    except KubeError as error:
        # NB: no record means ADD never got as far as creating anything, or DEL already ran;
        # only pre-record DanmEps could be missed, which GC's DanmEp sweep also finds.
        log.warning(
            "DEL %s: no node record and the DanmEp lookup failed (%s): nothing to tear down",
            request.container_id,
            error,
        )
        return None


def summary(outcome: TeardownOutcome) -> Mapping[str, Sequence[str]]:
    """For logs and tests: the problems by class."""
    return {"local": tuple(outcome.local), "deferred": tuple(outcome.deferred)}
