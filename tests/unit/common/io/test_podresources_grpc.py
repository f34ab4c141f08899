"""The hand-written client against a REAL gRPC server (grpcio, a test-only dependency).

:class:`FakeKubelet` serves ``v1.PodResourcesLister`` on a unix socket with generic handlers
and raw-bytes (de)serializers, its answers encoded by the small protobuf encoder of
``test_podresources``; so the client meets grpcio's HTTP/2 stack (HPACK with Huffman coding and
dynamic-table entries, its SETTINGS, PINGs and flow control) rather than our own assumptions.
``tests/e2e/cni/test_pod_resources.py`` reuses the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

from common.io import podresources as pr
from common.io.podresources import (
    ContainerDevices,
    ContainerResources,
    GrpcStatusError,
    PodResources,
    PodResourcesError,
)
from tests.unit.common.io.test_podresources import container_msg, devices_msg, field, pod_msg

grpc: Any = pytest.importorskip("grpc")

SERVICE = "v1.PodResourcesLister"
GET_SERVED, GET_UNIMPLEMENTED, GET_DISABLED = "served", "unimplemented", "disabled"


def encode_pod(pod: PodResources) -> bytes:
    return pod_msg(
        pod.name,
        pod.namespace,
        *(
            container_msg(
                container.name,
                *(devices_msg(d.resource_name, *d.device_ids) for d in container.devices),
            )
            for container in pod.containers
        ),
    )


def _decode_get_request(raw: bytes) -> tuple[str, str]:
    fields = {number: value for number, _, value in pr.protobuf_fields(raw)}
    name, namespace = fields.get(1, b""), fields.get(2, b"")
    assert isinstance(name, bytes)
    assert isinstance(namespace, bytes)
    return name.decode(), namespace.decode()


class FakeKubelet:
    """A ``PodResourcesLister`` on ``path``; ``calls`` records the method names served."""

    def __init__(
        self,
        path: Path,
        pods: Sequence[PodResources] = (),
        *,
        get: str = GET_SERVED,
        error: tuple[Any, str] | None = None,
        hang: bool = False,
        raw_list: bytes | None = None,
    ) -> None:
        self.path = path
        self.pods = list(pods)
        self.get_mode = get
        self.error = error
        self.hang = hang
        self.raw_list = raw_list
        self.calls: list[str] = []
        self.release = threading.Event()
        handlers = {"List": grpc.unary_unary_rpc_method_handler(self._list)}
        if get != GET_UNIMPLEMENTED:
            handlers["Get"] = grpc.unary_unary_rpc_method_handler(self._get)
        self.executor = futures.ThreadPoolExecutor(max_workers=2)
        self.server = grpc.server(self.executor)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.server.add_insecure_port(f"unix:{path}")
        self.server.start()

    @property
    def socket(self) -> str:
        return str(self.path)

    def _common(self, method: str, context: Any) -> None:
        self.calls.append(method)
        if self.hang:
            self.release.wait(30)
        if self.error is not None:
            context.abort(*self.error)

    def _list(self, request: bytes, context: Any) -> bytes:
        self._common("List", context)
        if self.raw_list is not None:
            return self.raw_list
        return b"".join(field(1, encode_pod(pod)) for pod in self.pods)

    def _get(self, request: bytes, context: Any) -> bytes:
        self._common("Get", context)
        if self.get_mode == GET_DISABLED:
            context.abort(grpc.StatusCode.UNKNOWN, "PodResources API Get method disabled")
        name, namespace = _decode_get_request(request)
        for pod in self.pods:
            if (pod.namespace, pod.name) == (namespace, name):
                return field(1, encode_pod(pod))
        context.abort(grpc.StatusCode.UNKNOWN, f"pod {name} in namespace {namespace} not found")
        raise AssertionError("abort raises")

    def stop(self) -> None:
        self.release.set()
        self.server.stop(grace=None).wait(10)
        self.executor.shutdown(wait=True)


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[Any]:
    started: list[FakeKubelet] = []

    def start(*pods: PodResources, **options: Any) -> FakeKubelet:
        server = FakeKubelet(tmp_path / f"kubelet{len(started)}.sock", pods, **options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


SRIOV_A, SRIOV_B = "nokia.k8s.io/sriov_ens1f0", "nokia.k8s.io/sriov_ens1f1"
WEB = PodResources(
    "web-0",
    "team-a",
    (
        ContainerResources(
            "app",
            (
                ContainerDevices(SRIOV_A, ("0000:af:06.1", "0000:af:06.0")),
                ContainerDevices(SRIOV_B, ("0000:b0:02.3",)),
            ),
        ),
        ContainerResources("sidecar", (ContainerDevices(SRIOV_A, ("0000:af:06.5",)),)),
        ContainerResources("plain"),
    ),
)
DB = PodResources(
    "db-0", "team-b", (ContainerResources("db", (ContainerDevices(SRIOV_A, ("0000:af:07.0",)),)),)
)


def test_list_with_several_pods_containers_and_devices(kubelet):
    server = kubelet(WEB, DB, PodResources("idle", "team-a"))
    assert pr.list_pod_resources(server.socket) == (WEB, DB, PodResources("idle", "team-a"))
    assert server.calls == ["List"]


def test_empty_list(kubelet):
    assert pr.list_pod_resources(kubelet().socket) == ()


def test_get_one_pod(kubelet):
    server = kubelet(WEB, DB)
    assert pr.get_pod_resources(server.socket, "team-b", "db-0") == DB
    assert pr.find_pod_resources(server.socket, "team-a", "web-0") == WEB
    assert server.calls == ["Get", "Get"]


@pytest.mark.parametrize("mode", [GET_UNIMPLEMENTED, GET_DISABLED])
def test_get_unavailable_falls_back_to_list(kubelet, mode):
    server = kubelet(WEB, DB, get=mode)
    assert pr.find_pod_resources(server.socket, "team-b", "db-0") == DB
    assert pr.find_pod_resources(server.socket, "team-a", "nobody") is None
    # NB: an unregistered method never reaches a handler; the disabled one does.
    one_call = ["List"] if mode == GET_UNIMPLEMENTED else ["Get", "List"]
    assert server.calls == one_call * 2


def test_get_unimplemented_is_grpc_status_12(kubelet):
    server = kubelet(WEB, get=GET_UNIMPLEMENTED)
    with pytest.raises(GrpcStatusError) as caught:
        pr.get_pod_resources(server.socket, "team-a", "web-0")
    assert caught.value.code == pr.GRPC_UNIMPLEMENTED


def test_pod_unknown_to_get_is_an_error_not_a_fallback(kubelet):
    server = kubelet(WEB)
    with pytest.raises(GrpcStatusError, match="pod ghost in namespace team-a not found"):
        pr.find_pod_resources(server.socket, "team-a", "ghost")
    assert server.calls == ["Get"]


def test_two_list_entries_for_one_pod_are_ambiguous(kubelet):
    server = kubelet(WEB, WEB, get=GET_UNIMPLEMENTED)
    with pytest.raises(PodResourcesError, match="List holds 2 entries for Pod team-a/web-0"):
        pr.find_pod_resources(server.socket, "team-a", "web-0")


def test_server_error_status_and_message_surface(kubelet):
    message = "kubelet is shutting down: 100% busy, café closed"
    server = kubelet(WEB, error=(grpc.StatusCode.UNAVAILABLE, message))
    with pytest.raises(GrpcStatusError) as caught:
        pr.list_pod_resources(server.socket)
    assert caught.value.code == 14
    assert caught.value.grpc_message == message
    assert str(caught.value) == (
        f"kubelet Pod Resources API {server.socket}: List failed with gRPC status UNAVAILABLE: "
        f"{message}"
    )


def test_malformed_answer_is_reported(kubelet):
    server = kubelet(raw_list=field(1, b"\x0a\x09short"))
    with pytest.raises(PodResourcesError, match="List: malformed answer: protobuf: field 1"):
        pr.list_pod_resources(server.socket)


def test_absent_socket(tmp_path):
    with pytest.raises(PodResourcesError) as caught:
        pr.find_pod_resources(str(tmp_path / "kubelet.sock"), "ns", "p")
    assert caught.value.absent


def _many_pods(count: int, devices_per_pod: int) -> list[PodResources]:
    return [
        PodResources(
            f"pod-{i:05d}",
            "bulk",
            (
                ContainerResources(
                    "c",
                    (
                        ContainerDevices(
                            SRIOV_A,
                            tuple(f"0000:{i % 256:02x}:{d:02x}.0" for d in range(devices_per_pod)),
                        ),
                    ),
                ),
            ),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(("count", "devices"), [(1500, 4), (20000, 10)])
def test_large_answers_pass_flow_control(kubelet, count, devices):
    # NB: ~135 KiB (over the 64 KiB default window) and ~4 MiB (several window refills).
    pods = _many_pods(count, devices)
    server = kubelet(*pods, get=GET_UNIMPLEMENTED)
    assert pr.list_pod_resources(server.socket, timeout_s=30) == tuple(pods)
    last = pods[-1]
    assert pr.find_pod_resources(server.socket, "bulk", last.name, timeout_s=30) == last


def test_answer_over_the_size_cap_is_refused(kubelet):
    server = kubelet(raw_list=field(1, field(1, "x" * (pr.MAX_MESSAGE_BYTES + 10))))
    with pytest.raises(PodResourcesError, match="exceeds 16777216 bytes"):
        pr.list_pod_resources(server.socket, timeout_s=30)


def test_timeout_on_a_server_that_never_answers(kubelet):
    server = kubelet(WEB, hang=True)
    # NB: grpcio honours the grpc-timeout header we send, so it may give up at the same moment
    # as our own deadline does; either way the call ends on time and nothing falls back to List.
    either = r"Get: no answer before the deadline|Get failed .*DEADLINE_EXCEEDED"
    with pytest.raises(PodResourcesError, match=either):
        pr.find_pod_resources(server.socket, "team-a", "web-0", timeout_s=0.3)
    assert server.calls == ["Get"]
