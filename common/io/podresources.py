"""A minimal client of the kubelet Pod Resources API, written for ``danm``'s start-up budget.

Why it exists: an SR-IOV connection needs the device IDs (VF PCI addresses) the device plugin
gave the Pod. The kubelet serves them on ``/var/lib/kubelet/pod-resources/kubelet.sock``
(gRPC service ``v1.PodResourcesLister``), and since Kubernetes 1.21 that API, not the
device-plugin checkpoint file, is the supported way to read them. ``danm`` is exec'ed by the
kubelet for every Pod and ships as a zipapp run with ``python3 -S``: grpcio and protobuf are
not available there, and importing them would cost more than the whole call. One unary call
needs very little of either, so both are spoken here by hand with the standard library only:

* HTTP/2 (RFC 9113) over the unix socket, as a client that opens exactly one stream: the
  preface, SETTINGS (push off, a 1 MiB stream window) and a connection WINDOW_UPDATE, one
  HEADERS frame, one DATA frame ending the stream; then frames are read until the stream ends.
  PING is answered, SETTINGS acknowledged, flow-control credit returned as DATA arrives,
  CONTINUATION joined, and GOAWAY / RST_STREAM reported;
* HPACK (RFC 7541): requests use literal fields without indexing and without Huffman coding;
  answers are decoded in full (static and dynamic table, Huffman code), since the peer's
  encoder chooses freely;
* gRPC: the 5-byte message prefix, ``grpc-status``/``grpc-message`` from the trailers (or a
  trailers-only answer), ``grpc-timeout`` set from the caller's deadline;
* protobuf: the request messages are encoded and the answers decoded with the field numbers of
  ``k8s.io/kubelet/pkg/apis/podresources/v1/api.proto``; fields not read here (CPU IDs, memory,
  dynamic resources) are skipped by wire type, so newer kubelets do not break the decoder.

Entry point: :func:`find_pod_resources` uses ``Get`` (one Pod; behind the ``KubeletPodResourcesGet``
feature gate, beta and on since 1.34) and falls back to ``List`` when the kubelet does not
offer ``Get``. Every call has ONE deadline for connecting and the whole exchange.

Errors: everything is a :class:`PodResourcesError` naming the socket and the cause;
``absent`` is set when the socket file does not exist (no kubelet API on this node).
:class:`GrpcStatusError` is the subclass for a non-OK gRPC status from the kubelet.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

_T = TypeVar("_T")

DEFAULT_SOCKET: Final = "/var/lib/kubelet/pod-resources/kubelet.sock"
DEFAULT_TIMEOUT_S: Final = 2.0
SERVICE: Final = "/v1.PodResourcesLister/"
#: The same receive cap the kubelet's own clients use (16 MiB).
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

# gRPC status codes used here (grpc/doc/statuscodes.md).
GRPC_OK: Final = 0
GRPC_UNKNOWN: Final = 2
GRPC_UNIMPLEMENTED: Final = 12
_GRPC_CODE_NAMES: Final = (
    "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS "
    "PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE "
    "UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED"
).split()
#: The kubelet answers ``Get`` with this (status UNKNOWN) when the feature gate is off.
GET_DISABLED_TEXT: Final = "Get method disabled"


class PodResourcesError(Exception):
    """The Pod Resources API at ``socket_path`` could not answer; ``cause`` says why."""

    def __init__(self, socket_path: str, cause: str, *, absent: bool = False) -> None:
        super().__init__(f"kubelet Pod Resources API {socket_path}: {cause}")
        self.socket_path = socket_path
        self.cause = cause
        self.absent = absent


class GrpcStatusError(PodResourcesError):
    """The kubelet answered the call with a non-OK gRPC status."""

    def __init__(self, socket_path: str, method: str, code: int, message: str) -> None:
        name = _GRPC_CODE_NAMES[code] if 0 <= code < len(_GRPC_CODE_NAMES) else str(code)
        detail = f": {message}" if message else ""
        super().__init__(socket_path, f"{method} failed with gRPC status {name}{detail}")
        self.method = method
        self.code = code
        self.grpc_message = message


class ProtocolError(ValueError):
    """The bytes received break HTTP/2, HPACK, gRPC or protobuf framing."""


# --------------------------------------------------------------------------------------------
# The messages


@dataclass(frozen=True, slots=True)
class ContainerDevices:
    """``ContainerDevices``: one resource's device IDs in one container."""

    resource_name: str
    device_ids: tuple[str, ...] = ()
    numa_nodes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerResources:
    """``ContainerResources``, reduced to the device-plugin devices."""

    name: str
    devices: tuple[ContainerDevices, ...] = ()


