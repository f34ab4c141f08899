"""``python -m tests.kubeapi`` as a process, and the store surviving a restart."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.contract.conftest import KUBECTL
from tests.contract.crds import GROUP, PLURAL, VERSION, danmnet, danmnet_crd
from tests.kubeapi.testing import start_in_thread

pytestmark = pytest.mark.e2e


def test_cli_entry_point(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.kubeapi",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--workdir",
            str(tmp_path / "pki"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("ready https://127.0.0.1:")
        assert kubeconfig.exists()
        if KUBECTL is not None:
            env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
            result = subprocess.run(
                [KUBECTL, "get", "ns", "-o", "name"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert "namespace/default" in result.stdout.split()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _write_state(api: Any) -> int:
    extensions: Any = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(danmnet_crd())
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, danmnet("kept")
    )
    core: Any = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"k": "v"})
    )
    return int(cm.metadata.resource_version)


def _check_state(api: Any, last_rv: int) -> None:
    core: Any = client.CoreV1Api(api)
    assert core.read_namespaced_config_map("c", "default").data == {"k": "v"}
    net: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "kept"
    )
    assert net["spec"]["NetworkID"] == "kept"
    again = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="d"))
    )
    assert int(again.metadata.resource_version) > last_rv


def test_persistence_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with start_in_thread(tmp_path / "one", persist_path=state) as first, first.api_client() as api:
        last_rv = _write_state(api)
    assert state.exists()
    with (
        start_in_thread(tmp_path / "two", persist_path=state) as second,
        second.api_client() as api,
    ):
        _check_state(api, last_rv)
