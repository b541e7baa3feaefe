"""The bounded pools of coreviz_frames._util.concurrency: order, window, errors, cancellation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from coreviz_frames._util.concurrency import run_as_completed, run_fail_fast, submit_in_order


class Counter:
    """Counts how many tasks run at once, and the most at any time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.started = 0

    def __call__(self, value):
        with self.lock:
            self.now += 1
            self.started += 1
            self.most = max(self.most, self.now)
        try:
            if isinstance(value, Exception):
                raise value
            return value
        finally:
            with self.lock:
                self.now -= 1


def test_submit_in_order_keeps_input_order_and_the_window():
    submitted = []

    def jobs():
        for n in range(10):
            submitted.append(n)
            yield lambda n=n: n * 10

    with ThreadPoolExecutor(4) as pool:
        futures = submit_in_order(pool, jobs(), 3)
        first = next(futures)
        assert len(submitted) == 3  # window: three submitted before the first is handed out
        assert [first.result()] + [f.result() for f in futures] == [n * 10 for n in range(10)]


def test_submit_in_order_close_cancels_what_was_not_handed_out():
    gate, ran = threading.Event(), []
    with ThreadPoolExecutor(1) as pool:
        pool.submit(gate.wait)  # the one thread is busy: the jobs wait in the queue
        futures = submit_in_order(pool, [lambda n=n: ran.append(n) for n in range(3)], 3)
        first = next(futures)
        futures.close()
        gate.set()
    assert first.done() and ran == [0]  # jobs 1 and 2 were cancelled before they started


def test_run_as_completed_bounds_what_is_in_flight():
    counter = Counter()
    results = list(run_as_completed(range(50), counter, workers=3, window=2))
    assert sorted(results) == list(range(50))
    assert counter.most <= 2


def test_run_as_completed_raises_the_task_error_and_stops_submitting():
    counter = Counter()
    items = [1, 2, ValueError("bad item"), *range(100)]
    with pytest.raises(ValueError, match="bad item"):
        list(run_as_completed(items, counter, workers=1, window=1))
    assert counter.started == 3  # nothing was started after the failing one


def test_run_fail_fast_all_results_and_the_first_error():
    assert run_fail_fast(["a", "b", "c"], str.upper, workers=2) == {"a": "A", "b": "B", "c": "C"}
    seen = []
    out = run_fail_fast([1, 2], lambda n: n + 1, workers=4, on_done=lambda k, r: seen.append(k))
    assert out == {1: 2, 2: 3} and sorted(seen) == [1, 2]
    gate = threading.Event()

    def task(key):
        if key == "boom":
            raise OSError("disk full")
        gate.wait(5)
        return key

    with pytest.raises(OSError, match="disk full"):
        run_fail_fast(["boom", *map(str, range(20))], task, workers=1)
    gate.set()
