"""The node-local record of one container's DANM interfaces: the format and what DEL derives.

DEL must work when the API server is unreachable, the network object was deleted or the Pod is
gone (danm#165/#166, multus#755: lossy or API-dependent DEL leaks interfaces and addresses). So
ADD writes, *before* it touches anything and again after each step, a small JSON document per
container on the node (``<stateDir>/<containerID>.json``) holding everything DEL needs: for each
attachment the network (kind, name, namespace, type), the backend, the Pod interface name, the
delegate binaries and the *exact* delegate config bytes, the addresses DANM reserved, the DanmEp
name, and the teardown steps already done. DEL and GC then work from this record alone;
:func:`pending_teardown` says what is left to undo, :func:`mark_done` ticks steps off.

This module is the pure half: the data types, :func:`encode_record`/:func:`decode_record` with
strict validation (a corrupt file is reported with its path and the broken field, never a bare
``KeyError``), and the bookkeeping. Reading and atomically writing the file is an adapter's job.

Why the steps are tracked one by one: an address given back to the network may be handed to
another Pod a moment later, so releasing it a second time would free *that* Pod's address
(whereabouts#207). Each step is therefore recorded as done right after it succeeds and never
repeated. Deleting a link, a delegate DEL and deleting a DanmEp by its UUID name are harmless to
repeat, which covers a crash between doing a step and recording it.

Format (``"version": 1``)::

    {"version": 1, "containerID": "...", "podUID": "...", "podName": "...", "podNamespace": "...",
     "netns": "/proc/1234/ns/net", "ifname": "eth0",
     "attachments": [{"index": 0, "ifname": "eth0",
                      "network": {"kind": "ClusterNetwork", "name": "ext", "namespace": "",
                                  "type": "macvlan"},
                      "backend": "dynamic-delegate", "danmIpam": true,
                      "ips": {"ip4": "10.0.0.5/24", "ip6": ""}, "danmEp": "<uuid>",
                      "deviceID": "", "delegate": {"pluginTypes": ["macvlan"], "isList": false,
                                                   "config": "<base64>",
                                                   "result": {...its ADD result...}},
                      "phase": "created", "done": []}],
     "result": {...CNI result of the whole ADD, or absent...}}
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from common.model import NetworkKind
from danm.delegates import DelegateConfig
from danm.plan import Backend, PlannedAttachment

RECORD_VERSION: Final = 1
RECORD_SUFFIX: Final = ".json"
# NB: the CNI spec's container ID rule; it also keeps the ID safe as a file name.
_CONTAINER_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


class Phase(StrEnum):
    """Where an attachment is: recorded before creation, fully created, or fully undone."""

    PLANNED = "planned"
    CREATED = "created"
    RELEASED = "released"


class TeardownStep(StrEnum):
    """One thing DEL undoes, in this order within an attachment."""

    #: delete the built-in IPVLAN link ``ifname`` in the netns
    LINK = "link"
    #: run the delegate's DEL with the recorded config
    DELEGATE = "delegate"
    #: give the recorded addresses back to the network (DANM IPAM)
    IPS = "ips"
    #: delete the DanmEp
    DANMEP = "danmep"


class StateRecordError(ValueError):
    """A node record that cannot be read, or a change that would make it inconsistent."""


@dataclass(frozen=True, slots=True)
class DelegateRecord:
    """The delegate to run on DEL, byte for byte as on ADD, and what its ADD answered.

    ``result`` is the delegate's own ADD result (the last plugin's, for a chain), recorded the
    moment ADD succeeded: DEL and CHECK give it back as ``prevResult``, as a runtime does for a
    plugin it ran itself, and its presence tells that the delegate's ADD went through.
    """

    plugin_types: tuple[str, ...]
    config: bytes
    is_list: bool = False
    result: Mapping[str, Any] | None = None

    @classmethod
    def of(
        cls, delegate: DelegateConfig, *, result: Mapping[str, Any] | None = None
    ) -> DelegateRecord:
        return cls(delegate.plugin_types, delegate.config, delegate.is_list, result)

    def to_delegate_config(self) -> DelegateConfig:
        return DelegateConfig(self.plugin_types, self.config, self.is_list)


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """One Pod interface as recorded on the node."""

    index: int
    ifname: str
    network_kind: NetworkKind
    network_name: str
    network_namespace: str
    network_type: str
    backend: Backend
    danm_ipam: bool
    ip4: str = ""
    ip6: str = ""
    danmep: str = ""
    device_id: str = ""
    delegate: DelegateRecord | None = None
    phase: Phase = Phase.PLANNED
    done: frozenset[TeardownStep] = frozenset()


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """Everything DANM did (or is about to do) for one container."""

    container_id: str
    pod_uid: str
    pod_name: str
    pod_namespace: str
    netns: str
    ifname: str
    attachments: tuple[AttachmentRecord, ...] = ()
    result: Mapping[str, Any] | None = None

    def attachment(self, index: int) -> AttachmentRecord:
        for attachment in self.attachments:
            if attachment.index == index:
                return attachment
        raise StateRecordError(
            f"node record of container {self.container_id} has no attachment number {index}"
        )


def record_file_name(container_id: str) -> str:
    """The record's file name inside ``stateDir``."""
    if not _CONTAINER_ID.match(container_id):
        raise StateRecordError(
            f"container ID {container_id!r} cannot name a node record: only letters, digits, "
            "'_', '.' and '-' are allowed, starting with a letter or digit"
        )
    return container_id + RECORD_SUFFIX


