"""Fixtures of the controller building-block tier: the official-client adapter pointed at the
API stand-in, and a guard that every test stops the threads it started."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from common.io.kube import KubernetesApi
from tests.kubeapi.testing import RunningKubeApi


@pytest.fixture
def no_leaked_threads(kubeapi: RunningKubeApi) -> Iterator[None]:
    # NB: depends on kubeapi so the stand-in's own thread exists before and after.
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == [], f"threads still running after the test: {leaked}"


@pytest.fixture
def api(kubeapi: RunningKubeApi, no_leaked_threads: None) -> Iterator[KubernetesApi]:
    with KubernetesApi.from_api_client(kubeapi.api_client(), request_timeout_s=10) as connected:
        yield connected