@dataclass(frozen=True, slots=True)
class PodResources:
    """``PodResources``: what the kubelet assigned to one Pod's containers."""

    name: str
    namespace: str
    containers: tuple[ContainerResources, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The protobuf JSON form (lowerCamelCase keys), as ``danm.devices`` reads it."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "containers": [
                {
                    "name": container.name,
                    "devices": [
                        {"resourceName": device.resource_name, "deviceIds": list(device.device_ids)}
                        for device in container.devices
                    ],
                }
                for container in self.containers
            ],
        }


# --------------------------------------------------------------------------------------------
# Protobuf (proto3 wire format)

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if position >= len(data):
            raise ProtocolError("protobuf: truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise ProtocolError("protobuf: varint longer than 10 bytes")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def protobuf_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` of every field of one encoded message, in order.

    Varints come back as unsigned ints, the other wire types as their raw bytes.
    """
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtocolError("protobuf: field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, position = _read_varint(data, position)
        elif wire_type in (_FIXED64, _FIXED32, _LENGTH_DELIMITED):
            if wire_type == _LENGTH_DELIMITED:
                size, position = _read_varint(data, position)
            else:
                size = 8 if wire_type == _FIXED64 else 4
            end = position + size
            if end > len(data):
                raise ProtocolError(f"protobuf: field {number} runs past the end of its message")
            value = data[position:end]
            position = end
        else:
            # NB: wire types 3/4 (groups) are not used by proto3; 6/7 do not exist.
            raise ProtocolError(f"protobuf: field {number} has unsupported wire type {wire_type}")
        yield number, wire_type, value


def _expect_bytes(number: int, wire_type: int, value: int | bytes, message: str) -> bytes:
    if wire_type != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise ProtocolError(f"protobuf: {message} field {number} has wire type {wire_type}")
    return value


def _string(number: int, wire_type: int, value: int | bytes, message: str) -> str:
    raw = _expect_bytes(number, wire_type, value, message)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(f"protobuf: {message} field {number} is not UTF-8: {error}") from None


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_numa_nodes(data: bytes) -> tuple[int, ...]:
    """``TopologyInfo{repeated NUMANode nodes = 1}``, ``NUMANode{int64 ID = 1}`` → IDs."""
    ids: list[int] = []
    for number, wire_type, value in protobuf_fields(data):
        if number != 1:
            continue
        node = _expect_bytes(number, wire_type, value, "TopologyInfo")
        node_id = 0
        for inner, inner_type, inner_value in protobuf_fields(node):
            if inner == 1:
                if inner_type != _VARINT or not isinstance(inner_value, int):
                    raise ProtocolError("protobuf: NUMANode.ID is not a varint")
                node_id = _int64(inner_value)
        ids.append(node_id)
    return tuple(ids)


def decode_container_devices(data: bytes) -> ContainerDevices:
    """``ContainerDevices{resource_name = 1, repeated device_ids = 2, topology = 3}``."""
    resource = ""
    ids: list[str] = []
    numa: tuple[int, ...] = ()
    for number, wire_type, value in protobuf_fields(data):
        if number == 1:
            resource = _string(number, wire_type, value, "ContainerDevices")
        elif number == 2:
            ids.append(_string(number, wire_type, value, "ContainerDevices"))
        elif number == 3:
            numa += _decode_numa_nodes(_expect_bytes(number, wire_type, value, "ContainerDevices"))
    return ContainerDevices(resource, tuple(ids), numa)


def decode_container_resources(data: bytes) -> ContainerResources:
    """``ContainerResources{name = 1, repeated devices = 2, ...}``; other fields skipped."""
    name = ""
    devices: list[ContainerDevices] = []
    for number, wire_type, value in protobuf_fields(data):
        if number == 1:
            name = _string(number, wire_type, value, "ContainerResources")
        elif number == 2:
            raw = _expect_bytes(number, wire_type, value, "ContainerResources")
            devices.append(decode_container_devices(raw))
    return ContainerResources(name, tuple(devices))


def decode_pod_resources(data: bytes) -> PodResources:
    """``PodResources{name = 1, namespace = 2, repeated containers = 3, ...}``."""
    name = namespace = ""
    containers: list[ContainerResources] = []
    for number, wire_type, value in protobuf_fields(data):
        if number == 1:
            name = _string(number, wire_type, value, "PodResources")
        elif number == 2:
            namespace = _string(number, wire_type, value, "PodResources")
        elif number == 3:
            raw = _expect_bytes(number, wire_type, value, "PodResources")
            containers.append(decode_container_resources(raw))
    return PodResources(name, namespace, tuple(containers))


def decode_list_response(data: bytes) -> tuple[PodResources, ...]:
    """``ListPodResourcesResponse{repeated PodResources pod_resources = 1}``."""
    return tuple(
        decode_pod_resources(_expect_bytes(number, wire_type, value, "ListPodResourcesResponse"))
        for number, wire_type, value in protobuf_fields(data)
        if number == 1
    )


def decode_get_response(data: bytes) -> PodResources | None:
    """``GetPodResourcesResponse{PodResources pod_resources = 1}``; None when it is unset."""
    found: PodResources | None = None
    for number, wire_type, value in protobuf_fields(data):
        if number == 1:
            raw = _expect_bytes(number, wire_type, value, "GetPodResourcesResponse")
            found = decode_pod_resources(raw)
    return found


def _encode_string_field(number: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    if not raw:
        return b""  # NB: proto3 leaves default values out
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(raw)) + raw


def encode_get_request(pod_name: str, pod_namespace: str) -> bytes:
    """``GetPodResourcesRequest{pod_name = 1, pod_namespace = 2}``."""
    return _encode_string_field(1, pod_name) + _encode_string_field(2, pod_namespace)


#: ``ListPodResourcesRequest{}`` has no fields.
LIST_REQUEST: Final = b""


# --------------------------------------------------------------------------------------------
# HPACK (RFC 7541)

_STATIC_TABLE: Final[tuple[tuple[str, str], ...]] = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    *(
        (name, "")
        for name in (
            "accept-language accept-ranges accept access-control-allow-origin age allow "
            "authorization cache-control content-disposition content-encoding content-language "
            "content-length content-location content-range content-type cookie date etag expect "
            "expires from host if-match if-modified-since if-none-match if-range "
            "if-unmodified-since last-modified link location max-forwards proxy-authenticate "
            "proxy-authorization range referer refresh retry-after server set-cookie "
            "strict-transport-security transfer-encoding user-agent vary via www-authenticate"
        ).split()
    ),
)


# NB: the Huffman code of RFC 7541 Appendix B is canonical: codes are handed out by increasing
# length, and within one length by increasing symbol. The code length of every symbol (256 is
# EOS) therefore defines the whole code.
def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(word) for word in text.split())


_HUFFMAN_LENGTHS: Final[dict[int, tuple[int, ...]]] = {
    5: tuple(b"012aceiost"),
    6: tuple(b" %-./3456789=A_bdfghlmnpru"),
    7: tuple(b":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz"),
    8: tuple(b"&*,;XZ"),
    10: tuple(b'!"()?'),
    11: tuple(b"'+|"),
    12: tuple(b"#>"),
    13: (0, *b"$@[]~"),
    14: tuple(b"^}"),
    15: tuple(b"<`{"),
    19: (92, 195, 208),
    20: _numbers("128 130 131 162 184 194 224 226"),
    21: _numbers("153 161 167 172 176 177 179 209 216 217 227 229 230"),
    22: _numbers(
        "129 132 133 134 136 146 154 156 160 163 164 169 170 173 178 181 185 186 187 189 190 "
        "196 198 228 232 233"
    ),
    23: _numbers(
        "1 135 137 138 139 140 141 143 147 149 150 151 152 155 157 158 165 166 168 174 175 180 "
        "182 183 188 191 197 231 239"
    ),
    24: _numbers("9 142 144 145 148 159 171 206 215 225 236 237"),
    25: _numbers("199 207 234 235"),
    26: _numbers("192 193 200 201 202 205 210 213 218 219 238 240 242 243 255"),
    27: _numbers("203 204 211 212 214 221 222 223 241 244 245 246 247 248 250 251 252 253 254"),
    28: _numbers(
        "2 3 4 5 6 7 8 11 12 14 15 16 17 18 19 20 21 23 24 25 26 27 28 29 30 31 127 220 249"
    ),
    30: (10, 13, 22, 256),
}
_EOS: Final = 256


_CanonicalLevel = tuple[int, int, int]
"""``(first code, index of its symbol in _SYMBOLS, number of codes)`` of one code length."""


def _canonical_levels() -> tuple[dict[int, _CanonicalLevel], tuple[int, ...]]:
    levels: dict[int, _CanonicalLevel] = {}
    symbols: list[int] = []
    code = previous = 0
    for length in sorted(_HUFFMAN_LENGTHS):
        code <<= length - previous
        previous = length
        members = sorted(_HUFFMAN_LENGTHS[length])
        levels[length] = (code, len(symbols), len(members))
        symbols.extend(members)
        code += len(members)
    return levels, tuple(symbols)


_LEVELS, _SYMBOLS = _canonical_levels()
_MAX_CODE_LENGTH: Final = max(_HUFFMAN_LENGTHS)


def huffman_codes() -> dict[int, tuple[int, int]]:
    """Symbol → ``(code, length in bits)``: the code table the decoder works from."""
    return {
        _SYMBOLS[first_index + offset]: (first_code + offset, length)
        for length, (first_code, first_index, count) in _LEVELS.items()
        for offset in range(count)
    }


def huffman_decode(data: bytes) -> bytes:
    """Decode an HPACK Huffman-coded string (RFC 7541 §5.2)."""
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            level = _LEVELS.get(length)
            if level is not None and 0 <= code - level[0] < level[2]:
                symbol = _SYMBOLS[level[1] + code - level[0]]
                if symbol == _EOS:
                    raise ProtocolError("HPACK: Huffman string contains EOS")
                out.append(symbol)
                code = length = 0
            elif length >= _MAX_CODE_LENGTH:
                raise ProtocolError("HPACK: invalid Huffman code")
    # NB: what is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
    if length > 7 or code != (1 << length) - 1:
        raise ProtocolError("HPACK: invalid Huffman padding")
    return bytes(out)


def _hpack_integer(data: bytes, position: int, prefix_bits: int) -> tuple[int, int]:
    if position >= len(data):
        raise ProtocolError("HPACK: truncated integer")
    limit = (1 << prefix_bits) - 1
    value = data[position] & limit
    position += 1
    if value < limit:
        return value, position
    for shift in range(0, 63, 7):
        if position >= len(data):
            raise ProtocolError("HPACK: truncated integer")
        byte = data[position]
        position += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise ProtocolError("HPACK: integer too large")


def _hpack_string(data: bytes, position: int) -> tuple[str, int]:
    if position >= len(data):
        raise ProtocolError("HPACK: truncated string")
    huffman = bool(data[position] & 0x80)
    size, position = _hpack_integer(data, position, 7)
    end = position + size
    if end > len(data):
        raise ProtocolError("HPACK: string runs past the end of the header block")
    raw = data[position:end]
    if huffman:
        raw = huffman_decode(raw)
    # NB: field values are octets; latin-1 maps every octet and never fails.
    return raw.decode("latin-1"), end


class HpackDecoder:
    """Decodes the header blocks of one connection, keeping its dynamic table."""

    ENTRY_OVERHEAD: Final = 32

    def __init__(self, max_table_size: int = 4096) -> None:
        self.max_table_size = max_table_size
        self.table_size_limit = max_table_size
        self.dynamic: list[tuple[str, str]] = []
        self.size = 0

    def _entry(self, index: int) -> tuple[str, str]:
        if index <= 0:
            raise ProtocolError("HPACK: index 0")
        if index <= len(_STATIC_TABLE):
            return _STATIC_TABLE[index - 1]
        position = index - len(_STATIC_TABLE) - 1
        if position >= len(self.dynamic):
            raise ProtocolError(f"HPACK: index {index} is beyond the tables")
        return self.dynamic[position]

    def _evict(self) -> None:
        while self.size > self.table_size_limit and self.dynamic:
            name, value = self.dynamic.pop()
            self.size -= len(name) + len(value) + self.ENTRY_OVERHEAD

    def _add(self, name: str, value: str) -> None:
        self.dynamic.insert(0, (name, value))
        self.size += len(name) + len(value) + self.ENTRY_OVERHEAD
        self._evict()  # NB: an entry larger than the table empties it (RFC 7541 §4.4)

    def decode(self, block: bytes) -> list[tuple[str, str]]:
        """The header fields of one complete header block, in order."""
        fields: list[tuple[str, str]] = []
        position = 0
        while position < len(block):
            first = block[position]
            if first & 0x80:  # indexed field
                index, position = _hpack_integer(block, position, 7)
                fields.append(self._entry(index))
                continue
            if first & 0xE0 == 0x20:  # dynamic table size update
                if fields:
                    raise ProtocolError("HPACK: table size update after a header field")
                new_limit, position = _hpack_integer(block, position, 5)
                if new_limit > self.max_table_size:
                    raise ProtocolError(f"HPACK: table size {new_limit} above the limit")
                self.table_size_limit = new_limit
                self._evict()
                continue
            indexing = bool(first & 0x40)
            index, position = _hpack_integer(block, position, 6 if indexing else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, position = _hpack_string(block, position)
            value, position = _hpack_string(block, position)
            if indexing:
                self._add(name, value)
            fields.append((name, value))
        return fields


def _hpack_literal(name: str, value: str) -> bytes:
    """A literal field without indexing, new name, no Huffman coding (RFC 7541 §6.2.2)."""

    def string(text: str) -> bytes:
        raw = text.encode("latin-1")
        if len(raw) < 0x7F:
            return bytes((len(raw),)) + raw
        size, rest = len(raw) - 0x7F, bytearray((0x7F,))
        while size >= 0x80:
            rest.append(size & 0x7F | 0x80)
            size >>= 7
        rest.append(size)
        return bytes(rest) + raw

    return b"\x00" + string(name) + string(value)


# --------------------------------------------------------------------------------------------
# HTTP/2 (RFC 9113)

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS, FLAG_PADDED, FLAG_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE = 0x2, 0x4
#: Our receive window, per stream and for the connection; refilled when half is used.
RECEIVE_WINDOW: Final = 1 << 20
#: Frame payloads above the protocol's default maximum are refused (we never raise it).
MAX_FRAME_SIZE: Final = 16384
#: The default connection window every peer starts with (RFC 9113 §6.9.2).
INITIAL_CONNECTION_WINDOW: Final = 65535
MAX_HEADER_BLOCK: Final = 256 * 1024
STREAM_ID: Final = 1
_HTTP2_ERRORS: Final = (
    "NO_ERROR PROTOCOL_ERROR INTERNAL_ERROR FLOW_CONTROL_ERROR SETTINGS_TIMEOUT STREAM_CLOSED "
    "FRAME_SIZE_ERROR REFUSED_STREAM CANCEL COMPRESSION_ERROR CONNECT_ERROR ENHANCE_YOUR_CALM "
    "INADEQUATE_SECURITY HTTP_1_1_REQUIRED"
).split()


def http2_error_name(code: int) -> str:
    return _HTTP2_ERRORS[code] if 0 <= code < len(_HTTP2_ERRORS) else f"error {code}"


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream ID, payload."""
    header = struct.pack(">I", len(payload))[1:]
    return header + struct.pack(">BBI", frame_type, flags, stream_id & 0x7FFFFFFF) + payload


def parse_frame_header(header: bytes) -> tuple[int, int, int, int]:
    """``(payload length, type, flags, stream ID)`` of a 9-byte frame header."""
    length = int.from_bytes(header[:3], "big")
    frame_type, flags, stream_id = struct.unpack(">BBI", header[3:9])
    return length, frame_type, flags, stream_id & 0x7FFFFFFF


def strip_padding(payload: bytes, flags: int, *, priority: bool = False) -> bytes:
    """The payload of a DATA/HEADERS frame without its padding (and priority fields)."""
    start, end = 0, len(payload)
    if flags & FLAG_PADDED:
        if not payload:
            raise ProtocolError("HTTP/2: padded frame without a pad length")
        start, end = 1, len(payload) - payload[0]
    if priority and flags & FLAG_PRIORITY:
        start += 5
    if start > end:
        raise ProtocolError("HTTP/2: padding longer than the frame")
    return payload[start:end]


def grpc_timeout(seconds: float) -> str:
    """The ``grpc-timeout`` header value (at most 8 digits) for ``seconds``."""
    millis = max(1, int(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{max(1, int(seconds))}S"


def request_bytes(method_path: str, message: bytes, *, timeout_s: float) -> bytes:
    """Everything the client sends for one unary call, from the preface to the last DATA."""
    settings = struct.pack(
        ">HIHI", SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_WINDOW
    )
    headers = b"".join(
        _hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method_path),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", grpc_timeout(timeout_s)),
            ("user-agent", "danm-podresources"),
        )
    )
    body = struct.pack(">BI", 0, len(message)) + message
    return b"".join(
        (
            PREFACE,
            frame(SETTINGS, 0, 0, settings),
            frame(
                WINDOW_UPDATE, 0, 0, struct.pack(">I", RECEIVE_WINDOW - INITIAL_CONNECTION_WINDOW)
            ),
            frame(HEADERS, FLAG_END_HEADERS, STREAM_ID, headers),
            frame(DATA, FLAG_END_STREAM, STREAM_ID, body),
        )
    )


_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")


def _percent_decode(text: str) -> str:
    """``grpc-message`` is percent-encoded UTF-8 (gRPC over HTTP/2 spec).

    ``text`` holds the header's octets as latin-1 characters (see ``_hpack_string``).
    """
    out = bytearray()
    raw = text.encode("latin-1")
    position = 0
    while position < len(raw):
        byte = raw[position]
        digits = raw[position + 1 : position + 3]
        if byte == 0x25 and len(digits) == 2 and all(d in _HEX_DIGITS for d in digits):
            out.append(int(digits, 16))
            position += 3
            continue
        out.append(byte)
        position += 1
    return out.decode("utf-8", errors="replace")


class _Exchange:
    """What one stream brought back; filled in by :class:`_Http2Call`."""

    __slots__ = ("body", "ended", "headers", "trailers")

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] | None = None
        self.trailers: list[tuple[str, str]] | None = None
        self.body = bytearray()
        self.ended = False


