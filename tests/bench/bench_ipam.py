"""How fast the pure IPAM core is when every step goes through the stored string form.

The CNI reads a network, decodes its base64 alloc, reserves, encodes and writes it back, once per
Pod interface; these benchmarks do the same decode -> reserve -> encode round on every step, so
the numbers are what one allocation costs the CNI before any API round trip.

Run alone with `.venv/bin/python -m tests.bench.bench_ipam`, or through `make bench`, which collects
`run()` from every `bench_*` module.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import time
from collections.abc import Callable

from common.ipam import ipv4, ipv6, vni
from common.ipam.bitarray import BitArray
from common.ipam.errors import AddressExhausted
from common.ipam.ipv4 import Ipv4Pool
from common.ipam.ipv6 import Ipv6Pool

_REPEATS = 31


def _format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _median_time(action: Callable[[], object], repeats: int = _REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _fill_whole_slash16(*, next_fit: bool) -> tuple[float, int]:
    pool = Ipv4Pool(cidr="10.1.0.0/16", alloc=ipv4.init_alloc("10.1.0.0/16"))
    handed_out = 0
    started = time.perf_counter()
    while True:
        if not next_fit:
            # NB: without a cursor every step is the seed's first-free scan from the pool start.
            pool = dataclasses.replace(pool, last_ip="")
        try:
            pool, _ = ipv4.reserve(pool, "dynamic", network="bench")
        except AddressExhausted:
            break
        handed_out += 1
    return time.perf_counter() - started, handed_out


def _nearly_full(length: int, *, free_fraction: float, tail_only: bool, seed: int) -> BitArray:
    """A bit array with about `free_fraction` of its bits clear (never the first or last bit)."""
    bits = BitArray.from_bytes(b"\xff" * ((length + 7) // 8), length)
    free_count = max(1, int(length * free_fraction))
    if tail_only:
        candidates: list[int] = list(range(length - 1 - free_count, length - 1))
    else:
        candidates = random.Random(seed).sample(range(1, length - 1), free_count)
    for position in candidates:
        bits.clear(position)
    return bits


def _one_ipv4_step(pool: Ipv4Pool) -> Callable[[], object]:
    return lambda: ipv4.reserve(pool, "dynamic", network="bench")


def _one_ipv6_step(pool: Ipv6Pool) -> Callable[[], object]:
    return lambda: ipv6.reserve(pool, "dynamic", network="bench")


def run() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []

    for next_fit in (True, False):
        elapsed, count = _fill_whole_slash16(next_fit=next_fit)
        mode = "next-fit (lastIp)" if next_fit else "first-free (no lastIp)"
        rows.append(
            (
                f"IPv4 /16: allocate all {count} addresses one by one, {mode}",
                f"{_format_seconds(elapsed)} total, {_format_seconds(elapsed / count)} each",
            )
        )

    cidr16 = "10.1.0.0/16"
    length16 = 2**16
    scattered = _nearly_full(length16, free_fraction=0.01, tail_only=False, seed=16).to_base64()
    tail_free = _nearly_full(length16, free_fraction=0.01, tail_only=True, seed=16).to_base64()
    cases16 = [
        ("first-free, free addresses at the end (worst case)", tail_free, ""),
        ("first-free, free addresses scattered", scattered, ""),
        ("next-fit, lastIp mid-pool, free addresses scattered", scattered, "10.1.128.0/16"),
    ]
    for label, alloc, last_ip in cases16:
        pool = Ipv4Pool(cidr=cidr16, alloc=alloc, last_ip=last_ip)
        rows.append(
            (
                f"IPv4 /16 99% full: one allocation, {label}",
                f"{_format_seconds(_median_time(_one_ipv4_step(pool)))} median",
            )
        )

    cidr9 = "10.0.0.0/9"
    tail_free9 = _nearly_full(2**23, free_fraction=0.01, tail_only=True, seed=9).to_base64()
    pool9 = Ipv4Pool(cidr=cidr9, alloc=tail_free9)
    rows.append(
        (
            "IPv4 /9 (largest, 1 MiB alloc) 99% full: one allocation, first-free worst case",
            f"{_format_seconds(_median_time(_one_ipv4_step(pool9), repeats=11))} median",
        )
    )

    pool_cidr6 = "fd00::/105"
    length6 = 2**23
    fresh6 = Ipv6Pool(net6="fd00::/64", cidr=pool_cidr6, alloc6=ipv6.init_alloc(pool_cidr6))
    rows.append(
        (
            "IPv6 /105 pool (1 MiB alloc6), empty: one allocation",
            f"{_format_seconds(_median_time(_one_ipv6_step(fresh6), repeats=11))} median",
        )
    )
    for tail_only, label in ((True, "first-free worst case"), (False, "next-fit, scattered")):
        alloc6 = _nearly_full(length6, free_fraction=0.01, tail_only=tail_only, seed=6)
        pool6 = dataclasses.replace(
            fresh6, alloc6=alloc6.to_base64(), last_ip="" if tail_only else "fd00::40:0/64"
        )
        rows.append(
            (
                f"IPv6 /105 pool 99% full: one allocation, {label}",
                f"{_format_seconds(_median_time(_one_ipv6_step(pool6), repeats=11))} median",
            )
        )

    vni_alloc = vni.new_vni_alloc()

    def reserve_one_vni() -> object:
        return vni.reserve_vni(vni_alloc, "1-5000", profile_name="bench")

    rows.append(
        (
            "VNI: reserve from an empty 5001-bit alloc, range 1-5000",
            f"{_format_seconds(_median_time(reserve_one_vni))} median",
        )
    )
    return rows


def main() -> int:
    print("| benchmark | result |")
    print("|---|---|")
    for name, result in run():
        print(f"| {name} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
