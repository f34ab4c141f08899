"""Fixtures for the contract suite: the official client, kubectl and raw HTTPS helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.contract.http import RawClient
from tests.kubeapi.testing import RunningKubeApi

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def core(kube_client: Any) -> Any:
    return client.CoreV1Api(kube_client)


@pytest.fixture
def custom(kube_client: Any) -> Any:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture
def raw(kubeapi: RunningKubeApi) -> Iterator[RawClient]:
    with RawClient(kubeapi) as http:
        yield http


class Kubectl:
    def __init__(self, kubeconfig: str) -> None:
        self.env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": os.path.dirname(kubeconfig)}

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture
def kubectl(kubeapi: RunningKubeApi) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl binary not found")
    return Kubectl(str(kubeapi.kubeconfig_path))
