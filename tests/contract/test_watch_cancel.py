"""Both ``KubeApi`` adapters: ``WatchStream.cancel()`` from another thread ends a quiet watch.

This is what ``Informer.stop()`` relies on; without it a stop would wait for the watch's
server-side timeout. Same adapters and stand-in as ``test_kube_adapter.py``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from common.io.kube import KubernetesApi
from common.io.kube_lean import LeanKubeApi
from common.model.resources import CONFIGMAPS, NAMESPACES

pytestmark = pytest.mark.e2e

WAIT_S = 15.0  # NB: an upper bound for a hung test only; nothing asserts on speed.
Adapter = KubernetesApi | LeanKubeApi


@pytest.fixture(params=["official", "lean"])
def api(kubeapi: Any, request: pytest.FixtureRequest) -> Iterator[Adapter]:
    adapter = KubernetesApi if request.param == "official" else LeanKubeApi
    with adapter.connect(kubeapi.kubeconfig_path, request_timeout_s=10) as connected:
        yield connected


def test_cancel_wakes_a_reader_blocked_on_a_quiet_watch(api: Adapter) -> None:
    namespace = f"cancel-{uuid.uuid4().hex[:8]}"
    api.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    stream = api.watch(CONFIGMAPS, namespace, timeout_s=3600)
    seen: list[object] = []
    first = threading.Event()

    def read() -> None:
        try:
            for event_type, obj in stream:
                seen.append((event_type, obj["metadata"]["name"]))
                first.set()
        except Exception as error:
            seen.append(error)
        finally:
            stream.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    api.create(CONFIGMAPS, namespace, {"metadata": {"name": "one"}, "data": {}})
    assert first.wait(WAIT_S)
    stream.cancel()
    reader.join(WAIT_S)
    assert not reader.is_alive()
    # NB: the stream just ends; the connection torn down by the cancel raises nothing.
    assert seen == [("ADDED", "one")]
    stream.cancel()  # NB: idempotent, and harmless after the stream was released
    assert api.get(CONFIGMAPS, namespace, "one")["metadata"]["name"] == "one"