class _Http2Call:
    """One unary gRPC call on a connected socket, bounded by ``deadline`` (monotonic)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = bytearray()
        self.decoder = HpackDecoder()
        self.unacknowledged = 0  # NB: bytes received since credit was last returned

    def remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        return remaining

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self.remaining())
        self.sock.sendall(data)

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.sock.settimeout(self.remaining())
            chunk = self.sock.recv(max(65536, size - len(self.buffer)))
            if not chunk:
                raise ProtocolError("the kubelet closed the connection before the call ended")
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_frame(self) -> tuple[int, int, int, bytes]:
        length, frame_type, flags, stream_id = parse_frame_header(self._read_exact(9))
        if length > MAX_FRAME_SIZE:
            raise ProtocolError(f"HTTP/2: frame of {length} bytes exceeds the maximum")
        return frame_type, flags, stream_id, self._read_exact(length)

    def _credit(self, size: int, *, stream_open: bool) -> None:
        self.unacknowledged += size
        if self.unacknowledged < RECEIVE_WINDOW // 2:
            return
        increment = struct.pack(">I", self.unacknowledged)
        updates = frame(WINDOW_UPDATE, 0, 0, increment)
        if stream_open:
            updates += frame(WINDOW_UPDATE, 0, STREAM_ID, increment)
        self.unacknowledged = 0
        self.send(updates)

    def _header_block(self, first: bytes, flags: int) -> bytes:
        block = bytearray(strip_padding(first, flags, priority=True))
        while not flags & FLAG_END_HEADERS:
            frame_type, flags, stream_id, payload = self.read_frame()
            if frame_type != CONTINUATION or stream_id != STREAM_ID:
                raise ProtocolError("HTTP/2: header block interrupted by another frame")
            block += payload
            if len(block) > MAX_HEADER_BLOCK:
                raise ProtocolError("HTTP/2: header block too large")
        return bytes(block)

    def run(self) -> _Exchange:
        """Read frames until stream 1 ends; the exchange, or ``ProtocolError``."""
        exchange = _Exchange()
        while not exchange.ended:
            frame_type, flags, stream_id, payload = self.read_frame()
            if frame_type == SETTINGS:
                self._settings(stream_id, flags, payload)
            elif frame_type == PING:
                if len(payload) != 8 or stream_id != 0:
                    raise ProtocolError("HTTP/2: malformed PING")
                if not flags & FLAG_ACK:
                    self.send(frame(PING, FLAG_ACK, 0, payload))
            elif frame_type == GOAWAY:
                self._goaway(payload)
            elif frame_type == RST_STREAM and stream_id == STREAM_ID:
                code = int.from_bytes(payload[:4], "big") if len(payload) == 4 else -1
                raise ProtocolError(f"the kubelet reset the stream ({http2_error_name(code)})")
            elif frame_type == HEADERS:
                self._headers(exchange, stream_id, flags, payload)
            elif frame_type == DATA:
                self._data(exchange, stream_id, flags, payload)
            elif frame_type in (PUSH_PROMISE, CONTINUATION):
                raise ProtocolError(f"HTTP/2: unexpected frame type {frame_type}")
            # NB: PRIORITY, WINDOW_UPDATE (we have nothing left to send), unknown types: ignored.
        return exchange

    def _settings(self, stream_id: int, flags: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) % 6:
            raise ProtocolError("HTTP/2: malformed SETTINGS")
        if not flags & FLAG_ACK:
            # NB: nothing in the peer's settings matters to a client that sends one small
            # request and encodes no header into the dynamic table; acknowledge them.
            self.send(frame(SETTINGS, FLAG_ACK, 0))

    def _goaway(self, payload: bytes) -> None:
        if len(payload) < 8:
            raise ProtocolError("HTTP/2: malformed GOAWAY")
        last_stream, code = struct.unpack(">II", payload[:8])
        if last_stream & 0x7FFFFFFF < STREAM_ID:
            debug = payload[8:].decode("utf-8", errors="replace")
            raise ProtocolError(
                f"the kubelet refused the call with GOAWAY ({http2_error_name(code)})"
                + (f": {debug}" if debug else "")
            )
        # NB: a graceful GOAWAY that covers our stream still lets it finish.

    def _headers(self, exchange: _Exchange, stream_id: int, flags: int, payload: bytes) -> None:
        if stream_id != STREAM_ID:
            raise ProtocolError(f"HTTP/2: HEADERS on unexpected stream {stream_id}")
        fields = self.decoder.decode(self._header_block(payload, flags))
        if exchange.headers is None:
            exchange.headers = fields
            if flags & FLAG_END_STREAM:
                exchange.trailers = fields  # NB: gRPC "Trailers-Only" answer
        else:
            if not flags & FLAG_END_STREAM:
                raise ProtocolError("HTTP/2: trailers without END_STREAM")
            exchange.trailers = fields
        exchange.ended = bool(flags & FLAG_END_STREAM)

    def _data(self, exchange: _Exchange, stream_id: int, flags: int, payload: bytes) -> None:
        if stream_id != STREAM_ID or exchange.headers is None:
            raise ProtocolError("HTTP/2: DATA before the response headers or on another stream")
        exchange.body += strip_padding(payload, flags)
        if len(exchange.body) > MAX_MESSAGE_BYTES + 5:
            raise ProtocolError(f"the answer exceeds {MAX_MESSAGE_BYTES} bytes")
        ended = bool(flags & FLAG_END_STREAM)
        self._credit(len(payload), stream_open=not ended)
        if ended:
            raise ProtocolError("the stream ended without gRPC trailers (no grpc-status)")


def _header(fields: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in fields:
        if key == name:
            return value
    return None


def grpc_message(exchange_headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """The one gRPC message of a unary answer's DATA payload (5-byte prefix checked)."""
    status = _header(exchange_headers, ":status")
    if status != "200":
        raise ProtocolError(f"HTTP status {status} instead of 200")
    if len(body) < 5:
        raise ProtocolError("the answer holds no gRPC message")
    compressed, size = struct.unpack(">BI", body[:5])
    if compressed:
        raise ProtocolError("the answer is compressed, which was not asked for")
    if len(body) != 5 + size:
        raise ProtocolError(f"the gRPC message says {size} bytes but {len(body) - 5} arrived")
    return bytes(body[5:])


