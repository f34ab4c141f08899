"""The shared namespace helpers clean up after themselves and after crashed runs only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.netns_helpers import (
    NETNS_DIR,
    PREFIX,
    create_netns,
    delete_netns,
    host_and_pod,
    ip,
    remove_leftovers,
    requires_netns,
    throwaway_netns,
)

pytestmark = [pytest.mark.netns, requires_netns]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _fail_inside_a_throwaway_netns(seen: list[str]) -> None:
    with throwaway_netns() as name:
        seen.append(name)
        assert (NETNS_DIR / name).exists()
        raise RuntimeError("test body failed")


def test_throwaway_netns_is_removed_even_when_the_block_fails():
    seen: list[str] = []

    with pytest.raises(RuntimeError, match="test body failed"):
        _fail_inside_a_throwaway_netns(seen)

    assert seen
    assert not (NETNS_DIR / seen[0]).exists()


def test_host_and_pod_builds_an_addressed_parent_and_removes_everything():
    with host_and_pod() as world:
        names = (world.host, world.pod, world.peer_netns)
        shown = ip("-n", world.host, "-o", "addr", "show", "dev", world.parent).stdout
        assert "10.77.0.1/24" in shown
        assert "fd77::1/64" in shown

    assert not any((NETNS_DIR / name).exists() for name in names)


def test_sweep_removes_namespaces_of_dead_runs_and_spares_live_ones():
    orphan = create_netns(f"{PREFIX}{_dead_pid()}-orphan")
    # NB: pid 1 is alive and is not us: a namespace "owned" by it stands for a concurrent run.
    live = create_netns(f"{PREFIX}1-live")
    try:
        removed = remove_leftovers()

        assert f"netns {orphan}" in removed
        assert not Path(NETNS_DIR / orphan).exists()
        assert Path(NETNS_DIR / live).exists()
    finally:
        delete_netns(orphan)
        delete_netns(live)


def test_only_prefixed_namespaces_can_be_created():
    with pytest.raises(ValueError, match=PREFIX):
        create_netns("not-ours")
