"""Optimistic concurrency: concurrent read-modify-PUT loops never lose an update."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest
from kubernetes import client

from tests.kubeapi.testing import RunningKubeApi

pytestmark = pytest.mark.e2e

THREADS = 8
PROCESSES = 3
INCREMENTS = 15

# NB: run as a separate interpreter so it competes from another process, not just a thread.
WORKER = """
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
for _ in range(int(sys.argv[2])):
    while True:
        cm = api.read_namespaced_config_map("counter", "default")
        cm.data["n"] = str(int(cm.data["n"]) + 1)
        try:
            api.replace_namespaced_config_map("counter", "default", cm)
            break
        except client.ApiException as e:
            if e.status != 409:
                raise
api.api_client.close()
"""


def increment(api: Any, times: int, conflicts: list[int]) -> None:
    for _ in range(times):
        while True:
            cm = api.read_namespaced_config_map("counter", "default")
            cm.data["n"] = str(int(cm.data["n"]) + 1)
            try:
                api.replace_namespaced_config_map("counter", "default", cm)
                break
            except client.ApiException as e:
                if e.status != 409 or "the object has been modified" not in (e.body or ""):
                    raise
                conflicts.append(1)


def test_no_lost_updates(kubeapi: RunningKubeApi, core: Any) -> None:
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="counter"), data={"n": "0"})
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(kubeapi.kubeconfig_path), str(INCREMENTS)]
        )
        for _ in range(PROCESSES)
    ]
    conflicts: list[int] = []
    clients = [kubeapi.api_client() for _ in range(THREADS)]
    try:
        threads = [
            threading.Thread(target=increment, args=(client.CoreV1Api(c), INCREMENTS, conflicts))
            for c in clients
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [w.wait(timeout=120) for w in workers] == [0] * PROCESSES
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for api_client in clients:
            api_client.close()
    final = core.read_namespaced_config_map("counter", "default")
    assert int(final.data["n"]) == (THREADS + PROCESSES) * INCREMENTS
