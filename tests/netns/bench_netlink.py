"""Time DANM's per-interface netlink work on the host kernel (root; not collected by pytest).

``python -m tests.netns.bench_netlink [rounds]`` builds a HostAndPod world and times, per round,
the built-in-plugin sequence with macvlan standing in for ipvlan: create on the host, move +
rename into the pod, IPv4 + IPv6 (nodad) address, up, IPv6 sysctls, one main route, a policy rule
and a table route, gratuitous ARP; then the DEL (delete in the pod). Reported once with a
``with PyrouteNetlink()`` session (sockets reused) and once with a socket per call.
"""

from __future__ import annotations

import ipaddress
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from common.io.netlink import PyrouteNetlink, ipv6_interface_sysctls, route_specs
from tests.netns_helpers import HostAndPod, host_and_pod, kernel_tests_unavailable, throwaway_netns

ROUTES = route_specs({"10.88.0.0/16": "10.77.0.254"}, family=4)
DEFAULT = route_specs({"0.0.0.0/0": "10.77.0.254"}, family=4)


def add_interface(netlink: PyrouteNetlink, world: HostAndPod) -> None:
    child = netlink.create_macvlan(world.parent, netns=world.host_path)
    netlink.move_link(child.name, world.pod_path, new_name="eth1", netns=world.host_path)
    netlink.add_address("eth1", "10.77.0.5/24", netns=world.pod_path)
    netlink.add_address("eth1", "fd77::5/64", netns=world.pod_path)
    netlink.set_link_up("eth1", netns=world.pod_path)
    netlink.set_interface_sysctls("eth1", ipv6_interface_sysctls(True), netns=world.pod_path)
    netlink.add_routes(ROUTES, device="eth1", netns=world.pod_path)
    netlink.add_rule(ipaddress.ip_interface("10.77.0.5/24"), table=100, netns=world.pod_path)
    netlink.add_routes(DEFAULT, device="eth1", table=100, netns=world.pod_path)
    netlink.announce_ipv4("eth1", ipaddress.IPv4Address("10.77.0.5"), netns=world.pod_path)


def delete_interface(netlink: PyrouteNetlink, world: HostAndPod) -> None:
    netlink.delete_link("eth1", netns=world.pod_path)


def timed(
    step: Callable[[PyrouteNetlink, HostAndPod], None], netlink: PyrouteNetlink, world: HostAndPod
) -> list[float]:
    started = time.perf_counter()
    step(netlink, world)
    return [(time.perf_counter() - started) * 1000]


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<36} median {statistics.median(samples):7.1f} ms   "
        f"min {min(samples):7.1f} ms   max {max(samples):7.1f} ms   (n={len(samples)})"
    )


def main() -> int:
    reason = kernel_tests_unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    started = time.perf_counter()
    from common.io.netlink_pyroute import _pyroute2

    _pyroute2()
    print(f"{'first use (import pyroute2)':<36} {(time.perf_counter() - started) * 1000:7.1f} ms")
    results: dict[str, list[float]] = {"session": [], "per_call": [], "delete": []}
    with host_and_pod() as world:
        for round_number in range(rounds):
            # NB: a fresh pod namespace per round: policy rules outlive the deleted link.
            with throwaway_netns() as pod:
                round_world = replace(world, pod=pod)
                if round_number % 2:
                    with PyrouteNetlink() as session:
                        results["session"] += timed(add_interface, session, round_world)
                else:
                    netlink = PyrouteNetlink()
                    results["per_call"] += timed(add_interface, netlink, round_world)
                netlink = PyrouteNetlink()
                results["delete"] += timed(delete_interface, netlink, round_world)
    report("ADD one interface, session", results["session"])
    report("ADD one interface, socket per call", results["per_call"])
    report("DEL one interface, socket per call", results["delete"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
