"""The hand-written Pod Resources client, piece by piece, against byte strings.

Protobuf, HPACK (with the RFC 7541 Appendix C examples) and HTTP/2 framing are checked here
without any server; ``test_podresources_frames.py`` plays a scripted HTTP/2 peer and
``test_podresources_grpc.py`` talks to a real gRPC server.
"""

from __future__ import annotations

import struct

import pytest

from common.io import podresources as pr
from common.io.podresources import (
    ContainerDevices,
    ContainerResources,
    HpackDecoder,
    PodResources,
    ProtocolError,
)

# --------------------------------------------------------------------------------------------
# A tiny protobuf encoder for the test data (independent of the code under test)


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | str | int, wire_type: int = 2) -> bytes:
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        assert isinstance(payload, int)
        return key + varint(payload)
    raw = payload.encode() if isinstance(payload, str) else payload
    assert isinstance(raw, bytes)
    if wire_type == 2:
        return key + varint(len(raw)) + raw
    return key + raw  # fixed32 / fixed64: caller passes the right width


def devices_msg(resource: str, *ids: str, numa: tuple[int, ...] = ()) -> bytes:
    topology = b"".join(field(1, field(1, node, 0)) for node in numa)
    return (
        field(1, resource)
        + b"".join(field(2, i) for i in ids)
        + (field(3, topology) if numa else b"")
    )


def container_msg(name: str, *devices: bytes, extra: bytes = b"") -> bytes:
    return field(1, name) + b"".join(field(2, d) for d in devices) + extra


def pod_msg(name: str, namespace: str, *containers: bytes, extra: bytes = b"") -> bytes:
    return field(1, name) + field(2, namespace) + b"".join(field(3, c) for c in containers) + extra


# --------------------------------------------------------------------------------------------
# Protobuf


def test_list_response_with_pods_containers_devices_and_numa():
    sriov = "nokia.k8s.io/sriov_ens1f0"
    data = field(
        1,
        pod_msg(
            "web",
            "team-a",
            container_msg("app", devices_msg(sriov, "0000:af:06.1", "0000:af:06.0", numa=(0, 1))),
            container_msg("side", devices_msg("gpu", "g0"), devices_msg(sriov, "0000:af:06.2")),
        ),
    ) + field(1, pod_msg("db", "team-b"))

    assert pr.decode_list_response(data) == (
        PodResources(
            "web",
            "team-a",
            (
                ContainerResources(
                    "app", (ContainerDevices(sriov, ("0000:af:06.1", "0000:af:06.0"), (0, 1)),)
                ),
                ContainerResources(
                    "side",
                    (ContainerDevices("gpu", ("g0",)), ContainerDevices(sriov, ("0000:af:06.2",))),
                ),
            ),
        ),
        PodResources("db", "team-b"),
    )


def test_unknown_and_unread_fields_of_every_wire_type_are_skipped():
    # NB: cpu_ids (packed int64), memory, dynamic_resources and fields of future kubelets.
    unknown = field(99, 7, 0) + field(98, b"\x00" * 8, 1) + field(97, b"\x00" * 4, 5)
    container_extra = (
        field(3, varint(4) + varint(5))
        + field(4, field(1, "memory") + field(2, 1 << 40, 0))
        + field(5, field(2, "claim"))
        + unknown
    )
    pod_extra = field(4, varint(1)) + field(5, field(1, "hugepages-2Mi")) + unknown
    container = container_msg("c", devices_msg("r", "d1") + unknown, extra=container_extra)
    data = pod_msg("p", "ns", container, extra=pod_extra)
    assert pr.decode_pod_resources(data) == PodResources(
        "p", "ns", (ContainerResources("c", (ContainerDevices("r", ("d1",)),)),)
    )


def test_negative_numa_id_is_read_as_int64():
    data = devices_msg("r", "d", numa=(-1,))
    assert pr.decode_container_devices(data).numa_nodes == (-1,)


def test_get_response_with_and_without_a_pod():
    pod = pod_msg("p", "ns", container_msg("c", devices_msg("r", "d")))
    assert pr.decode_get_response(field(1, pod)) == PodResources(
        "p", "ns", (ContainerResources("c", (ContainerDevices("r", ("d",)),)),)
    )
    assert pr.decode_get_response(b"") is None


