"""svcwatcher: full resync of 1,000 Pods / 20 Services, and event-to-Endpoints latency.

The controller runs as the real console script (``svcwatcher --no-leader-elect``) in its own
process against the API stand-in (tests/kubeapi, in this process's thread). The cluster holds
20 DANM Services, each selecting 50 Pods with one dual-stack DanmEp on the Service's network
(1,000 Pods, 1,000 DanmEps, 2,000 addresses).

* Full resync: everything exists before the script starts; timed from process launch until the
  API holds all 20 Endpoints and all 40 EndpointSlices with exactly the expected addresses
  (polled every 50 ms with two LISTs). Process start-up up to the health server is reported
  separately.
* Latency: with that cluster loaded and settled, a Pod's Ready condition is flipped (then
  flipped back) through the status subresource, and a DanmEp with a new address is added (then
  deleted); each is timed from just before the API write until a watch on that Service's
  Endpoints delivers the object reflecting it.

NB: the stand-in, this client and the controller share the machine's cores; kube-apiserver
would run elsewhere. Run alone: ``.venv/bin/python -m tests.bench.bench_svcwatcher``.
"""

from __future__ import annotations

import ipaddress
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.io.kube import KubernetesApi
from common.model.resources import DANMEPS, ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES
from svcwatcher import endpoints as ep
from tests.e2e.svcwatcher.harness import Cluster
from tests.unit.svcwatcher.builders import danmep, pod, pod_status, service

SERVICE_COUNT = 20
PODS_PER_SERVICE = 50
FLIPS = 40
DANMEP_CHANGES = 40
NAMESPACE = "vnf"


def _script() -> list[str]:
    installed = Path(sys.executable).parent / "svcwatcher"
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", "import sys; from svcwatcher.cli import main; sys.exit(main())"]


def _ips(s: int, p: int) -> tuple[str, str]:
    return f"10.{s}.0.{p + 1}", str(ipaddress.ip_address(f"2001:db8:{s}::{p + 1}"))


def _populate(cluster: Cluster) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    pods, eps, services = [], [], []
    for s in range(SERVICE_COUNT):
        services.append(service(f"svc-{s}", NAMESPACE, selector={"app": f"a{s}"}, network="n"))
        for p in range(PODS_PER_SERVICE):
            name = f"pod-{s}-{p}"
            ip4, ip6 = _ips(s, p)
            pods.append(pod(name, NAMESPACE, labels={"app": f"a{s}"}))
            eps.append(
                danmep(name, "n", NAMESPACE, ipv4=f"{ip4}/16", ipv6=f"{ip6}/64", name=f"ep-{name}")
            )
            expected.setdefault(f"svc-{s}", set()).update((ip4, ip6))
    cluster.create_pods(pods)
    cluster.create_all(DANMEPS, eps)
    cluster.create_all(SERVICES, services)
    return expected


def _all_correct(cluster: Cluster, expected: dict[str, set[str]]) -> bool:
    endpoints = cluster.api.list(
        ENDPOINTS, NAMESPACE, label_selector=f"{ep.LABEL_ENDPOINTS_MANAGED_BY}={ep.CONTROLLER_NAME}"
    )["items"]
    slices = cluster.api.list(
        ENDPOINTSLICES,
        NAMESPACE,
        label_selector=f"{ep.LABEL_SLICE_MANAGED_BY}={ep.CONTROLLER_NAME}",
    )["items"]
    in_endpoints = {
        e["metadata"]["name"]: {
            a["ip"] for s in e.get("subsets") or () for a in s.get("addresses") or ()
        }
        for e in endpoints
    }
    in_slices: dict[str, set[str]] = {}
    for body in slices:
        owner = body["metadata"]["labels"][ep.LABEL_SERVICE_NAME]
        in_slices.setdefault(owner, set()).update(
            e["addresses"][0] for e in body.get("endpoints") or ()
        )
    return in_endpoints == expected and in_slices == expected and len(slices) == 2 * SERVICE_COUNT


def _time_until(
    cluster: Cluster, service_name: str, change: Callable[[], object], done: Callable[[Any], bool]
) -> float:
    """Seconds from just before ``change()`` until a watch shows Endpoints satisfying ``done``."""
    current = cluster.api.get(ENDPOINTS, NAMESPACE, service_name)
    stream = cluster.api.watch(
        ENDPOINTS,
        NAMESPACE,
        resource_version=current["metadata"]["resourceVersion"],
        field_selector=f"metadata.name={service_name}",
        timeout_s=30,
    )
    try:
        started = time.perf_counter()
        change()
        for event_type, obj in stream:
            if event_type == "MODIFIED" and done(obj):
                return time.perf_counter() - started
    finally:
        stream.close()
    raise RuntimeError(f"Endpoints {service_name} never reflected the change within 30 s")


