"""netwatcher: how fast a new network's host interface is up, and what a 500-network pass costs.

Everything runs on this machine's kernel inside throwaway namespaces (root needed), against the
in-process API stand-in; netwatcher runs in-process as well (a thread, as in the tests), so API
server, controller and the measuring loop share one interpreter: the latencies are an upper
bound for a netwatcher that has a process to itself.

* latency: one DanmNet with a VxLAN is created at a time; the clock runs from just before the
  create request until the kernel reports ``vx_<NetworkID>`` up (polled on a netlink socket
  every millisecond). Median over 50 networks.
* 500 networks: ``desired_state`` alone; one ``reconcile`` pass that creates 500 VxLAN links on
  a veth parent; a no-op pass over the 500 existing links (median of 5); and end to end, a
  netwatcher started with 500 networks already in the API until all 500 links are up.

Run: ``sudo .venv/bin/python -m tests.bench netwatcher``
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.io.netlink import PyrouteNetlink
from netwatcher.desired import NetworkObject, desired_state
from netwatcher.reconcile import reconcile
from tests.kubeapi.testing import start_in_thread
from tests.netns.netwatcher.harness import (
    Node,
    connect,
    create_network,
    install_crds,
    network,
    node_with_parents,
    running_netwatcher,
)
from tests.netns_helpers import kernel_tests_unavailable

LATENCY_SAMPLES = 50
SCALE = 500
STEADY_REPEATS = 5
# NB: every VxLAN link joins its multicast group on one shared socket; the per-namespace limit
# (net.ipv4.igmp_max_memberships, 20 by default) must exceed the number of links.
NODE: dict[str, Any] = {"parents": {"parent0": "10.77.0.1/24"}, "igmp_max_memberships": 2 * SCALE}
POLL_S = 0.001
TIMEOUT_S = 120.0
_IFF_UP = 0x1


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class LinkPoller:
    """A netlink socket inside the node namespace, asking for one link's state."""

    def __init__(self, node: Node) -> None:
        from pyroute2 import IPRoute

        self._ipr: Any = IPRoute(netns=node.path, flags=0)

    def close(self) -> None:
        self._ipr.close()

    def up_links(self) -> int:
        return sum(1 for msg in self._ipr.link("dump") if msg["flags"] & _IFF_UP)

    def wait_up(self, name: str) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                (msg,) = self._ipr.link("get", ifname=name)
                if msg["flags"] & _IFF_UP:
                    return
            except NetlinkError:
                pass
            time.sleep(POLL_S)
        raise TimeoutError(f"{name} did not come up within {TIMEOUT_S} s")

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(POLL_S)


def _networks(count: int) -> list[dict[str, Any]]:
    return [
        network("DanmNet", f"n{i}", host_device="parent0", vxlan=1000 + i) for i in range(count)
    ]


def bench_creation_to_up(workdir: Path) -> list[tuple[str, str]]:
    samples: list[float] = []
    with start_in_thread(workdir / "kubeapi") as kubeapi, node_with_parents(**NODE) as node:
        api = connect(kubeapi)
        poller = LinkPoller(node)
        try:
            install_crds(api, ["DanmNet"])
            with running_netwatcher(api, node, resync_s=300.0) as watcher:
                poller.wait_for(lambda: watcher.readiness() is None, "informers synced")
                for body in _networks(LATENCY_SAMPLES):
                    started = time.monotonic()
                    create_network(api, body)
                    poller.wait_up(f"vx_{body['spec']['NetworkID']}")
                    samples.append(time.monotonic() - started)
        finally:
            poller.close()
            api.close()
    samples.sort()
    p90 = samples[int(len(samples) * 0.9) - 1]
    return [
        (
            f"network created → VxLAN host interface up, median of {LATENCY_SAMPLES}",
            f"{_ms(statistics.median(samples))} (p90 {_ms(p90)}, max {_ms(samples[-1])})",
        )
    ]


def bench_reconcile_at_scale() -> list[tuple[str, str]]:
    objects = [NetworkObject("DanmNet", body) for body in _networks(SCALE)]
    started = time.perf_counter()
    desired = desired_state(objects)
    compute_s = time.perf_counter() - started
    if len(desired.links) != SCALE:
        raise RuntimeError(f"expected {SCALE} desired links, got {len(desired.links)}")

    with node_with_parents(**NODE) as node:
        started = time.perf_counter()
        with PyrouteNetlink() as netlink:
            cold = reconcile(netlink, desired, netns=node.path)
        cold_s = time.perf_counter() - started
        if len(cold.applied) != SCALE or cold.failures:
            raise RuntimeError(f"the cold pass failed: {cold.failures[:3]}")

        steady: list[float] = []
        for _ in range(STEADY_REPEATS):
            started = time.perf_counter()
            with PyrouteNetlink() as netlink:
                outcome = reconcile(netlink, desired_state(objects), netns=node.path)
            steady.append(time.perf_counter() - started)
            if outcome.applied:
                raise RuntimeError(f"a steady pass changed links: {outcome.applied[:3]}")
    return [
        (f"desired_state over {SCALE} networks", _ms(compute_s)),
        (f"reconcile pass creating {SCALE} VxLAN links on a veth", _ms(cold_s)),
        (
            f"reconcile pass with {SCALE} links already right (median of {STEADY_REPEATS})",
            _ms(statistics.median(steady)),
        ),
    ]


def bench_start_with_existing_networks(workdir: Path) -> list[tuple[str, str]]:
    with start_in_thread(workdir / "kubeapi-scale") as kubeapi, node_with_parents(**NODE) as node:
        api = connect(kubeapi)
        poller = LinkPoller(node)
        try:
            install_crds(api, ["DanmNet"])
            for body in _networks(SCALE):
                create_network(api, body)
            started = time.monotonic()
            with running_netwatcher(api, node, resync_s=300.0) as watcher:
                # NB: waiting on the pass, not by dumping 500 links in a loop, which would steal
                # the interpreter from the netwatcher thread being measured.
                poller.wait_for(
                    lambda: (
                        watcher.last_outcome is not None
                        and len(watcher.last_outcome.applied) == SCALE
                    ),
                    "the first pass",
                )
                elapsed = time.monotonic() - started
                # NB: lo and parent0 (+ its peer) are up too.
                if poller.up_links() != SCALE + 3:
                    raise RuntimeError(f"expected {SCALE} VxLAN links up after the pass")
        finally:
            poller.close()
            api.close()
    return [(f"netwatcher start with {SCALE} networks in the API → all links up", _ms(elapsed))]


def run() -> list[tuple[str, str]]:
    why = kernel_tests_unavailable()
    if why is not None:
        return [("netwatcher benchmarks", f"skipped: {why}")]
    with tempfile.TemporaryDirectory(prefix="bench-netwatcher-") as scratch:
        workdir = Path(scratch)
        rows = bench_creation_to_up(workdir)
        rows += bench_reconcile_at_scale()
        rows += bench_start_with_existing_networks(workdir)
    return rows


if __name__ == "__main__":
    for name, result in run():
        print(f"{name}: {result}")
