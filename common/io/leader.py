"""Lease-based leader election (coordination.k8s.io/v1), modelled on client-go's leaderelection.

Why it exists: svcwatcher (and any controller run with more than one replica) must have exactly
one active writer, or two replicas fight over the same Endpoints. Kubernetes' answer is a Lease
object that the leader renews and the others watch age:

* acquire: create the Lease, or take it over when it is free (``holderIdentity`` empty, after a
  clean release) or expired, always writing with the ``resourceVersion`` we read, so two
  candidates can never both win (the loser gets 409 Conflict);
* expiry is judged like client-go: not from the holder's ``renewTime`` (clocks differ between
  nodes) but from when *we* last saw the record change, plus its ``leaseDurationSeconds``;
* renew every ``retry_period_s``; when no renewal succeeded for ``renew_deadline_s``, or someone
  else holds the Lease, leadership is lost: ``lost`` is set and the work must stop;
* on a requested stop the work is told to stop first, and only once it has finished is the
  Lease released (holder cleared, duration 1 s) so a standby takes over at once.

Timing rule (as client-go enforces): ``lease_duration_s > renew_deadline_s > retry_period_s``, so
a leader gives up before anyone else may consider its lease expired.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from common.io.kube import AlreadyExists, Conflict, JsonObject, KubeApi, KubeError, NotFound
from common.model.resources import LEASES

log = logging.getLogger(__name__)


def format_micro_time(moment: datetime.datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    """Campaign for one Lease and run the work while holding it (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity (e.g. the pod name)")
        if not lease_duration_s > renew_deadline_s > retry_period_s > 0:
            raise ValueError(
                "leader election needs lease_duration_s > renew_deadline_s > retry_period_s > 0, "
                f"got {lease_duration_s} / {renew_deadline_s} / {retry_period_s}"
            )
        self._api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._lease_duration_s = lease_duration_s
        self._renew_deadline_s = renew_deadline_s
        self._retry_period_s = retry_period_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._is_leader = False
        # NB: what we last saw in the Lease and when (our clock), the basis of expiry.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._observed_holder = ""
        self._log_extra = {"lease": f"{namespace}/{name}", "identity": identity}

    @property
    def is_leader(self) -> bool:
        with self._lock:
            return self._is_leader

    @property
    def observed_holder(self) -> str:
        """Who held the Lease when we last read it ("" for nobody)."""
        with self._lock:
            return self._observed_holder

    # ---- the campaign

    def run(
        self, on_started_leading: Callable[[threading.Event], None], stop: threading.Event
    ) -> None:
        """Block: acquire, run ``on_started_leading(lost)`` in a thread, renew until lost/stop.

        Returns without calling anything if ``stop`` is set before the Lease was won. If the
        work returns on its own the Lease is still held (and renewed) until ``stop``.
        """
        if not self._acquire(stop):
            return
        lost = threading.Event()
        worker = threading.Thread(
            target=self._work, args=(on_started_leading, lost), name=f"leader-{self.name}"
        )
        worker.start()
        stopped = self._renew_until_lost(stop)
        with self._lock:
            self._is_leader = False
        lost.set()
        # NB: hand over only once the work has really stopped, or two leaders would overlap.
        worker.join(self._lease_duration_s)
        if worker.is_alive():
            log.warning(
                "the leader's work did not stop within %g s; not releasing %s/%s",
                self._lease_duration_s,
                self.namespace,
                self.name,
                extra=self._log_extra,
            )
        elif stopped:
            self._release()

    def _work(
        self, on_started_leading: Callable[[threading.Event], None], lost: threading.Event
    ) -> None:
        try:
            on_started_leading(lost)
        except Exception:
            log.exception("the leader's work failed", extra=self._log_extra)

    def _acquire(self, stop: threading.Event) -> bool:
        log.info("campaigning for lease %s/%s", self.namespace, self.name, extra=self._log_extra)
        while not stop.is_set():
            if self._attempt():
                with self._lock:
                    self._is_leader = True
                log.info("became leader", extra=self._log_extra)
                return True
            # NB: jitter so that standbys that saw the same release do not collide every time.
            stop.wait(self._retry_period_s * (1.0 + 0.2 * random.random()))
        return False

    def _renew_until_lost(self, stop: threading.Event) -> bool:
        """Renew until leadership is lost (False) or ``stop`` is set (True)."""
        last_renewal = self._clock()
        while not stop.wait(self._retry_period_s):
            if self._attempt():
                last_renewal = self._clock()
                continue
            holder = self.observed_holder
            if holder and holder != self.identity:
                log.warning("lost the lease to %s", holder, extra=self._log_extra)
                return False
            if self._clock() - last_renewal >= self._renew_deadline_s:
                log.warning(
                    "could not renew the lease for %g s; giving up leadership",
                    self._renew_deadline_s,
                    extra=self._log_extra,
                )
                return False
        return True

    # ---- one round trip

    def _attempt(self) -> bool:
        """Try once to acquire or renew; False (never an exception) when it did not work."""
        try:
            return self._try_acquire_or_renew()
        except KubeError as error:
            log.warning("lease %s/%s: %s", self.namespace, self.name, error, extra=self._log_extra)
            return False

    def _observe(self, spec: JsonObject) -> None:
        record = tuple(
            spec.get(field)
            for field in (
                "holderIdentity",
                "leaseDurationSeconds",
                "acquireTime",
                "renewTime",
                "leaseTransitions",
            )
        )
        with self._lock:
            if record != self._observed:
                self._observed = record
                self._observed_at = self._clock()
            self._observed_holder = str(spec.get("holderIdentity") or "")

    def _expired(self, spec: JsonObject) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or 0)
        with self._lock:
            return self._observed_at + duration <= self._clock()

    def _spec(self, *, acquire_time: str, transitions: int) -> JsonObject:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self._lease_duration_s)),
            "acquireTime": acquire_time,
            "renewTime": format_micro_time(self._wall_clock()),
            "leaseTransitions": transitions,
        }

    def _try_acquire_or_renew(self) -> bool:
        now = format_micro_time(self._wall_clock())
        try:
            lease = self._api.get(LEASES, self.namespace, self.name)
        except NotFound:
            spec = self._spec(acquire_time=now, transitions=0)
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            try:
                self._api.create(LEASES, self.namespace, body)
            except AlreadyExists:
                return False  # NB: another candidate created it first; read it next round.
            self._observe(spec)
            return True
        current: JsonObject = lease.get("spec") or {}
        self._observe(current)
        holder = str(current.get("holderIdentity") or "")
        if holder and holder != self.identity and not self._expired(current):
            return False
        transitions = int(current.get("leaseTransitions") or 0)
        if holder == self.identity:
            spec = self._spec(
                acquire_time=current.get("acquireTime") or now, transitions=transitions
            )
        else:
            spec = self._spec(acquire_time=now, transitions=transitions + 1)
        lease["spec"] = {**current, **spec}
        try:
            # NB: lease.metadata.resourceVersion makes this write lose against any other writer.
            self._api.replace(LEASES, self.namespace, self.name, lease)
        except Conflict:
            return False
        self._observe(spec)
        return True

    def _release(self) -> None:
        try:
            lease = self._api.get(LEASES, self.namespace, self.name)
            current: JsonObject = lease.get("spec") or {}
            if current.get("holderIdentity") != self.identity:
                return
            now = format_micro_time(self._wall_clock())
            lease["spec"] = {
                **current,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
            }
            self._api.replace(LEASES, self.namespace, self.name, lease)
            log.info("released the lease", extra=self._log_extra)
        except KubeError as error:
            # NB: not fatal: the lease simply expires after leaseDurationSeconds.
            log.warning("could not release the lease: %s", error, extra=self._log_extra)