def unary_call(socket_path: str, method: str, message: bytes, *, deadline: float) -> bytes:
    """Call ``/v1.PodResourcesLister/<method>`` with ``message``; the answer's message bytes.

    ``deadline`` is a ``time.monotonic()`` instant bounding the connect and the whole call.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        call = _Http2Call(sock, deadline)
        try:
            sock.settimeout(call.remaining())
            sock.connect(socket_path)
        except FileNotFoundError:
            raise PodResourcesError(socket_path, "the socket does not exist", absent=True) from None
        except ConnectionRefusedError:
            raise PodResourcesError(
                socket_path, "nothing listens on the socket (is the kubelet running?)"
            ) from None
        call.send(request_bytes(SERVICE + method, message, timeout_s=call.remaining()))
        exchange = call.run()
    except TimeoutError:  # NB: socket.timeout is TimeoutError since Python 3.10
        raise PodResourcesError(socket_path, f"{method}: no answer before the deadline") from None
    except ProtocolError as error:
        raise PodResourcesError(socket_path, f"{method}: {error}") from None
    except OSError as error:
        name = errno.errorcode.get(error.errno or 0)
        raise PodResourcesError(
            socket_path, f"{method}: {error.strerror or error}" + (f" ({name})" if name else "")
        ) from None
    finally:
        sock.close()
    trailers = exchange.trailers or []
    raw_status = _header(trailers, "grpc-status")
    if raw_status is None or not (raw_status.isascii() and raw_status.isdigit()):
        raise PodResourcesError(socket_path, f"{method}: the answer has no valid grpc-status")
    code = int(raw_status)
    if code != GRPC_OK:
        text = _percent_decode(_header(trailers, "grpc-message") or "")
        raise GrpcStatusError(socket_path, method, code, text)
    try:
        return grpc_message(exchange.headers or [], bytes(exchange.body))
    except ProtocolError as error:
        raise PodResourcesError(socket_path, f"{method}: {error}") from None


# --------------------------------------------------------------------------------------------
# The calls


def _deadline(timeout_s: float) -> float:
    return time.monotonic() + timeout_s


def _decoded(socket_path: str, method: str, decode: Callable[[bytes], _T], raw: bytes) -> _T:
    try:
        return decode(raw)
    except ProtocolError as error:
        raise PodResourcesError(socket_path, f"{method}: malformed answer: {error}") from None


def list_pod_resources(
    socket_path: str = DEFAULT_SOCKET, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[PodResources, ...]:
    """``List``: the resources of every Pod the kubelet runs."""
    return list_pod_resources_until(socket_path, _deadline(timeout_s))


def list_pod_resources_until(socket_path: str, deadline: float) -> tuple[PodResources, ...]:
    raw = unary_call(socket_path, "List", LIST_REQUEST, deadline=deadline)
    return _decoded(socket_path, "List", decode_list_response, raw)


def get_pod_resources(
    socket_path: str,
    namespace: str,
    name: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PodResources | None:
    """``Get``: one Pod's resources (``GrpcStatusError`` when the kubelet refuses)."""
    return get_pod_resources_until(socket_path, namespace, name, _deadline(timeout_s))


