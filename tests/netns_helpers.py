"""Throwaway network namespaces and veth pairs for the real-kernel test tiers.

Shared by ``tests/netns`` (host kernel) and ``tests/vm`` (QEMU guest). Everything is built with
the ``ip`` tool, not with the adapter under test, so a bug in ``common.io.netlink`` cannot hide
itself in its own fixtures. Every name starts with ``PREFIX`` so a session-end sweep
(``remove_leftovers``) can delete whatever a crashed test left behind without touching anything
else on the machine. Nothing here creates links in the caller's own namespace: a test that needs
a "host" side gets a throwaway host namespace too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PREFIX = "danmt-"
NETNS_DIR = Path("/var/run/netns")
_IP_TIMEOUT_SECONDS = 30


def unique_name(tag: str = "") -> str:
    """``danmt-<tag><random>``; short enough (<= 15 bytes for tag <= 1 char) for a link name."""
    return f"{PREFIX}{tag}{secrets.token_hex(4)}"


def unique_netns_name() -> str:
    """``danmt-<pid>-<random>``: the owner's pid lets the sweep spare other live test runs."""
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"


def _owner_is_gone_or_us(netns_name: str) -> bool:
    owner = netns_name[len(PREFIX) :].split("-", 1)[0]
    if not owner.isdigit():
        return True
    pid = int(owner)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def kernel_tests_unavailable() -> str | None:
    """Why the real-kernel tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs the iproute2 'ip' tool"
    return None


requires_netns = pytest.mark.skipif(
    kernel_tests_unavailable() is not None, reason=kernel_tests_unavailable() or ""
)
"""Skip marker for tests that create namespaces (apply together with ``pytest.mark.netns``)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip <args>``; on failure raise with its stderr (``check=False`` returns it)."""
    result = subprocess.run(
        ["ip", *args],
        capture_output=True,
        text=True,
        timeout=_IP_TIMEOUT_SECONDS,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


def create_netns(name: str | None = None) -> str:
    """Create a namespace (loopback up) and return its name; pair with ``delete_netns``."""
    name = name or unique_netns_name()
    if not name.startswith(PREFIX):
        raise ValueError(f"test namespaces must start with {PREFIX!r}: {name!r}")
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    return name


def delete_netns(name: str) -> None:
    """Delete a namespace if it still exists (links inside it go with it)."""
    if (NETNS_DIR / name).exists():
        ip("netns", "delete", name, check=False)


@contextlib.contextmanager
def throwaway_netns(name: str | None = None) -> Iterator[str]:
    """A fresh namespace for the ``with`` block, deleted afterwards even on failure."""
    created = create_netns(name)
    try:
        yield created
    finally:
        delete_netns(created)


def create_veth_pair(netns: str, name: str, peer: str, *, peer_netns: str | None = None) -> None:
    """veth ``name`` in ``netns`` and ``peer`` in ``peer_netns`` (default: same), both up."""
    ip("-n", netns, "link", "add", name, "type", "veth", "peer", "name", peer)
    if peer_netns is not None and peer_netns != netns:
        ip("-n", netns, "link", "set", peer, "netns", peer_netns)
    ip("-n", netns, "link", "set", name, "up")
    ip("-n", peer_netns or netns, "link", "set", peer, "up")


def add_address(netns: str, device: str, cidr: str) -> None:
    """``ip addr add`` (IPv6 with nodad so it is usable at once)."""
    extra = ["nodad"] if ":" in cidr else []
    ip("-n", netns, "addr", "add", cidr, "dev", device, *extra)


def kernel_supports(kind: str) -> bool:
    """Whether ``ip link add type <kind>`` works here (probed in a throwaway namespace)."""
    if kernel_tests_unavailable() is not None:
        return False
    with throwaway_netns() as ns:
        if kind in ("ipvlan", "vlan", "macvlan"):
            ip("-n", ns, "link", "add", "probep", "type", "veth", "peer", "name", "probeq")
            extra = {"ipvlan": ["mode", "l2"], "vlan": ["id", "7"], "macvlan": []}[kind]
            result = ip(
                "-n",
                ns,
                "link",
                "add",
                "link",
                "probep",
                "probe",
                "type",
                kind,
                *extra,
                check=False,
            )
        else:
            result = ip("-n", ns, "link", "add", "probe", "type", kind, check=False)
        return result.returncode == 0


def remove_leftovers() -> list[str]:
    """Delete leftover ``danmt-`` namespaces and ``danmt-`` links in our namespace; say which.

    A namespace is left alone while the process named in it (``danmt-<pid>-...``) is alive and
    is not this one, so a concurrent test run on the same machine keeps its namespaces.
    """
    removed: list[str] = []
    if kernel_tests_unavailable() is not None:
        return removed
    if NETNS_DIR.is_dir():
        for entry in sorted(NETNS_DIR.iterdir()):
            if entry.name.startswith(PREFIX) and _owner_is_gone_or_us(entry.name):
                ip("netns", "delete", entry.name, check=False)
                removed.append(f"netns {entry.name}")
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        # NB: "-o" lines look like "12: danmt-ab12@if3: <...>"; strip the "@peer" suffix.
        fields = line.split(":", 2)
        if len(fields) >= 2:
            link = fields[1].strip().split("@", 1)[0]
            if link.startswith(PREFIX):
                ip("link", "delete", link, check=False)
                removed.append(f"link {link}")
    return removed


@dataclass(frozen=True)
class HostAndPod:
    """A throwaway "host" namespace with an addressed veth parent, and an empty "pod" one.

    ``parent`` lives in ``host`` (addresses ``parent_v4``/``parent_v6``); its veth ``peer`` lives
    in ``peer_netns``, so frames a child of ``parent`` sends can be captured there.
    """

    host: str
    pod: str
    peer_netns: str
    parent: str = "parent0"
    peer: str = "peer0"
    parent_v4: str = "10.77.0.1/24"
    parent_v6: str = "fd77::1/64"

    @property
    def host_path(self) -> str:
        return netns_path(self.host)

    @property
    def pod_path(self) -> str:
        return netns_path(self.pod)

    @property
    def peer_path(self) -> str:
        return netns_path(self.peer_netns)


@contextlib.contextmanager
def host_and_pod() -> Iterator[HostAndPod]:
    """Build a ``HostAndPod`` and tear all three namespaces down afterwards, even on failure."""
    with throwaway_netns() as host, throwaway_netns() as pod, throwaway_netns() as peer_ns:
        world = HostAndPod(host=host, pod=pod, peer_netns=peer_ns)
        create_veth_pair(host, world.parent, world.peer, peer_netns=peer_ns)
        add_address(host, world.parent, world.parent_v4)
        add_address(host, world.parent, world.parent_v6)
        yield world
