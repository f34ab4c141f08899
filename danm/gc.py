"""CNI GC: release what belongs to attachments the runtime no longer knows.

The runtime passes every attachment that is still valid (``cni.dev/valid-attachments``, and the
older spelling ``cni.dev/attachments``; libcni sends both). DANM then:

1. tears down every node record whose ``(containerID, ifname)`` is not in that list, from the
   record alone, exactly like DEL (so a DEL that could not free an address, because the API was
   down, is finished here), and every record of a *valid* attachment that still has pending
   steps is left alone;
2. sweeps DanmEps made on this node (``spec.Host``) whose container is neither valid nor
   recorded: their addresses are released and the DanmEps deleted (links and delegates are not
   touched: without a record DANM cannot tell whether the netns path still means that Pod);
3. forwards GC to every delegate config recorded for valid attachments that speaks CNI 1.1.0,
   with those delegates' own valid attachments.

GC continues past every error and reports them all at the end (code 11, so the runtime retries).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from common.cni.types import CniError, ErrorCode
from common.cni.version import GC_MIN_VERSION, requested_version, version_at_least
from common.io.cniexec import PluginExec, PluginExecError, PluginRequest
from common.io.kube import KubeApi, KubeError
from common.io.netlink import Netlink
from common.model.resources import DANMEPS
from danm.delegates import chain_plugin_config
from danm.delete import (
    Deadline,
    NodeStore,
    PodArgs,
    RecordKeeper,
    TeardownContext,
    TeardownOutcome,
    record_from_danmeps,
    teardown,
)
from danm.state import NodeRecord, StateRecordError, TeardownStep, stale_records

log = logging.getLogger("danm")

VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"
LEGACY_ATTACHMENTS_KEY = "cni.dev/attachments"


def valid_attachments(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The GC config's valid attachments (both spellings, merged)."""
    found: list[Mapping[str, Any]] = []
    for key in (VALID_ATTACHMENTS_KEY, LEGACY_ATTACHMENTS_KEY):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise CniError(
                ErrorCode.INVALID_NETWORK_CONFIG,
                f"{key} must be a list of objects with containerID and ifname",
            )
        found.extend(value)
    return found


@dataclass(frozen=True, slots=True)
class GcRequest:
    valid: Sequence[Mapping[str, Any]]
    cni_path: tuple[str, ...]
    hostname: str
    timeout_s: float


def recorded_netns(record: NodeRecord) -> str:
    """The record's netns if it can still be trusted to name the Pod's namespace.

    A runtime-made bind mount (``/var/run/netns/cni-...``) names the Pod's namespace for as long
    as it exists; a ``/proc/<pid>/ns/net`` path may by now belong to an unrelated process.
    """
    if not record.netns or record.netns.startswith("/proc/"):
        return ""
    return record.netns if os.path.exists(record.netns) else ""


def _sweep_records(
    request: GcRequest,
    *,
    api: KubeApi | None,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
) -> tuple[list[NodeRecord], TeardownOutcome]:
    outcome = TeardownOutcome()
    kept: list[NodeRecord] = []
    for container_id in store.container_ids():
        with store.locked(container_id):
            try:
                record = store.load(container_id)
            except StateRecordError as error:
                outcome.local.append(str(error))
                continue
            if record is None:
                continue
            if not stale_records([record], request.valid):
                kept.append(record)
                continue
            log.info("GC: tearing down container %s", container_id)
            ctx = TeardownContext(
                api=api,
                netlink=netlink,
                exec_=exec_,
                cni_path=request.cni_path,
                deadline=Deadline(request.timeout_s),
                netns=recorded_netns(record),
            )
            outcome.extend(teardown(RecordKeeper(store, record), ctx))
            if store.load(container_id) is None:
                store.forget_lock(container_id)
    return kept, outcome


