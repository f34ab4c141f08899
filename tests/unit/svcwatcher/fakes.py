"""The shared in-memory ``KubeApi`` plus the controller tests' record of what they echoed."""

from __future__ import annotations

from common.io.kube import JsonObject
from tests.unit import fake_kube


class FakeKube(fake_kube.FakeKube):
    def __init__(self) -> None:
        super().__init__()
        #: What a test has already fed back to the controller as "seen by the informers".
        self.echoed: dict[fake_kube.ObjectKey, JsonObject] = {}