def _addresses(obj: Any, key: str = "addresses") -> set[str]:
    return {a["ip"] for s in obj.get("subsets") or () for a in s.get(key) or ()}


def _latencies(cluster: Cluster) -> tuple[list[float], list[float]]:
    def has(ip: str, key: str = "addresses") -> Callable[[Any], bool]:
        return lambda obj: ip in _addresses(obj, key)

    def lacks(ip: str) -> Callable[[Any], bool]:
        return lambda obj: ip not in _addresses(obj)

    def set_ready(name: str, ready: bool) -> Callable[[], None]:
        def change() -> None:
            cluster.api.patch(
                PODS, NAMESPACE, name, {"status": pod_status(ready)}, subresource="status"
            )

        return change

    def add(body: dict[str, Any]) -> Callable[[], object]:
        return lambda: cluster.create(DANMEPS, body)

    def remove(name: str) -> Callable[[], object]:
        return lambda: cluster.api.delete(DANMEPS, NAMESPACE, name)

    flips: list[float] = []
    for i in range(FLIPS // 2):
        s, p = i % SERVICE_COUNT, i // SERVICE_COUNT
        name, ip = f"pod-{s}-{p}", _ips(s, p)[0]
        svc = f"svc-{s}"
        flips.append(
            _time_until(cluster, svc, set_ready(name, False), has(ip, "notReadyAddresses"))
        )
        flips.append(_time_until(cluster, svc, set_ready(name, True), has(ip)))
    changes: list[float] = []
    for i in range(DANMEP_CHANGES // 2):
        s = i % SERVICE_COUNT
        svc, new_ip, ep_name = f"svc-{s}", f"10.{s}.1.{i + 1}", f"extra-{i}"
        body = danmep(f"pod-{s}-0", "n", NAMESPACE, ipv4=f"{new_ip}/16", name=ep_name)
        changes.append(_time_until(cluster, svc, add(body), has(new_ip)))
        changes.append(_time_until(cluster, svc, remove(ep_name), lacks(new_ip)))
    return flips, changes


def _summary(samples: list[float]) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    return f"median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (n={len(samples)})"


def _startup_s(log_path: Path, launched_wall: float) -> float | None:
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "healthz" in str(record.get("msg")):
            from datetime import datetime

            stamp = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()
            return stamp - launched_wall
    return None


def run() -> list[tuple[str, str]]:
    from tests.kubeapi.testing import start_in_thread

    with tempfile.TemporaryDirectory(prefix="bench-svcwatcher-") as tmp:
        workdir = Path(tmp)
        kubeapi = start_in_thread(workdir / "kubeapi", event_history=20_000)
        api = KubernetesApi.from_api_client(kubeapi.api_client())
        process: subprocess.Popen[bytes] | None = None
        log_path = workdir / "svcwatcher.log"
        try:
            cluster = Cluster(api)
            cluster.install_crds()
            cluster.ensure_namespace(NAMESPACE)
            expected = _populate(cluster)
            with log_path.open("wb") as log:
                launched_wall = time.time()
                launched = time.perf_counter()
                process = subprocess.Popen(
                    [
                        *_script(),
                        "--kubeconfig",
                        str(kubeapi.kubeconfig_path),
                        "--no-leader-elect",
                        "--health-port",
                        "0",
                        "--health-bind-address",
                        "127.0.0.1",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
                cluster.wait_for(
                    lambda: _all_correct(cluster, expected), "the full resync", timeout_s=300
                )
                resync_s = time.perf_counter() - launched
                startup_s = _startup_s(log_path, launched_wall)
                flips, changes = _latencies(cluster)
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            api.close()
            kubeapi.stop()
    startup = f" (of which {startup_s:.2f} s process start-up)" if startup_s is not None else ""
    pods = SERVICE_COUNT * PODS_PER_SERVICE
    return [
        (
            f"full resync, {pods:,} Pods / {SERVICE_COUNT} Services, launch → all Endpoints + "
            f"{2 * SERVICE_COUNT} slices correct",
            f"{resync_s:.2f} s{startup}",
        ),
        ("Pod readiness flip → Endpoints updated", _summary(flips)),
        ("DanmEp add/delete → Endpoints updated", _summary(changes)),
    ]


if __name__ == "__main__":
    for row_name, result in run():
        print(f"{row_name}: {result}")
