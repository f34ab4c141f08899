"""The netwatcher control loop: three informers feed one level-triggered reconcile key.

Why level-triggered: the original acted on each add/update/delete event and so lost every host
interface deleted by hand, kept the old one after a NetworkID rename, and deleted interfaces
other networks still used (danm-behaviour.md §13.27). Here every informer event, whatever it
says, only enqueues the single key ``RECONCILE``; the worker then computes the desired links from
*all* cached networks and makes the node match. Bursts coalesce in the work queue, a failed pass
comes back with exponential backoff, and each finished pass schedules the next one
``resync_s`` later, so drift (a link deleted or set down by hand) is repaired within that period
even when no network changes.

Nothing is reconciled before all three informers have finished their first list: an empty cache
at start-up would otherwise look like "no network wants anything" and delete every owned link.
A kind whose CRD is not installed counts as listed and empty; its informer keeps asking and the
key is enqueued when its objects appear. Links are left in place on shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from common.io.informer import EventType, Informer
from common.io.kube import JsonObject, KubeApi
from common.io.netlink_model import NetlinkFailure
from common.model.resources import CLUSTERNETWORKS, DANMNETS, TENANTNETWORKS, Resource
from common.workqueue import WorkQueue
from netwatcher.desired import DesiredState, NetworkObject, desired_state
from netwatcher.events import ProblemReporter
from netwatcher.reconcile import HostNetlink, Outcome, reconcile

RECONCILE = "reconcile"
WATCHED: tuple[Resource, ...] = (DANMNETS, TENANTNETWORKS, CLUSTERNETWORKS)
STALL_LIMIT_S = 120.0
"""A worker silent for longer than this is reported not live (liveness probe)."""

log = logging.getLogger(__name__)


def _default_netlink() -> AbstractContextManager[HostNetlink]:
    from common.io.netlink_pyroute import PyrouteNetlink

    # NB: inside the ``with`` block one netlink socket is reused for every call of the pass.
    return PyrouteNetlink()


@dataclass(frozen=True)
class Settings:
    node_name: str
    netns: str | None = None
    """Namespace whose links are managed (a path or ``ip netns`` name); None: our own."""
    resync_s: float = 300.0
    absent_retry_s: float = 5.0
    watch_timeout_s: int = 300
    base_backoff_s: float = 0.2
    max_backoff_s: float = 30.0


class Netwatcher:
    """Wires the informers, the work queue, one worker thread and the reconciler together."""

    def __init__(
        self,
        api: KubeApi,
        settings: Settings,
        *,
        netlink_factory: Callable[[], AbstractContextManager[HostNetlink]] = _default_netlink,
        reporter: ProblemReporter | None = None,
    ) -> None:
        self.settings = settings
        self.queue: WorkQueue[str] = WorkQueue(
            base_backoff_s=settings.base_backoff_s, max_backoff_s=settings.max_backoff_s
        )
        self.informers: dict[str, Informer] = {
            resource.kind: Informer(
                api,
                resource,
                resync_s=settings.resync_s,
                absent_retry_s=settings.absent_retry_s,
                watch_timeout_s=settings.watch_timeout_s,
                on_change=self._on_change,
                name=f"netwatcher-{resource.plural}",
            )
            for resource in WATCHED
        }
        self._netlink_factory = netlink_factory
        self._reporter = reporter or ProblemReporter(api, node_name=settings.node_name)
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self._passes = 0
        self._pass_done = threading.Condition()
        self.last_outcome: Outcome | None = None
        self.last_desired: DesiredState | None = None
        """What the last finished pass worked towards (tests and debugging read it)."""

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for informer in self.informers.values():
            informer.start()
        self._worker = threading.Thread(target=self._work, name="netwatcher-worker", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self.queue.shutdown()
        if self._worker is not None:
            self._worker.join(timeout_s)
        for informer in self.informers.values():
            informer.stop(timeout_s)

    def run(self, stop: threading.Event) -> None:
        """Start, block until ``stop`` is set, then stop."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    # -- health ------------------------------------------------------------------------------------

    def liveness(self) -> str | None:
        """None when healthy, else why not (for ``/healthz``)."""
        if self._worker is None or not self._worker.is_alive():
            return "the reconcile worker is not running"
        silent_s = time.monotonic() - self._heartbeat
        if silent_s > STALL_LIMIT_S:
            return f"the reconcile worker has been stuck for {silent_s:.0f} s"
        return None

    def readiness(self) -> str | None:
        """None once every informer finished its first list (for ``/readyz``)."""
        waiting = [kind for kind, informer in self.informers.items() if not informer.synced]
        if waiting:
            return f"waiting for the first list of {', '.join(waiting)}"
        return None

    @property
    def passes(self) -> int:
        """How many reconcile passes finished (tests wait on it)."""
        with self._pass_done:
            return self._passes

    def wait_for_pass(self, after: int, timeout_s: float) -> bool:
        """Wait until more than ``after`` passes have finished."""
        with self._pass_done:
            return self._pass_done.wait_for(lambda: self._passes > after, timeout_s)

    # -- the loop ----------------------------------------------------------------------------------

    def _on_change(self, event_type: EventType, obj: JsonObject) -> None:
        self.queue.add(RECONCILE)

    def _wait_for_first_lists(self) -> bool:
        for informer in self.informers.values():
            while not informer.wait_synced(1.0):
                self._heartbeat = time.monotonic()
                if self._stopping.is_set():
                    return False
        served = [kind for kind, informer in self.informers.items() if informer.served]
        if not served:
            log.warning(
                "no network CRD (DanmNet, TenantNetwork, ClusterNetwork) is installed yet; "
                "waiting for one to appear"
            )
        else:
            log.info("network informers synced", extra={"served": served})
        return True

    def _work(self) -> None:
        if not self._wait_for_first_lists():
            return
        self.queue.add(RECONCILE)
        while True:
            key = self.queue.get(timeout_s=1.0)
            self._heartbeat = time.monotonic()
            if key is None:
                if self._stopping.is_set() or self.queue.shutting_down:
                    return
                continue
            try:
                self._reconcile_once(key)
            except Exception:
                # NB: the worker must survive anything; the pass is simply retried.
                log.exception("reconcile pass failed unexpectedly")
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
                with self._pass_done:
                    self._passes += 1
                    self._pass_done.notify_all()

    def _networks(self) -> list[NetworkObject]:
        return [
            NetworkObject(kind, item)
            for kind, informer in self.informers.items()
            for item in informer.items()
        ]

    def _reconcile_once(self, key: str) -> None:
        started = time.monotonic()
        desired = desired_state(self._networks())
        try:
            with self._netlink_factory() as netlink:
                outcome = reconcile(netlink, desired, netns=self.settings.netns)
        except NetlinkFailure as failure:
            log.error("cannot read the node's links", extra={"error": str(failure)})
            self.queue.add_rate_limited(key)
            return
        self.last_outcome = outcome
        self.last_desired = desired
        self._reporter.report(outcome.problems)
        if outcome.should_retry:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
        self.queue.add_after(key, self.settings.resync_s)
        level = logging.INFO if outcome.applied else logging.DEBUG
        log.log(
            level,
            "reconciled host interfaces",
            extra={
                "desired": len(desired.links),
                "changes": len(outcome.applied),
                "problems": len(outcome.problems),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