def test_empty_list_response():
    assert pr.decode_list_response(b"") == ()


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x0a", "truncated varint"),
        (b"\x0a\x05abc", "past the end"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x00\x00", "field number 0"),
        (b"\x0b", "wire type 3"),
        (field(1, 5, 0), "PodResources field 1 has wire type 0"),
        (field(1, b"\xff\xfe"), "not UTF-8"),
        (field(3, field(2, field(1, 3, 0))), "ContainerDevices field 1 has wire type 0"),
    ],
)
def test_malformed_messages(data, text):
    with pytest.raises(ProtocolError, match=text):
        pr.decode_pod_resources(data)


def test_get_request_encoding_and_round_trip():
    request = pr.encode_get_request("web-0", "team-a")
    assert request == b"\x0a\x05web-0\x12\x06team-a"
    long_name = "p" * 200  # NB: a two-byte length varint
    encoded = pr.encode_get_request(long_name, "ns")
    assert encoded[:3] == b"\x0a\xc8\x01"
    assert list(pr.protobuf_fields(encoded)) == [(1, 2, long_name.encode()), (2, 2, b"ns")]
    assert pr.encode_get_request("", "") == b""


def test_as_json_is_what_danm_devices_reads():
    from danm.devices import pools_from_pod_resources

    pod = PodResources(
        "p",
        "ns",
        (
            ContainerResources("a", (ContainerDevices("r1", ("d2", "d1")),)),
            ContainerResources("b", (ContainerDevices("r1", ("d3",)), ContainerDevices("r2", ()))),
        ),
    )
    assert pod.as_json()["containers"][0] == {
        "name": "a",
        "devices": [{"resourceName": "r1", "deviceIds": ["d2", "d1"]}],
    }
    assert pools_from_pod_resources(pod.as_json()) == {"r1": ("d1", "d2", "d3"), "r2": ()}


def test_select_pod_matches_namespace_and_name():
    pods = [PodResources("a", "x"), PodResources("a", "y"), PodResources("b", "x")]
    assert pr.select_pod(pods, "x", "a") == [PodResources("a", "x")]
    assert pr.select_pod(pods, "z", "a") == []


# --------------------------------------------------------------------------------------------
# HPACK


def test_huffman_code_is_complete_and_matches_known_codes():
    codes = pr.huffman_codes()
    assert len(codes) == 257
    # NB: a complete prefix code fills the code space exactly (Kraft equality).
    assert sum(2.0**-length for _, length in codes.values()) == 1.0
    # A few entries of RFC 7541 Appendix B.
    assert codes[ord("0")] == (0x0, 5)
    assert codes[ord(" ")] == (0x14, 6)
    assert codes[ord("A")] == (0x21, 6)
    assert codes[ord("z")] == (0x7B, 7)
    assert codes[0] == (0x1FF8, 13)
    assert codes[255] == (0x3FFFFEE, 26)
    assert codes[256] == (0x3FFFFFFF, 30)


@pytest.mark.parametrize(
    ("encoded", "text"),
    [
        ("f1e3c2e5f23a6ba0ab90f4ff", b"www.example.com"),
        ("a8eb10649cbf", b"no-cache"),
        ("25a849e95ba97d7f", b"custom-key"),
        ("6402", b"302"),
        ("aec3771a4b", b"private"),
        ("9d29ad171863c78f0b97c8e9ae82ae43d3", b"https://www.example.com"),
        ("", b""),
    ],
)
def test_huffman_decode_rfc_examples(encoded, text):
    assert pr.huffman_decode(bytes.fromhex(encoded)) == text


def test_huffman_round_trip_of_every_octet():
    codes = pr.huffman_codes()
    data = bytes(range(256)) * 2
    bits = "".join(format(codes[b][0], f"0{codes[b][1]}b") for b in data)
    bits += "1" * (-len(bits) % 8)
    encoded = int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert pr.huffman_decode(encoded) == data


def test_huffman_padding_of_up_to_seven_ones_is_accepted():
    assert pr.huffman_decode(b"\x1f") == b"a"  # NB: 00011 is 'a', then 111


@pytest.mark.parametrize(
    ("encoded", "text"),
    [
        (b"\x1f\xff", "padding"),  # 'a', then eleven ones: more than 7 bits of padding
        (b"\xff\xff\xff\xff", "EOS"),  # thirty ones are EOS itself
        (b"\x00", "padding"),  # '0', then 000: padding must be ones
        (b"\xfe", "padding"),  # eight bits that are no code
    ],
)
def test_huffman_errors(encoded, text):
    with pytest.raises(ProtocolError, match=text):
        pr.huffman_decode(encoded)


