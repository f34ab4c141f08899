"""A de-duplicating work queue for controllers, in the manner of client-go's ``workqueue``.

Why it exists: the watchers react to informer events by *reconciling a key* (say
``namespace/name`` of a DanmNet), not by replaying each event. A burst of ten events for one
object must become one reconcile, two workers must never reconcile the same key at once, an
event that arrives while its key is being processed must cause exactly one more pass afterwards,
and a failing key must come back later with growing delays instead of spinning.

The rules, as in client-go:

* ``add`` of a key that is already waiting is a no-op (the "dirty" set).
* ``get`` hands a key out and marks it "processing"; ``add`` of a processing key only marks it
  dirty, and ``done`` puts it back in the queue. So one key is never held by two workers.
* ``add_after`` parks a key until a deadline; the earliest deadline wins. Parked keys are
  promoted by ``get`` itself, so the queue owns no thread and nothing can leak.
* ``add_rate_limited`` parks a key for ``base * 2**(failures-1)`` seconds (capped, jittered);
  ``forget`` resets the count after a success.
* ``shutdown`` wakes every ``get``, which then returns ``None``; later adds are ignored.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def backoff_delay(
    failures: int,
    *,
    base_s: float,
    max_s: float,
    jitter: float = 1.0,
) -> float:
    """Exponential backoff for the ``failures``-th consecutive failure (1-based), capped.

    ``jitter`` in [0, 1] scales the delay between half and all of the ceiling ("equal jitter"):
    spread enough to break lock-step retries, never so short that a retry storm starts.
    """
    if failures <= 0:
        return 0.0
    # NB: clamp the exponent so a key that failed for days cannot overflow the float.
    ceiling = min(max_s, base_s * 2.0 ** min(failures - 1, 64))
    return ceiling * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


class WorkQueue(Generic[K]):
    """Thread-safe, de-duplicating, rate-limited queue of keys (see the module docstring)."""

    def __init__(
        self,
        *,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if base_backoff_s <= 0 or max_backoff_s < base_backoff_s:
            raise ValueError(
                f"need 0 < base_backoff_s <= max_backoff_s, got {base_backoff_s} / {max_backoff_s}"
            )
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self._jitter = jitter
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # NB: the heap may hold stale entries; ``_deadlines`` is the truth, checked on pop.
        self._deadlines: dict[K, float] = {}
        self._parked: list[tuple[float, int, K]] = []
        self._tiebreak = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutting_down = False

    # ---- producers

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already waiting; a processing key is re-queued at done."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: K, delay_s: float) -> None:
        """Queue ``key`` once ``delay_s`` has passed (an earlier pending deadline is kept)."""
        if delay_s <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            deadline = self._clock() + delay_s
            current = self._deadlines.get(key)
            if current is not None and current <= deadline:
                return
            self._deadlines[key] = deadline
            heapq.heappush(self._parked, (deadline, next(self._tiebreak), key))
            # NB: every waiter must recompute how long to sleep: the new deadline may be sooner.
            self._cond.notify_all()

    def rate_limit_delay(self, key: K) -> float:
        """Count one more failure of ``key`` and return how long it should wait before a retry."""
        with self._cond:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
        return backoff_delay(
            failures,
            base_s=self._base_backoff_s,
            max_s=self._max_backoff_s,
            jitter=self._jitter(),
        )

    def add_rate_limited(self, key: K) -> None:
        """Re-queue a failed key after its per-key exponential backoff."""
        self.add_after(key, self.rate_limit_delay(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s failure count (call after it was processed successfully)."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        """How many rate-limited re-adds ``key`` has had since it was last forgotten."""
        with self._cond:
            return self._failures.get(key, 0)

    # ---- consumers

    def get(self, timeout_s: float | None = None) -> K | None:
        """Wait for a key and mark it processing; ``None`` on timeout or after shutdown."""
        with self._cond:
            give_up = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                if self._shutting_down:
                    return None
                next_due = self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait_s: float | None = None
                if give_up is not None:
                    wait_s = give_up - time.monotonic()
                    if wait_s <= 0:
                        return None
                if next_due is not None:
                    # NB: a small floor keeps a clock that lags the deadline from busy-looping.
                    until_due = max(next_due - self._clock(), 0.001)
                    wait_s = until_due if wait_s is None else min(wait_s, until_due)
                self._cond.wait(wait_s)

    def _promote_due_locked(self) -> float | None:
        """Move parked keys whose deadline passed into the queue; return the next deadline."""
        now = self._clock()
        while self._parked:
            deadline, _, key = self._parked[0]
            if self._deadlines.get(key) != deadline:
                heapq.heappop(self._parked)  # NB: superseded by an earlier deadline.
                continue
            if deadline > now:
                return deadline
            heapq.heappop(self._parked)
            del self._deadlines[key]
            self._add_locked(key)
        return None

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()

    # ---- lifecycle

    def shutdown(self) -> None:
        """Wake every waiting ``get`` (they return ``None``) and ignore further adds."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out now (parked keys count once they are due)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._queue)
