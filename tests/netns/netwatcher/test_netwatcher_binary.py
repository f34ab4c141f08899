"""The real ``netwatcher`` console script as a DaemonSet would run it, against the stand-in.

The process manages a throwaway "node" namespace (``--netns``), serves its probes on a free
port, logs JSON on stderr and stops cleanly on SIGTERM, leaving the host interfaces in place.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.io.kube import KubernetesApi
from tests.kubeapi.testing import RunningKubeApi
from tests.netns.netwatcher.harness import (
    Node,
    connect,
    create_network,
    install_crds,
    network,
    node_with_parents,
    wait_until,
)
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.netns, pytest.mark.e2e, requires_netns]


def netwatcher_command() -> list[str]:
    installed = Path(sys.executable).parent / "netwatcher"
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", "import sys; from netwatcher.cli import main; sys.exit(main())"]


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def probe(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture
def api(kubeapi: RunningKubeApi) -> Iterator[KubernetesApi]:
    client = connect(kubeapi)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def node() -> Iterator[Node]:
    with node_with_parents({"parent0": "10.77.0.1/24"}) as created:
        yield created


def test_binary_serves_probes_repairs_drift_and_stops_on_sigterm(
    api: KubernetesApi, kubeapi: RunningKubeApi, node: Node, tmp_path: Path
):
    install_crds(api, ["DanmNet"])
    create_network(api, network("DanmNet", "bin", host_device="parent0", vxlan=77))
    log_path = tmp_path / "netwatcher.log"
    command = [
        *netwatcher_command(),
        f"--kubeconfig={kubeapi.kubeconfig_path}",
        "--node-name=node-b",
        f"--netns={node.path}",
        "--health-port=0",
        "--health-address=127.0.0.1",
        "--resync-seconds=0.5",
    ]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
    try:
        first = node.wait_link("vx_bin")
        port = wait_until(
            lambda: next((r["port"] for r in log_lines(log_path) if "port" in r), None),
            "the health server's port in the log",
        )
        assert probe(port, "/healthz") == 200
        wait_until(lambda: probe(port, "/readyz") == 200, "ready")

        node.ip("link", "delete", "vx_bin")
        again = node.wait_link("vx_bin", what="vx_bin recreated by the resync")
        assert again["ifindex"] != first["ifindex"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert node.link("vx_bin") is not None, "links stay when netwatcher stops"
    records = log_lines(log_path)
    assert {r["component"] for r in records} == {"netwatcher"}
    created = [r for r in records if r["msg"] == "create host interface"]
    assert [r["interface"] for r in created] == ["vx_bin", "vx_bin"]
    assert records[-1]["msg"] == "netwatcher stopped"


def test_binary_with_an_unreadable_kubeconfig_exits_2_with_the_reason(tmp_path: Path):
    done = subprocess.run(
        [*netwatcher_command(), f"--kubeconfig={tmp_path / 'missing'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot load Kubernetes client config" in done.stderr
    assert str(tmp_path / "missing") in done.stderr