RFC_C4 = (
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
)
RFC_C6 = (
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c7"
    "8f0b97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335"
    "dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
)


def test_hpack_rfc_c4_requests_share_one_dynamic_table():
    decoder = HpackDecoder()
    blocks = [decoder.decode(bytes.fromhex(block)) for block in RFC_C4]
    assert blocks[0] == [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ]
    assert blocks[1][-1] == ("cache-control", "no-cache")
    assert blocks[2] == [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ]
    assert decoder.size == 164
    assert [name for name, _ in decoder.dynamic] == ["custom-key", "cache-control", ":authority"]


def test_hpack_rfc_c6_responses_evict_from_a_256_byte_table():
    decoder = HpackDecoder(max_table_size=256)
    first, second, third = (decoder.decode(bytes.fromhex(block)) for block in RFC_C6)
    assert first[0] == (":status", "302")
    assert second[0] == (":status", "307")
    assert second[1:] == first[1:]
    assert third[0] == (":status", "200")
    assert third[2] == ("date", "Mon, 21 Oct 2013 20:13:22 GMT")
    assert third[-1] == ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
    assert decoder.size == 215
    assert len(decoder.dynamic) == 3


def test_hpack_literal_forms_and_table_size_update():
    decoder = HpackDecoder()
    # Literal with incremental indexing, new name; then the indexed entry 62.
    block = b"\x40\x0bgrpc-status\x010" + b"\xbe"
    assert decoder.decode(block) == [("grpc-status", "0"), ("grpc-status", "0")]
    # Size update to 0 empties the table; never-indexed literal with an indexed name (31).
    assert decoder.decode(b"\x20\x1f\x10\x10application/grpc") == [
        ("content-type", "application/grpc")
    ]
    assert decoder.dynamic == []
    # The table back at 4096 (a multi-byte integer), then a string longer than 127 bytes.
    value = "x" * 200
    block = b"\x3f\xe1\x1f" + b"\x40\x01a\x7f" + bytes((200 - 127,)) + value.encode()
    assert decoder.decode(block) == [("a", value)]
    assert decoder.dynamic == [("a", value)]


@pytest.mark.parametrize(
    ("block", "text"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "beyond the tables"),
        (b"\x3f\xe2\x1f", "above the limit"),
        (b"\x82\x20", "after a header field"),
        (b"\x00\x05ab", "past the end"),
        (b"\x7f", "truncated integer"),
        (b"\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "too large"),
        (b"\x00\x81\xff\x00", "Huffman"),
    ],
)
def test_hpack_errors(block, text):
    with pytest.raises(ProtocolError, match=text):
        HpackDecoder().decode(block)


def test_entry_larger_than_the_table_empties_it():
    decoder = HpackDecoder(max_table_size=64)
    decoder.decode(b"\x40\x01a\x01b")
    assert decoder.dynamic == [("a", "b")]
    decoder.decode(b"\x40\x01c" + bytes((40,)) + b"v" * 40)
    assert decoder.dynamic == []
    assert decoder.size == 0


# --------------------------------------------------------------------------------------------
# HTTP/2 framing and the request


def test_frame_round_trip():
    raw = pr.frame(pr.HEADERS, pr.FLAG_END_HEADERS, 1, b"abc")
    assert raw == b"\x00\x00\x03\x01\x04\x00\x00\x00\x01abc"
    assert pr.parse_frame_header(raw[:9]) == (3, pr.HEADERS, pr.FLAG_END_HEADERS, 1)
    # NB: the reserved bit is ignored on receipt.
    assert pr.parse_frame_header(b"\x00\x00\x00\x00\x00\x80\x00\x00\x03")[3] == 3


@pytest.mark.parametrize(
    ("payload", "flags", "priority", "expected"),
    [
        (b"data", 0, False, b"data"),
        (b"\x02dataPP", pr.FLAG_PADDED, False, b"data"),
        (b"\x00\x00\x00\x00\x10hdr", pr.FLAG_PRIORITY, True, b"hdr"),
        (b"\x01\x00\x00\x00\x00\x10hdrP", pr.FLAG_PADDED | pr.FLAG_PRIORITY, True, b"hdr"),
    ],
)
def test_strip_padding(payload, flags, priority, expected):
    assert pr.strip_padding(payload, flags, priority=priority) == expected


