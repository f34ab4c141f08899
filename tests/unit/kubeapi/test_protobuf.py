from __future__ import annotations

import pytest

from tests.kubeapi.protobuf import MAGIC, ProtobufError, decode_object


def varint(value: int) -> bytes:
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def envelope(kind: str, raw: bytes) -> bytes:
    type_meta = field(1, b"v1") + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, b"") + field(4, b"")


def test_config_map() -> None:
    meta = (
        field(1, b"settings")
        + field(2, b"")
        + field(3, b"team")
        + field(11, entry("app", b"x"))
        + field(14, b"example.com/f")
    )
    raw = (
        field(1, meta)
        + field(2, entry("a", b"b"))
        + field(3, entry("bin", b"\x00\x01"))
        + field(4, 1)
    )
    assert decode_object(envelope("ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "team",
            "labels": {"app": "x"},
            "finalizers": ["example.com/f"],
        },
        "data": {"a": "b"},
        "binaryData": {"bin": "AAE="},
        "immutable": True,
    }


def test_namespace() -> None:
    body = envelope("Namespace", field(1, field(1, b"team")) + field(2, b""))
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team"},
    }


@pytest.mark.parametrize(
    "body",
    [b"{}", envelope("Secret", b""), MAGIC + b"\x0a\x05ab", MAGIC + bytes([0x0B])],
)
def test_rejects(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode_object(body)
