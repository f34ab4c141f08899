"""WorkQueue: de-duplication, one worker per key, re-add while processing, delays, backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from common.workqueue import WorkQueue, backoff_delay

WAIT_S = 10.0  # NB: only an upper bound for a hung test, never a timing assertion.


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queue() -> Iterator[WorkQueue[str]]:
    q: WorkQueue[str] = WorkQueue(base_backoff_s=0.05, max_backoff_s=1.0, jitter=lambda: 1.0)
    yield q
    q.shutdown()


def test_duplicate_adds_collapse_into_one(queue: WorkQueue[str]) -> None:
    for key in ["a", "b", "a", "a", "b", "c"]:
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(timeout_s=0), queue.get(timeout_s=0), queue.get(timeout_s=0)] == [
        "a",
        "b",
        "c",
    ]
    assert queue.get(timeout_s=0) is None


def test_processing_key_is_not_handed_out_again_until_done(queue: WorkQueue[str]) -> None:
    queue.add("a")
    assert queue.get(timeout_s=0) == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    assert queue.get(timeout_s=0) is None  # NB: the only worker still holds "a".
    queue.done("a")
    assert len(queue) == 1
    assert queue.get(timeout_s=0) == "a"
    queue.done("a")
    assert queue.get(timeout_s=0) is None  # NB: two adds while processing -> one more pass.


def test_done_without_readd_does_not_requeue(queue: WorkQueue[str]) -> None:
    queue.add("a")
    assert queue.get(timeout_s=0) == "a"
    queue.done("a")
    assert len(queue) == 0


def test_two_workers_never_hold_one_key_concurrently() -> None:
    queue: WorkQueue[int] = WorkQueue()
    keys, rounds = 5, 200
    held: set[int] = set()
    overlaps: list[int] = []
    processed: dict[int, int] = dict.fromkeys(range(keys), 0)
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                if key in held:
                    overlaps.append(key)
                held.add(key)
                processed[key] += 1
            # NB: give the other worker a chance to grab the same key if the queue allowed it.
            threading.Event().wait(0.0005)
            with lock:
                held.discard(key)
            queue.done(key)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    try:
        for i in range(rounds):
            queue.add(i % keys)
    finally:
        # NB: drain: the last pass of every key must finish before we shut down.
        def drained() -> bool:
            with lock:
                return len(queue) == 0 and not held

        for _ in range(int(WAIT_S / 0.01)):
            if drained():
                break
            threading.Event().wait(0.01)
        queue.shutdown()
        for thread in workers:
            thread.join(WAIT_S)
    assert not any(thread.is_alive() for thread in workers)
    assert overlaps == []
    assert all(count >= 1 for count in processed.values())


def test_add_after_waits_for_the_clock() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("late", 5.0)
    queue.add_after("early", 1.0)
    assert len(queue) == 0
    assert queue.get(timeout_s=0) is None
    clock.now += 1.0
    assert queue.get(timeout_s=0) == "early"
    assert queue.get(timeout_s=0) is None
    clock.now += 4.0
    assert queue.get(timeout_s=0) == "late"


def test_add_after_keeps_the_earliest_deadline() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 1.0)
    queue.add_after("a", 10.0)
    clock.now += 1.0
    assert queue.get(timeout_s=0) == "a"
    queue.done("a")
    clock.now += 20.0
    assert queue.get(timeout_s=0) is None  # NB: the later deadline was merged, not kept.


def test_add_after_non_positive_delay_is_immediate(queue: WorkQueue[str]) -> None:
    queue.add_after("now", 0)
    assert queue.get(timeout_s=0) == "now"


def test_add_after_wakes_a_blocked_get_on_the_real_clock() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("soon", 0.02)
    assert queue.get(timeout_s=WAIT_S) == "soon"


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [
        (0, 1.0, 0.0),
        (1, 1.0, 0.05),
        (2, 1.0, 0.1),
        (3, 1.0, 0.2),
        (5, 1.0, 0.8),
        (6, 1.0, 1.0),  # NB: capped
        (10_000, 1.0, 1.0),  # NB: no float overflow for a key failing for days
        (3, 0.0, 0.1),  # NB: the least jitter halves the ceiling
        (3, 0.5, 0.15),
    ],
)
def test_backoff_delay(failures: int, jitter: float, expected: float) -> None:
    assert backoff_delay(failures, base_s=0.05, max_s=1.0, jitter=jitter) == pytest.approx(expected)


def test_rate_limited_backoff_grows_and_forget_resets(queue: WorkQueue[str]) -> None:
    delays = [queue.rate_limit_delay("k") for _ in range(7)]
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert queue.num_requeues("k") == 7
    assert queue.rate_limit_delay("other") == pytest.approx(0.05)  # NB: per key
    queue.forget("k")
    assert queue.num_requeues("k") == 0
    assert queue.rate_limit_delay("k") == pytest.approx(0.05)


def test_add_rate_limited_parks_the_key_for_its_backoff() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(base_backoff_s=1.0, clock=clock, jitter=lambda: 1.0)
    queue.add_rate_limited("k")
    queue.add_rate_limited("k")  # NB: second failure: 2 s, but the 1 s deadline is kept
    assert queue.get(timeout_s=0) is None
    clock.now += 1.0
    assert queue.get(timeout_s=0) == "k"
    queue.done("k")
    queue.add_rate_limited("k")  # NB: third failure: 4 s
    clock.now += 3.9
    assert queue.get(timeout_s=0) is None
    clock.now += 0.1
    assert queue.get(timeout_s=0) == "k"


def test_shutdown_unblocks_waiting_getters() -> None:
    queue: WorkQueue[str] = WorkQueue()
    results: list[str | None] = []
    waiting = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(3)]
    for thread in waiting:
        thread.start()
    queue.shutdown()
    for thread in waiting:
        thread.join(WAIT_S)
    assert not any(thread.is_alive() for thread in waiting)
    assert results == [None, None, None]
    queue.add("ignored")
    assert queue.get(timeout_s=0) is None
    assert queue.shutting_down


def test_get_times_out(queue: WorkQueue[str]) -> None:
    assert queue.get(timeout_s=0.01) is None


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_rejects_bad_backoff_settings(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base_backoff_s"):
        WorkQueue(base_backoff_s=base, max_backoff_s=cap)
