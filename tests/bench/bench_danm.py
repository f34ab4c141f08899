"""What a Pod start costs through the real ``danm`` binary, next to the reference plugins.

Everything runs as a container runtime would run it: one ``danm`` process per call, started in a
throwaway host namespace with ``ip netns exec``, the network config on stdin, delegating to
Debian's ``macvlan`` with DANM IPAM (``fakeipam``) against the API stand-in (tests/kubeapi,
in this process, reached through a forwarder into the namespace). Measured:

* ADD and DEL latency (median, p95) for one interface and for four (one Pod, four connections);
* the reference ``macvlan`` + ``host-local`` ADD/DEL in the same run (the same parent device),
  and DANM's ADD as a multiple of it;
* the wall time of 100 concurrent ADDs (100 processes, 100 Pods) on one network.

Two forms of the binaries are measured side by side, rounds interleaved so load changes hit both:

* **bundle**, the production form: ``danm`` and ``fakeipam`` built by ``common.cni.bundle``
  (``make cni-bundle``) into a temporary directory, run by the node's ``/usr/bin/python3 -IS``
  (the venv's base interpreter if that one is missing or another minor version);
* **console script**, the development form: the virtualenv's entry-point scripts (editable
  install, ``site`` and its ``.pth`` hooks on every start).

The machine is shared, so the table also carries the floor of each form measured in the same
run (``python -c pass`` per interpreter and a bundled VERSION call) and ``/proc/loadavg``.

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

from common.cni.bundle import build
from common.io.kube import KubernetesApi
from tests.e2e.cni.harness import REFERENCE_PLUGINS, Cluster, DanmRunner, NetnsForwarder
from tests.e2e.cni.test_bundle import BundledDanmRunner, bundle_interpreter
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
FLOOR_ROUNDS = 15
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
    cluster: Cluster, runners: dict[str, DanmRunner], interfaces: int, tag: str
) -> dict[str, tuple[list[float], list[float]]]:
    """ADD then DEL of a fresh Pod per round and form, the forms taking turns in each round."""
    samples: dict[str, tuple[list[float], list[float]]] = {form: ([], []) for form in runners}
    with _netnses(ROUNDS * len(runners)) as netnses:
        free = iter(netnses)
        for round_no in range(ROUNDS):
            for form, runner in runners.items():
                netns = next(free)
                pod = f"{tag}-{form[0]}{round_no}"
                connections = [{"network": "ext", "ip": "dynamic"}] * interfaces
                cluster.pod(pod, NS, connections=connections)
                cid = f"c-{pod}"
                adds, dels = samples[form]
                adds.append(_timed(runner, "ADD", container_id=cid, netns=netns, pod=(NS, pod)))
                dels.append(_timed(runner, "DEL", container_id=cid, netns=netns, pod=(NS, pod)))
    return samples


def _process_floor(argv: list[str], env: dict[str, str] | None = None) -> list[float]:
    """Wall time of a process that does (next to) nothing, as the same runner would see it."""
    samples = []
    for _ in range(FLOOR_ROUNDS):
        started = time.perf_counter()
        subprocess.run(argv, input=b"", env=env, capture_output=True, check=True, timeout=60)
        samples.append(time.perf_counter() - started)
    return samples


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


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


def _concurrent(cluster: Cluster, runner: DanmRunner, tag: str) -> float:
    pods = [f"{tag}-{i}" for i in range(CONCURRENT)]
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
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="danm-bench-") as tmp:
        workdir = Path(tmp)
        interpreter = bundle_interpreter()
        bundle_dir = workdir / "cni-bin"
        build(bundle_dir, interpreter)
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
                runners: dict[str, DanmRunner] = {
                    "bundle": BundledDanmRunner(
                        host, kubeapi.kubeconfig_path, workdir / "node-b", bin_dir=bundle_dir
                    ),
                    "console script": DanmRunner(host, kubeapi.kubeconfig_path, workdir / "node-s"),
                }
                for runner in runners.values():
                    runner.cni_dir.mkdir(parents=True)
                    _timed(runner, "STATUS", config=runner.config(cniVersion="1.1.0"))  # warm-up
                interpreter_path = interpreter.split()[0]
                floors = {
                    f"{interpreter} -c pass": _process_floor([*interpreter.split(), "-c", "pass"]),
                    f"{sys.executable} -c pass": _process_floor([sys.executable, "-c", "pass"]),
                    "bundled danm VERSION": _process_floor(
                        [str(bundle_dir / "danm")], {"CNI_COMMAND": "VERSION"}
                    ),
                }
                ref_add, ref_del = _reference_rounds(host, workdir)
                one = _danm_rounds(cluster, runners, 1, "one")
                four = _danm_rounds(cluster, runners, 4, "four")
                walls = {
                    form: _concurrent(cluster, r, f"many{i}")
                    for i, (form, r) in enumerate(runners.items())
                }
            finally:
                api.close()
                forwarder.stop()
    remove_leftovers()
    ref = statistics.median(ref_add)
    rows = [
        ("machine load (/proc/loadavg, before / after)", f"{load_before} / {_loadavg()}"),
        (f"bundle interpreter (node python: {interpreter_path})", interpreter),
    ]
    rows += [(f"floor: {name}", _stats(samples)) for name, samples in floors.items()]
    rows += [
        ("reference macvlan + host-local ADD", _stats(ref_add)),
        ("reference macvlan + host-local DEL", _stats(ref_del)),
    ]
    for form in runners:
        one_add, one_del = one[form]
        four_add, four_del = four[form]
        one_median = statistics.median(one_add)
        rows += [
            (f"danm ADD, 1 interface (macvlan + DANM IPAM) [{form}]", _stats(one_add)),
            (f"danm DEL, 1 interface [{form}]", _stats(one_del)),
            (f"danm ADD, 4 interfaces [{form}]", _stats(four_add)),
            (f"danm DEL, 4 interfaces [{form}]", _stats(four_del)),
            (
                f"danm 1-interface ADD / reference ADD (medians) [{form}]",
                f"{one_median / ref:.1f}x",
            ),
            (
                f"danm 4-interface ADD / 1-interface ADD (medians) [{form}]",
                f"{statistics.median(four_add) / one_median:.2f}x",
            ),
            (
                f"{CONCURRENT} concurrent ADDs on one network (wall) [{form}]",
                f"{walls[form]:.1f} s",
            ),
        ]
    return rows


if __name__ == "__main__":
    for name, value in run():
        print(f"{name}: {value}")
    sys.exit(0)
