"""``make demo`` runs, passes and leaves nothing behind.

The demo is started exactly as the Makefile's recipe starts it (``python -m integration.demo up``
from the repository root, with the virtualenv's interpreter); ``make install`` itself is left
out because the test already runs from that installed virtualenv. Whatever happens, the test
ends with ``python -m integration.demo down``, so a failed run cannot leave namespaces or
processes behind for the next test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.demo import host, scenario, steps

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

REPO = Path(__file__).resolve().parents[3]
DEMO_TIMEOUT_S = 280


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs the iproute2 'ip' tool"
    if shutil.which("kubectl") is None and not (Path(sys.executable).parent / "kubectl").exists():
        return "needs kubectl"
    if not (steps.REFERENCE_PLUGINS / "macvlan").exists():
        return "needs the reference CNI plugins in /usr/lib/cni"
    return None


def _run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "integration.demo", command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def demo_down_afterwards() -> Iterator[None]:
    try:
        yield
    finally:
        _run("down")


@pytest.mark.timeout(DEMO_TIMEOUT_S + 60)
@pytest.mark.usefixtures("demo_down_afterwards")
def test_demo_passes_and_leaves_nothing_behind() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)

    done = _run("up")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "DEMO PASSED" in output
    for service in ("vnf-external-svc", "vnf-internal-processor", "vnf-internal-lb"):
        assert f"Endpoints {service} lists" in output, output
    assert "traffic checks passed" in output
    assert "FAIL" not in output, output
    assert "nothing left behind" in output
    assert steps.leftovers(host.WORKDIR) == []


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("demo_down_afterwards")
def test_demo_down_removes_what_an_interrupted_run_left() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    # NB: what a killed run leaves: a node namespace with links, a Pod namespace, a process
    # carrying the work dir, the work dir with its records.
    host.WORKDIR.mkdir(parents=True, exist_ok=True)
    processes = host.Processes(host.WORKDIR)
    processes.start("sleeper", ["sleep", "300", str(host.WORKDIR)])
    host.add_netns("danmdemo-node1")
    host.add_netns("danmdemo-node2")
    host.wire_nodes(scenario.NODES, steps.UNDERLAY)
    host.add_netns("danmdemo-loadbalancer-1")
    assert steps.leftovers(host.WORKDIR) != []

    done = _run("down")

    assert done.returncode == 0, done.stdout + done.stderr
    assert steps.leftovers(host.WORKDIR) == []
    processes.children[0].process.wait(timeout=10)
