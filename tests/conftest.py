"""Top-level fixtures shared by every test tier.

``kubeapi`` gives each test a fresh in-memory API server (tests/kubeapi) in a background
thread; ``kube_api_client`` is an official-client ``ApiClient`` configured for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi.testing import RunningKubeApi, start_in_thread
from tests.vm.policy import apply_guest_tier_policy


@pytest.fixture
def kubeapi(tmp_path: Path) -> Iterator[RunningKubeApi]:
    with start_in_thread(tmp_path / "kubeapi") as running:
        yield running


def kube_api_client(running: RunningKubeApi) -> Any:
    """A ``kubernetes.client.ApiClient`` for a running stand-in (caller closes it)."""
    return running.api_client()


@pytest.fixture
def kube_client(kubeapi: RunningKubeApi) -> Iterator[Any]:
    client = kubeapi.api_client()
    try:
        yield client
    finally:
        client.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # NB: vm-marked tests anywhere in the tree run only inside the QEMU guest
    # (tests/vm/test_guest_tier.py); on the host they are skipped, in the guest the rest is.
    apply_guest_tier_policy(config, items)
