"""Problems with a network, told to its owner as Warning Events (and to the log), once each.

Why: a refused or unservable network is the user's to fix, and ``kubectl describe`` on the network
is where they look. Reconciliation runs again and again, so a problem is reported when it first
appears, not on every pass; once it is gone, a recurrence is reported again. Events follow
client-go's recorder: named ``<object>.<hex nanoseconds>``, in the object's namespace (``default``
for ClusterNetworks), with ``source.host`` set to this node because every node reports for itself.
An Event that cannot be written is only logged and retried with the next pass.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from common.io.kube import JsonObject, KubeApi, KubeError
from common.model.resources import EVENTS
from netwatcher.desired import NetworkProblem

COMPONENT = "netwatcher"
MAX_MESSAGE_LENGTH = 1024
"""events.k8s.io truncates longer notes; keep the core Event within the same bound."""

log = logging.getLogger(__name__)

_Key = tuple[str, str, str, str, str, str]


def _key(problem: NetworkProblem) -> _Key:
    network = problem.network
    return (
        network.kind,
        network.namespace,
        network.name,
        network.uid,
        problem.reason,
        problem.message,
    )


def _rfc3339(moment: float) -> str:
    stamp = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(problem: NetworkProblem, *, node_name: str, now_ns: int) -> JsonObject:
    """The core/v1 Warning Event for ``problem`` (pure; ``now_ns`` is wall-clock nanoseconds)."""
    network = problem.network
    involved: dict[str, Any] = {
        "apiVersion": network.api_version,
        "kind": network.kind,
        "name": network.name,
    }
    if network.namespace:
        involved["namespace"] = network.namespace
    if network.uid:
        involved["uid"] = network.uid
    if network.resource_version:
        involved["resourceVersion"] = network.resource_version
    stamp = _rfc3339(now_ns / 1e9)
    message = problem.message
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{network.name}.{now_ns:x}",
            "namespace": network.namespace or "default",
        },
        "involvedObject": involved,
        "reason": problem.reason,
        "message": message,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": COMPONENT, "host": node_name},
        "reportingComponent": f"danm.k8s.io/{COMPONENT}",
        "reportingInstance": node_name,
    }


class ProblemReporter:
    """Logs each new problem and records it as an Event on its network; repeats stay quiet."""

    def __init__(
        self,
        api: KubeApi | None,
        *,
        node_name: str,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._api = api
        self._node_name = node_name
        self._clock_ns = clock_ns
        self._reported: set[_Key] = set()

    def report(self, problems: Iterable[NetworkProblem]) -> int:
        """Report what is new in ``problems`` (the full current list); returns how many."""
        current = {_key(p): p for p in problems}
        self._reported &= current.keys()
        count = 0
        for key, problem in current.items():
            if key in self._reported:
                continue
            log.warning(
                problem.message,
                extra={"network": str(problem.network), "reason": problem.reason},
            )
            if self._record(problem):
                self._reported.add(key)
            count += 1
        return count

    def _record(self, problem: NetworkProblem) -> bool:
        if self._api is None:
            return True
        event = build_event(problem, node_name=self._node_name, now_ns=self._clock_ns())
        try:
            self._api.create(EVENTS, event["metadata"]["namespace"], event)
        except KubeError as error:
            log.warning(
                "cannot record an Event; will try again on the next pass",
                extra={"network": str(problem.network), "error": str(error)},
            )
            return False
        return True
