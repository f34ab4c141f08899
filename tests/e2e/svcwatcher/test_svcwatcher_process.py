"""The real ``svcwatcher`` console script, two replicas with leader election, on the stand-in.

Replica A wins the Lease and serves Endpoints; replica B stands by (ready, writing nothing).
SIGTERM to A releases the Lease, B takes over and keeps the Endpoints current; SIGTERM to B
ends the test. Every process is killed in ``finally`` whatever happens.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from common.model.resources import DANMEPS, LEASES, SERVICES
from tests.e2e.svcwatcher.harness import Cluster
from tests.kubeapi.testing import RunningKubeApi
from tests.unit.svcwatcher.builders import danmep, pod, service

pytestmark = pytest.mark.e2e

LB = {"app": "lb"}


def _command() -> list[str]:
    installed = Path(sys.executable).parent / "svcwatcher"
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", "import sys; from svcwatcher.cli import main; sys.exit(main())"]


class Replica:
    def __init__(self, kubeapi: RunningKubeApi, identity: str, log_path: Path) -> None:
        self.identity = identity
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                *_command(),
                "--kubeconfig",
                str(kubeapi.kubeconfig_path),
                "--identity",
                identity,
                "--health-port",
                "0",
                "--health-bind-address",
                "127.0.0.1",
                "--lease-duration-seconds",
                "3",
                "--renew-deadline-seconds",
                "2",
                "--retry-period-seconds",
                "0.3",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"msg": line})
        return lines

    def port(self) -> int | None:
        for line in self.logs():
            if "port" in line and "healthz" in str(line.get("msg")):
                return int(line["port"])
        if self.process.poll() is not None:
            raise AssertionError(f"{self.identity} exited: {self.log_path.read_text()}")
        return None

    def probe(self, path: str) -> int:
        port = self.port()
        assert port is not None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def terminate(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@contextmanager
def replicas(kubeapi: RunningKubeApi, tmp_path: Path, *names: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for name in names:
            started.append(Replica(kubeapi, name, tmp_path / f"{name}.log"))
        yield started
    finally:
        for replica in started:
            replica.kill()


def _holder(cluster: Cluster) -> str:
    try:
        lease = cluster.api.get(LEASES, "kube-system", "danm-svcwatcher")
    except Exception:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_two_replicas_hand_over_the_lease(
    kubeapi: RunningKubeApi, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.create(SERVICES, service("s", selector=LB, network="n"))
    for i in (1, 2):
        cluster.create_pod(pod(f"p{i}", labels=LB))
        cluster.create(DANMEPS, danmep(f"p{i}", "n", ipv4=f"10.0.0.{i}/24", name=f"ep{i}"))
    with replicas(kubeapi, tmp_path, "replica-a") as (first,):
        cluster.wait_for(lambda: _holder(cluster) == "replica-a", "replica-a to lead")
        cluster.wait_view(
            "vnf", "s", lambda v: v.ready == {"10.0.0.1", "10.0.0.2"}, "served by the script"
        )
        with replicas(kubeapi, tmp_path, "replica-b") as (second,):
            cluster.wait_for(second.port, "replica-b's health port")
            cluster.wait_for(lambda: second.probe("/readyz") == 200, "standby replica-b ready")
            assert first.probe("/healthz") == 200
            cluster.wait_for(lambda: first.probe("/readyz") == 200, "replica-a ready")
            time.sleep(1)  # NB: several renew periods: B must still be waiting, not leading
            assert _holder(cluster) == "replica-a"
            assert not any("became the leader" in str(x.get("msg")) for x in second.logs())

            assert first.terminate() == 0
            cluster.wait_for(lambda: _holder(cluster) == "replica-b", "replica-b to take over")
            cluster.api.delete(DANMEPS, "vnf", "ep1")
            cluster.wait_view("vnf", "s", lambda v: v.ready == {"10.0.0.2"}, "served by B")
            assert second.terminate() == 0
    messages = [str(x.get("msg")) for x in first.logs()]
    assert any("became the leader" in m for m in messages)
    assert all(x.get("component") == "svcwatcher" for x in first.logs() if "component" in x)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--kubeconfig", "/nonexistent/kubeconfig"], 1, "cannot load Kubernetes client config"),
        (["--workers", "0"], 2, "must be greater than 0"),
        (["--resync-seconds", "-1"], 2, "must be greater than 0"),
    ],
)
def test_bad_invocations_fail_with_a_clear_message(
    args: list[str], status: int, message: str
) -> None:
    done = subprocess.run(
        [*_command(), "--health-port", "0", *args], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == status
    assert message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_no_leader_elect_serves_without_a_lease(
    kubeapi: RunningKubeApi, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.create(SERVICES, service("s", selector=LB, network="n"))
    cluster.create_pod(pod("p1", labels=LB))
    cluster.create(DANMEPS, danmep("p1", "n", ipv4="10.0.0.1/24"))
    log_path = tmp_path / "single.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *_command(),
                "--kubeconfig",
                str(kubeapi.kubeconfig_path),
                "--no-leader-elect",
                "--health-port",
                "0",
                "--health-bind-address",
                "127.0.0.1",
                "--log-format",
                "text",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            cluster.wait_view("vnf", "s", lambda v: v.ready == {"10.0.0.1"}, "served")
            assert _holder(cluster) == ""
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert "caches synced" in log_path.read_text()