def get_pod_resources_until(
    socket_path: str, namespace: str, name: str, deadline: float
) -> PodResources | None:
    request = encode_get_request(name, namespace)
    raw = unary_call(socket_path, "Get", request, deadline=deadline)
    return _decoded(socket_path, "Get", decode_get_response, raw)


def get_is_unavailable(error: GrpcStatusError) -> bool:
    """True when the kubelet has no ``Get`` (too old) or has it switched off (feature gate)."""
    return error.code == GRPC_UNIMPLEMENTED or (
        error.code == GRPC_UNKNOWN and GET_DISABLED_TEXT in error.grpc_message
    )


def select_pod(pods: Sequence[PodResources], namespace: str, name: str) -> list[PodResources]:
    """The entries of ``pods`` for the Pod ``namespace/name`` (more than one is ambiguous)."""
    return [pod for pod in pods if pod.namespace == namespace and pod.name == name]


def find_pod_resources(
    socket_path: str,
    namespace: str,
    name: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PodResources | None:
    """The resources of Pod ``namespace/name``: ``Get``, else ``List``; None if not listed.

    One deadline of ``timeout_s`` covers both calls. ``List`` names Pods only by namespace
    and name; when it holds two entries for them (a Pod being replaced by a namesake), they
    cannot be told apart and :class:`PodResourcesError` says so.
    """
    deadline = _deadline(timeout_s)
    try:
        found = get_pod_resources_until(socket_path, namespace, name, deadline)
    except GrpcStatusError as error:
        if not get_is_unavailable(error):
            raise
    else:
        if found is not None and (found.namespace, found.name) not in (
            (namespace, name),
            ("", ""),
        ):
            raise PodResourcesError(
                socket_path,
                f"Get for Pod {namespace}/{name} answered for {found.namespace}/{found.name}",
            )
        return found
    matches = select_pod(list_pod_resources_until(socket_path, deadline), namespace, name)
    if len(matches) > 1:
        raise PodResourcesError(
            socket_path,
            f"List holds {len(matches)} entries for Pod {namespace}/{name}; they cannot be "
            "told apart without a UID",
        )
    return matches[0] if matches else None


def find_pod_resources_json(
    socket_path: str, namespace: str, name: str, timeout_s: float
) -> dict[str, Any] | None:
    """:func:`find_pod_resources` in the JSON form ``danm.devices`` reads."""
    found = find_pod_resources(socket_path, namespace, name, timeout_s=timeout_s)
    return None if found is None else found.as_json()