def attachment_record(planned: PlannedAttachment) -> AttachmentRecord:
    """The record of an attachment that is planned but not yet created."""
    return AttachmentRecord(
        index=planned.index,
        ifname=planned.ifname,
        network_kind=planned.network.network_kind,
        network_name=planned.network.name,
        network_namespace=planned.ref.namespace,
        network_type=planned.network_type,
        backend=planned.backend,
        danm_ipam=planned.needs_danm_ipam,
    )


def new_record(
    *,
    container_id: str,
    pod_uid: str,
    pod_name: str,
    pod_namespace: str,
    netns: str,
    ifname: str,
    planned: Sequence[PlannedAttachment],
) -> NodeRecord:
    """The record ADD writes before it creates anything."""
    record_file_name(container_id)
    return NodeRecord(
        container_id=container_id,
        pod_uid=pod_uid,
        pod_name=pod_name,
        pod_namespace=pod_namespace,
        netns=netns,
        ifname=ifname,
        attachments=tuple(attachment_record(p) for p in planned),
    )


def with_attachment(record: NodeRecord, index: int, **changes: Any) -> NodeRecord:
    """``record`` with fields of attachment ``index`` replaced (e.g. ``ip4=``, ``delegate=``)."""
    record.attachment(index)
    attachments = tuple(
        dataclasses.replace(a, **changes) if a.index == index else a for a in record.attachments
    )
    return dataclasses.replace(record, attachments=attachments)


def mark_created(record: NodeRecord, index: int) -> NodeRecord:
    """Attachment ``index`` is fully provisioned."""
    return with_attachment(record, index, phase=Phase.CREATED)


# --------------------------------------------------------------------------------------------
# What DEL still has to do


@dataclass(frozen=True, slots=True)
class TeardownAction:
    """One step of undoing one attachment."""

    step: TeardownStep
    attachment: AttachmentRecord

    @property
    def index(self) -> int:
        return self.attachment.index


def _steps_of(attachment: AttachmentRecord) -> list[TeardownStep]:
    steps: list[TeardownStep] = []
    if attachment.backend is Backend.BUILTIN_IPVLAN:
        steps.append(TeardownStep.LINK)
    elif attachment.delegate is not None:
        # NB: a delegate without a recorded config was never run: configs are recorded first.
        steps.append(TeardownStep.DELEGATE)
    if attachment.ip4 or attachment.ip6:
        steps.append(TeardownStep.IPS)
    if attachment.danmep:
        steps.append(TeardownStep.DANMEP)
    return steps