@pytest.mark.parametrize("payload", [b"", b"\x09abc"])
def test_strip_padding_errors(payload):
    with pytest.raises(ProtocolError):
        pr.strip_padding(payload, pr.FLAG_PADDED)


def _frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    found = []
    while data:
        length, frame_type, flags, stream = pr.parse_frame_header(data[:9])
        found.append((frame_type, flags, stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


def test_request_bytes_are_a_valid_grpc_call():
    message = pr.encode_get_request("web", "ns")
    raw = pr.request_bytes("/v1.PodResourcesLister/Get", message, timeout_s=1.5)
    assert raw.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    settings, window, headers, data = _frames(raw[len(pr.PREFACE) :])
    assert settings[:3] == (pr.SETTINGS, 0, 0)
    assert dict(struct.iter_unpack(">HI", settings[3])) == {
        pr.SETTINGS_ENABLE_PUSH: 0,
        pr.SETTINGS_INITIAL_WINDOW_SIZE: pr.RECEIVE_WINDOW,
    }
    assert window[:3] == (pr.WINDOW_UPDATE, 0, 0)
    assert struct.unpack(">I", window[3])[0] + 65535 == pr.RECEIVE_WINDOW
    assert headers[:3] == (pr.HEADERS, pr.FLAG_END_HEADERS, 1)
    # Literal without indexing, no Huffman: a fresh decoder's table stays empty.
    decoder = HpackDecoder()
    assert decoder.decode(headers[3]) == [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/v1.PodResourcesLister/Get"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", "1500m"),
        ("user-agent", "danm-podresources"),
    ]
    assert decoder.dynamic == []
    assert headers[3][:2] == b"\x00\x07"  # NB: 0000 0000, then H=0 and len(":method")
    assert data[:3] == (pr.DATA, pr.FLAG_END_STREAM, 1)
    assert data[3] == b"\x00" + struct.pack(">I", len(message)) + message


def test_long_header_value_uses_a_multi_byte_length():
    raw = pr.request_bytes("/" + "p" * 300, b"", timeout_s=1)
    headers = _frames(raw[len(pr.PREFACE) :])[2][3]
    assert (":path", "/" + "p" * 300) in HpackDecoder().decode(headers)


@pytest.mark.parametrize(
    ("seconds", "value"),
    [(2.0, "2000m"), (0.0001, "1m"), (1e6, "1000000S")],
)
def test_grpc_timeout(seconds, value):
    assert pr.grpc_timeout(seconds) == value


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("plain", "plain"),
        ("pod%20x%20not%20found", "pod x not found"),
        ("caf%C3%A9", "café"),
        ("caf\xc3\xa9 raw", "café raw"),  # NB: unescaped UTF-8 octets, as latin-1 characters
        ("100%", "100%"),
        ("%zz", "%zz"),
    ],
)
def test_grpc_message_percent_decoding(text, decoded):
    assert pr._percent_decode(text) == decoded


@pytest.mark.parametrize(
    ("headers", "body", "text"),
    [
        ([(":status", "503")], b"", "HTTP status 503"),
        ([(":status", "200")], b"\x00\x00", "no gRPC message"),
        ([(":status", "200")], b"\x01\x00\x00\x00\x00", "compressed"),
        ([(":status", "200")], b"\x00\x00\x00\x00\x05abc", "says 5 bytes but 3 arrived"),
    ],
)
def test_grpc_message_errors(headers, body, text):
    with pytest.raises(ProtocolError, match=text):
        pr.grpc_message(headers, body)


def test_grpc_message():
    assert pr.grpc_message([(":status", "200")], b"\x00\x00\x00\x00\x02hi") == b"hi"


@pytest.mark.parametrize(
    ("code", "message", "unavailable"),
    [
        (12, "", True),
        (2, "PodResources API Get method disabled", True),
        (2, "pod web in namespace ns not found", False),
        (14, "", False),
    ],
)
def test_get_is_unavailable(code, message, unavailable):
    error = pr.GrpcStatusError("/s", "Get", code, message)
    assert pr.get_is_unavailable(error) is unavailable


def test_error_texts_name_the_socket_and_the_status():
    error = pr.GrpcStatusError("/run/k.sock", "List", 14, "kubelet restarting")
    assert str(error) == (
        "kubelet Pod Resources API /run/k.sock: List failed with gRPC status UNAVAILABLE: "
        "kubelet restarting"
    )
    assert "status 77" in str(pr.GrpcStatusError("/s", "List", 77, ""))
