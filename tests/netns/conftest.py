"""Fixtures of the host-kernel tier: throwaway namespaces, the real adapter, a leftover sweep.

Tests here run only as root with ``ip`` available (``tests.netns_helpers.requires_netns``) and
never create anything in the runner's own namespace: "host" is a throwaway namespace too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.io.netlink import PyrouteNetlink
from tests.netns_helpers import HostAndPod, host_and_pod, kernel_tests_unavailable, remove_leftovers


@pytest.fixture(scope="session", autouse=True)
def _sweep_leftover_namespaces() -> Iterator[None]:
    """Safety net: whatever a crashed test left (``danmt-*``) is deleted at session end."""
    yield
    if kernel_tests_unavailable() is None:
        remove_leftovers()


@pytest.fixture
def world() -> Iterator[HostAndPod]:
    """Host namespace with an addressed veth ``parent0``, an empty pod namespace, a peer one."""
    with host_and_pod() as created:
        yield created


@pytest.fixture
def netlink() -> PyrouteNetlink:
    """The adapter in per-call mode (every call opens and closes its own sockets)."""
    return PyrouteNetlink()