def pending_teardown(record: NodeRecord) -> tuple[TeardownAction, ...]:
    """Steps DEL must still do, last attachment first, each attachment's steps in order.

    Within an attachment the interface goes first (so nothing uses the address any more), then
    the addresses, then the DanmEp, which is the API-side trace of the other two and therefore
    the last thing to disappear. Steps already in ``done`` are never returned again.
    """
    actions: list[TeardownAction] = []
    for attachment in sorted(record.attachments, key=lambda a: a.index, reverse=True):
        if attachment.phase is Phase.RELEASED:
            continue
        actions.extend(
            TeardownAction(step, attachment)
            for step in _steps_of(attachment)
            if step not in attachment.done
        )
    return tuple(actions)


def mark_done(record: NodeRecord, index: int, step: TeardownStep) -> NodeRecord:
    """Record that ``step`` of attachment ``index`` succeeded; released once all are done."""
    attachment = record.attachment(index)
    done = attachment.done | {step}
    remaining = [s for s in _steps_of(attachment) if s not in done]
    phase = Phase.RELEASED if not remaining else attachment.phase
    return with_attachment(record, index, done=frozenset(done), phase=phase)


def is_finished(record: NodeRecord) -> bool:
    """Whether nothing is left to undo, so the record file can be removed."""
    return not pending_teardown(record)


def stale_records(
    records: Iterable[NodeRecord], valid_attachments: Iterable[Mapping[str, Any]]
) -> list[NodeRecord]:
    """Records GC must tear down: those whose (containerID, ifname) is not in the valid list.

    ``valid_attachments`` is the GC config's ``cni.dev/valid-attachments`` (or the older
    ``cni.dev/attachments``): objects with ``containerID`` and ``ifname``.
    """
    valid = {
        (entry.get("containerID"), entry.get("ifname"))
        for entry in valid_attachments
        if isinstance(entry, Mapping)
    }
    return [r for r in records if (r.container_id, r.ifname) not in valid]


# --------------------------------------------------------------------------------------------
# Encoding


def _attachment_json(attachment: AttachmentRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": attachment.index,
        "ifname": attachment.ifname,
        "network": {
            "kind": attachment.network_kind.value,
            "name": attachment.network_name,
            "namespace": attachment.network_namespace,
            "type": attachment.network_type,
        },
        "backend": attachment.backend.value,
        "danmIpam": attachment.danm_ipam,
        "ips": {"ip4": attachment.ip4, "ip6": attachment.ip6},
        "danmEp": attachment.danmep,
        "deviceID": attachment.device_id,
    }
    if attachment.delegate is not None:
        body["delegate"] = {
            "pluginTypes": list(attachment.delegate.plugin_types),
            "isList": attachment.delegate.is_list,
            "config": base64.b64encode(attachment.delegate.config).decode("ascii"),
        }
        if attachment.delegate.result is not None:
            body["delegate"]["result"] = dict(attachment.delegate.result)
    body["phase"] = attachment.phase.value
    body["done"] = [step.value for step in TeardownStep if step in attachment.done]
    return body


def encode_record(record: NodeRecord) -> bytes:
    """The record as UTF-8 JSON (stable key order, one trailing newline)."""
    body: dict[str, Any] = {
        "version": RECORD_VERSION,
        "containerID": record.container_id,
        "podUID": record.pod_uid,
        "podName": record.pod_name,
        "podNamespace": record.pod_namespace,
        "netns": record.netns,
        "ifname": record.ifname,
        "attachments": [_attachment_json(a) for a in record.attachments],
    }
    if record.result is not None:
        body["result"] = dict(record.result)
    return (json.dumps(body, indent=1) + "\n").encode()


