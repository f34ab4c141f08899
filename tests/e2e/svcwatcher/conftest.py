"""Fixtures: a fresh API stand-in with the DanmEp CRD, and an in-process svcwatcher on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.io.kube import KubernetesApi
from svcwatcher.controller import Options, SvcWatcher
from tests.e2e.svcwatcher.harness import Cluster
from tests.kubeapi.testing import RunningKubeApi


@pytest.fixture
def cluster(kubeapi: RunningKubeApi) -> Iterator[Cluster]:
    api = KubernetesApi.from_api_client(kubeapi.api_client())
    try:
        harness = Cluster(api)
        harness.install_crds()
        for namespace in ("vnf", "other"):
            harness.ensure_namespace(namespace)
        yield harness
    finally:
        api.close()


@pytest.fixture
def watcher(kubeapi: RunningKubeApi, cluster: Cluster) -> Iterator[SvcWatcher]:
    # NB: its own client, as a separate process would have.
    api = KubernetesApi.from_api_client(kubeapi.api_client())
    running = SvcWatcher(api, options=Options(resync_s=30, workers=2, watch_timeout_s=30))
    try:
        running.start()
        assert running.wait_synced(30), "informers did not sync"
        yield running
    finally:
        running.stop()
        api.close()