def _sweep_danmeps(
    request: GcRequest, *, api: KubeApi, store: NodeStore, netlink: Netlink, exec_: PluginExec
) -> TeardownOutcome:
    outcome = TeardownOutcome()
    valid_ids = {str(entry.get("containerID")) for entry in request.valid}
    recorded = set(store.container_ids())
    listing = api.list(DANMEPS)
    orphans: dict[tuple[str, str], str] = {}
    for item in listing.get("items") or []:
        spec = item.get("spec") or {}
        cid = str(spec.get("CID") or "")
        if not cid or spec.get("Host") != request.hostname:
            continue
        if cid in valid_ids or cid in recorded:
            continue
        namespace = str((item.get("metadata") or {}).get("namespace") or "")
        orphans[(cid, namespace)] = str(spec.get("PodUID") or "")
    for (cid, namespace), pod_uid in sorted(orphans.items()):
        record = record_from_danmeps(
            api,
            container_id=cid,
            pod=PodArgs(namespace=namespace, uid=pod_uid),
            netns="",
            ifname="",
        )
        if record is None:
            continue
        skip = frozenset({TeardownStep.LINK, TeardownStep.DELEGATE})
        record = replace(
            record, attachments=tuple(replace(a, done=skip) for a in record.attachments)
        )
        log.info("GC: releasing DanmEps of unknown container %s", cid)
        with store.locked(cid):
            store.save(record)
            ctx = TeardownContext(
                api=api,
                netlink=netlink,
                exec_=exec_,
                cni_path=request.cni_path,
                deadline=Deadline(request.timeout_s),
            )
            outcome.extend(teardown(RecordKeeper(store, record), ctx))
    return outcome


def _forward_gc(request: GcRequest, kept: Sequence[NodeRecord], exec_: PluginExec) -> list[str]:
    problems: list[str] = []
    by_config: dict[tuple[tuple[str, ...], bytes, bool], list[dict[str, str]]] = {}
    for record in kept:
        for attachment in record.attachments:
            delegate = attachment.delegate
            if delegate is None:
                continue
            key = (delegate.plugin_types, delegate.config, delegate.is_list)
            by_config.setdefault(key, []).append(
                {"containerID": record.container_id, "ifname": attachment.ifname}
            )
    for (types, config, is_list), attachments in by_config.items():
        decoded = json.loads(config)
        try:
            version = requested_version(decoded)
            if not version_at_least(version, GC_MIN_VERSION):
                continue
        except CniError:
            continue
        stdins: list[tuple[str, bytes]] = []
        if is_list:
            stdins = [(t, chain_plugin_config(config, i)) for i, t in enumerate(types)]
        else:
            stdins = [(types[0], config)]
        for plugin, stdin in stdins:
            body = json.loads(stdin)
            body[VALID_ATTACHMENTS_KEY] = attachments
            body[LEGACY_ATTACHMENTS_KEY] = attachments
            try:
                exec_.run(
                    plugin,
                    PluginRequest(command="GC", path=request.cni_path),
                    json.dumps(body).encode(),
                    timeout_s=request.timeout_s,
                )
            except PluginExecError as error:
                problems.append(f"GC of delegate {plugin}: {error}")
    return problems


def cmd_gc(
    request: GcRequest,
    *,
    api: KubeApi | None,
    netlink: Netlink,
    exec_: PluginExec,
    store: NodeStore,
) -> None:
    """Run every GC step; one ``CniError`` at the end if anything could not be done."""
    kept, outcome = _sweep_records(request, api=api, netlink=netlink, exec_=exec_, store=store)
    problems = outcome.local + outcome.deferred
    if api is not None:
        try:
            swept = _sweep_danmeps(request, api=api, store=store, netlink=netlink, exec_=exec_)
            problems += swept.local + swept.deferred
        except KubeError as error:
            problems.append(f"cannot list DanmEps: {error}")
    else:
        problems.append("no API client: DanmEps of unknown containers were not swept")
    problems += _forward_gc(request, kept, exec_)
    if problems:
        raise CniError(
            ErrorCode.TRY_AGAIN_LATER,
            f"DANM GC could not release everything ({len(problems)} problems)",
            "; ".join(problems),
        )