class _Reader:
    """Typed access to one JSON object, failing with the record's source and the field path."""

    def __init__(self, data: Any, source: str, path: str) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            raise self.fail(f"expected an object, got {type(data).__name__}")
        self.data = data

    def fail(self, reason: str, key: str = "") -> StateRecordError:
        where = ".".join(p for p in (self.path, key) if p) or "(top level)"
        return StateRecordError(f"corrupt DANM node record {self.source}: {where}: {reason}")

    def get(self, key: str, kind: type | tuple[type, ...], *, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail("missing", key)
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is int:
            raise self.fail("expected an integer, got a boolean", key)
        if not isinstance(value, kind):
            raise self.fail(f"wrong type {type(value).__name__}", key)
        return value

    def child(self, key: str) -> _Reader:
        return _Reader(self.get(key, Mapping), self.source, f"{self.path}.{key}".lstrip("."))

    def enum(self, key: str, enum: type[StrEnum]) -> Any:
        value = self.get(key, str)
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self.fail(f"{value!r} is not one of {allowed}", key) from None


def _decode_delegate(reader: _Reader) -> DelegateRecord:
    types = reader.get("pluginTypes", list)
    if not types or not all(isinstance(t, str) and t for t in types):
        raise reader.fail("must be a non-empty list of binary names", "pluginTypes")
    try:
        config = base64.b64decode(reader.get("config", str), validate=True)
    except binascii.Error as error:
        raise reader.fail(f"not valid base64 ({error})", "config") from None
    is_list = reader.get("isList", bool, default=False)
    if not is_list and len(types) != 1:
        raise reader.fail("a plain (non-list) delegate must have exactly one plugin type")
    result = reader.get("result", Mapping) if reader.data.get("result") is not None else None
    return DelegateRecord(tuple(types), config, is_list, result)


def _decode_attachment(reader: _Reader) -> AttachmentRecord:
    network = reader.child("network")
    ips = reader.child("ips")
    delegate = None
    if reader.data.get("delegate") is not None:
        delegate = _decode_delegate(reader.child("delegate"))
    done_list = reader.get("done", list, default=[])
    done: set[TeardownStep] = set()
    for item in done_list:
        try:
            done.add(TeardownStep(item))
        except ValueError:
            raise reader.fail(f"unknown teardown step {item!r}", "done") from None
    index = reader.get("index", int)
    if index < 0:
        raise reader.fail("must not be negative", "index")
    return AttachmentRecord(
        index=index,
        ifname=reader.get("ifname", str),
        network_kind=network.enum("kind", NetworkKind),
        network_name=network.get("name", str),
        network_namespace=network.get("namespace", str, default=""),
        network_type=network.get("type", str, default=""),
        backend=reader.enum("backend", Backend),
        danm_ipam=reader.get("danmIpam", bool, default=False),
        ip4=ips.get("ip4", str, default=""),
        ip6=ips.get("ip6", str, default=""),
        danmep=reader.get("danmEp", str, default=""),
        device_id=reader.get("deviceID", str, default=""),
        delegate=delegate,
        phase=reader.enum("phase", Phase),
        done=frozenset(done),
    )


def decode_record(
    raw: bytes,
    *,
    source: str = "(record)",
    container_id: str | None = None,
    pod_uid: str | None = None,
) -> NodeRecord:
    """Read a record written by :func:`encode_record`; ``source`` names it in errors.

    With ``container_id``/``pod_uid`` given, a record of another container or Pod is refused:
    the file name says which container it belongs to, so a mismatch means a damaged state dir.
    """
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StateRecordError(f"corrupt DANM node record {source}: not JSON ({error})") from None
    top = _Reader(data, source, "")
    version = top.get("version", int)
    if version != RECORD_VERSION:
        raise top.fail(
            f"format version {version} is not supported (this build reads {RECORD_VERSION})",
            "version",
        )
    entries = top.get("attachments", list)
    attachments = tuple(
        _decode_attachment(_Reader(entry, source, f"attachments[{position}]"))
        for position, entry in enumerate(entries)
    )
    indices = [a.index for a in attachments]
    if len(set(indices)) != len(indices):
        raise top.fail(f"duplicate attachment indices {indices}", "attachments")
    result = top.get("result", Mapping) if top.data.get("result") is not None else None
    record = NodeRecord(
        container_id=top.get("containerID", str),
        pod_uid=top.get("podUID", str, default=""),
        pod_name=top.get("podName", str, default=""),
        pod_namespace=top.get("podNamespace", str, default=""),
        netns=top.get("netns", str, default=""),
        ifname=top.get("ifname", str, default=""),
        attachments=attachments,
        result=result,
    )
    if container_id is not None and record.container_id != container_id:
        raise top.fail(
            f"belongs to container {record.container_id!r}, not {container_id!r}", "containerID"
        )
    if pod_uid is not None and record.pod_uid and record.pod_uid != pod_uid:
        raise top.fail(f"belongs to Pod UID {record.pod_uid!r}, not {pod_uid!r}", "podUID")
    return record
