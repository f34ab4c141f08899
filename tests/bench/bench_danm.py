"""What a Pod start costs through the real ``danm`` binary, next to the reference plugins.

Everything runs as a container runtime would run it: one ``danm`` process per call, started in a
throwaway host namespace with ``ip netns exec``, the network config on stdin, delegating to
Debian's ``macvlan`` with DANM IPAM (``fakeipam``) against the API stand-in (tests/kubeapi,
in this process, reached through a forwarder into the namespace). Measured:

* ADD and DEL latency (median, p95) for one interface and for four (one Pod, four connections);
* the reference ``macvlan`` + ``host-local`` ADD/DEL in the same run (the same parent device),
  and DANM's ADD as a multiple of it;
* the wall time of 100 concurrent ADDs (100 processes, 100 Pods) on one network.

Needs root and ``ip``; prints a single "skipped" row otherwise. Run alone with
``.venv/bin/python -m tests.bench.bench_danm`` or through ``make bench``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from common.io.kube import KubernetesApi
from tests.e2e.cni.harness import REFERENCE_PLUGINS, Cluster, DanmRunner, NetnsForwarder
from tests.kubeapi.testing import start_in_thread
from tests.netns_helpers import (
    create_netns,
    create_veth_pair,
    delete_netns,
    kernel_tests_unavailable,
    remove_leftovers,
    throwaway_netns,
)

ROUNDS = 15
CONCURRENT = 100
NS = "bench"
PARENT = "parent0"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _stats(samples: list[float]) -> str:
    return f"median {_ms(statistics.median(samples))}, p95 {_ms(_p95(samples))} (n={len(samples)})"


@contextlib.contextmanager
def _netnses(count: int) -> Iterator[list[str]]:
    names: list[str] = []
    try:
        for _ in range(count):
            names.append(create_netns())
        yield [f"/var/run/netns/{n}" for n in names]
    finally:
        for name in names:
            delete_netns(name)


def _timed(runner: DanmRunner, command: str, **kwargs: object) -> float:
    started = time.perf_counter()
    outcome = runner.run(command, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    if outcome.returncode != 0:
        raise RuntimeError(f"danm {command} failed: {outcome.stdout} {outcome.stderr}")
    return elapsed


def _danm_rounds(
    cluster: Cluster, runner: DanmRunner, interfaces: int, tag: str
) -> tuple[list[float], list[float]]:
    adds: list[float] = []
    dels: list[float] = []
    with _netnses(ROUNDS) as netnses:
        for round_no, netns in enumerate(netnses):
            pod = f"{tag}-{round_no}"
            cluster.pod(pod, NS, connections=[{"network": "ext", "ip": "dynamic"}] * interfaces)
            cid = f"c-{pod}"
            adds.append(_timed(runner, "ADD", container_id=cid, netns=netns, pod=(NS, pod)))
            dels.append(_timed(runner, "DEL", container_id=cid, netns=netns, pod=(NS, pod)))
    return adds, dels


def _reference_rounds(host: str, workdir: Path) -> tuple[list[float], list[float]]:
    config = json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "ref",
            "type": "macvlan",
            "master": PARENT,
            "ipam": {
                "type": "host-local",
                "subnet": "10.71.0.0/24",
                "dataDir": str(workdir / "host-local"),
            },
        }
    ).encode()
    adds: list[float] = []
    dels: list[float] = []
    with _netnses(ROUNDS) as netnses:
        for round_no, netns in enumerate(netnses):
            for command, samples in (("ADD", adds), ("DEL", dels)):
                env = {
                    "CNI_COMMAND": command,
                    "CNI_CONTAINERID": f"ref-{round_no}",
                    "CNI_NETNS": netns,
                    "CNI_IFNAME": "eth0",
                    "CNI_PATH": REFERENCE_PLUGINS,
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                }
                started = time.perf_counter()
                done = subprocess.run(
                    ["ip", "netns", "exec", host, f"{REFERENCE_PLUGINS}/macvlan"],
                    input=config,
                    env=env,
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
                samples.append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise RuntimeError(f"reference macvlan {command} failed: {done.stdout!r}")
    return adds, dels


def _concurrent(cluster: Cluster, runner: DanmRunner) -> float:
    pods = [f"many-{i}" for i in range(CONCURRENT)]
    for pod in pods:
        cluster.pod(pod, NS, connections=[{"network": "wide", "ip": "dynamic"}])
    config = json.dumps(runner.config(delegateTimeoutSeconds=300)).encode()
    with _netnses(CONCURRENT) as netnses:
        started = time.perf_counter()
        processes = [
            runner.start("ADD", container_id=f"c-{pod}", netns=netns, pod=(NS, pod))
            for pod, netns in zip(pods, netnses, strict=True)
        ]
        failures = 0
        for process in processes:
            process.communicate(config, timeout=600)
            failures += process.returncode != 0
        wall = time.perf_counter() - started
        if failures:
            raise RuntimeError(f"{failures} of {CONCURRENT} concurrent ADDs failed")
        for pod, netns in zip(pods, netnses, strict=True):
            runner.run("DEL", container_id=f"c-{pod}", netns=netns, pod=(NS, pod))
    return wall


def run() -> list[tuple[str, str]]:
    reason = kernel_tests_unavailable()
    if reason:
        return [("danm ADD/DEL", f"skipped: {reason}")]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="danm-bench-") as tmp:
        workdir = Path(tmp)
        with (
            start_in_thread(workdir / "kubeapi") as kubeapi,
            throwaway_netns() as host,
            throwaway_netns() as peer,
        ):
            create_veth_pair(host, PARENT, "peer0", peer_netns=peer)
            url = urlparse(kubeapi.url)
            forwarder = NetnsForwarder(host, (url.hostname or "127.0.0.1", url.port or 443))
            api = KubernetesApi.from_api_client(kubeapi.api_client())
            try:
                cluster = Cluster(api)
                cluster.install_crds()
                cluster.namespace(NS)
                for name, cidr in (("ext", "10.70.0.0/24"), ("wide", "10.72.0.0/24")):
                    cluster.network(
                        "DanmNet",
                        name,
                        namespace=NS,
                        network_type="macvlan",
                        host_device=PARENT,
                        cidr=cidr,
                    )
                runner = DanmRunner(host, kubeapi.kubeconfig_path, workdir / "node")
                runner.cni_dir.mkdir(parents=True)
                _timed(runner, "STATUS", config=runner.config(cniVersion="1.1.0"))  # warm-up
                ref_add, ref_del = _reference_rounds(host, workdir)
                one_add, one_del = _danm_rounds(cluster, runner, 1, "one")
                four_add, four_del = _danm_rounds(cluster, runner, 4, "four")
                wall = _concurrent(cluster, runner)
            finally:
                api.close()
                forwarder.stop()
    one = statistics.median(one_add)
    rows += [
        ("danm ADD, 1 interface (macvlan + DANM IPAM)", _stats(one_add)),
        ("danm DEL, 1 interface", _stats(one_del)),
        ("danm ADD, 4 interfaces", _stats(four_add)),
        ("danm DEL, 4 interfaces", _stats(four_del)),
        ("reference macvlan + host-local ADD", _stats(ref_add)),
        ("reference macvlan + host-local DEL", _stats(ref_del)),
        (
            "danm 1-interface ADD / reference ADD (medians)",
            f"{one / statistics.median(ref_add):.1f}x",
        ),
        (
            "danm 4-interface ADD / 1-interface ADD (medians)",
            f"{statistics.median(four_add) / one:.2f}x",
        ),
        (f"{CONCURRENT} concurrent ADDs on one network (wall)", f"{wall:.1f} s"),
    ]
    remove_leftovers()
    return rows


if __name__ == "__main__":
    for name, value in run():
        print(f"{name}: {value}")
    sys.exit(0)
