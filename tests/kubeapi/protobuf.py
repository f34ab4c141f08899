"""Decode the few protobuf request bodies kubectl sends, into the JSON form we store.

kubectl's typed generators (``kubectl create namespace``, ``kubectl create configmap``) send
``application/vnd.kubernetes.protobuf`` bodies and do not retry with JSON, so the stand-in
reads that envelope (``k8s\\0`` + runtime.Unknown) for Namespace and ConfigMap, using the
field numbers of k8s.io/api's generated.proto. Responses are always JSON, which kubectl
accepts. Any other kind is reported as :class:`ProtobufError` (a 415 for the client).
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf message this server can read."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    result: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
            result.append((number, value))
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            result.append((number, data[pos : pos + length]))
            pos += length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
    return result


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    return value.decode()


def _entry(value: int | bytes) -> tuple[str, bytes]:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a map entry")
    parts = dict(fields(value))
    key, item = parts.get(1, b""), parts.get(2, b"")
    if not isinstance(key, bytes) or not isinstance(item, bytes):
        raise ProtobufError("bad map entry")
    return key.decode(), item


def _object_meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, value in fields(data):
        if number in names:
            # NB: gogo-generated messages always encode their strings, empty or not.
            if text := _text(value):
                meta[names[number]] = text
        elif number in (11, 12):
            key, item = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def _config_map(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number in (2, 3):
            key, item = _entry(value)
            if number == 2:
                obj.setdefault("data", {})[key] = item.decode()
            else:
                obj.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _metadata_only(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
    return obj


_DECODERS = {("v1", "ConfigMap"): _config_map, ("v1", "Namespace"): _metadata_only}


def decode_object(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    unknown = dict(fields(body[len(MAGIC) :]))
    type_meta, raw = unknown.get(1, b""), unknown.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("bad runtime.Unknown envelope")
    type_fields = dict(fields(type_meta))
    api_version = _text(type_fields.get(1, b""))
    kind = _text(type_fields.get(2, b""))
    decoder = _DECODERS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf bodies of {api_version}/{kind} are not supported")
    return {"apiVersion": api_version, "kind": kind, **decoder(raw)}
