"""The batcher joins concurrent jobs of one key into one run, within its token bound."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nmt_runtime.serve.batcher import Batcher, BatcherStopped


class Recorder:
    """A `run` that records each batch it gets and answers item → (key, item)."""

    def __init__(self, gate: threading.Event | None = None, fail_on: object = None):
        self.batches: list[tuple[object, list]] = []
        self.gate = gate
        self.fail_on = fail_on

    def __call__(self, key, items):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append((key, list(items)))
        if self.fail_on in items:
            raise ValueError(f"cannot do {self.fail_on}")
        return [(key, item) for item in items]


def run_jobs(batcher: Batcher, jobs: list[tuple[object, list, int]]) -> list:
    async def main():
        tasks = [batcher.submit(key, items, tokens) for key, items, tokens in jobs]
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main())


def test_concurrent_jobs_of_one_key_share_one_run_and_get_their_own_results():
    record = Recorder()
    batcher = Batcher(record, max_wait=0.5, max_tokens=100)
    jobs = [("k", [f"a{i}", f"b{i}"], 2) for i in range(6)]
    results = run_jobs(batcher, jobs)
    batcher.close()
    assert results == [[("k", f"a{i}"), ("k", f"b{i}")] for i in range(6)]
    assert len(record.batches) == 1
    assert record.batches[0][1] == [x for _, items, _ in jobs for x in items]  # in order


def test_jobs_of_different_keys_never_share_a_run():
    record = Recorder()
    batcher = Batcher(record, max_wait=0.2, max_tokens=100)
    jobs = [("greedy" if i % 2 else "beam", [i], 1) for i in range(8)]
    results = run_jobs(batcher, jobs)
    batcher.close()
    assert results == [[(key, items[0])] for key, items, _ in jobs]
    for key, items in record.batches:
        assert all(("greedy" if i % 2 else "beam") == key for i in items)
    assert len(record.batches) == 2


def test_a_batch_stays_within_its_token_bound():
    record = Recorder()
    batcher = Batcher(record, max_wait=0.2, max_tokens=10)
    jobs = [("k", [i], 4) for i in range(7)]  # 28 tokens: at least 3 batches of ≤ 2 jobs
    results = run_jobs(batcher, jobs)
    batcher.close()
    assert results == [[("k", i)] for i in range(7)]
    assert all(len(items) * 4 <= 10 for _, items in record.batches)
    assert sorted(i for _, items in record.batches for i in items) == list(range(7))


def test_a_job_larger_than_the_bound_runs_alone():
    record = Recorder()
    batcher = Batcher(record, max_wait=0.0, max_tokens=10)
    assert run_jobs(batcher, [("k", ["big"], 50)]) == [[("k", "big")]]
    batcher.close()


def test_a_failing_run_reaches_its_jobs_and_the_worker_goes_on():
    record = Recorder(fail_on="bad")
    batcher = Batcher(record, max_wait=0.2, max_tokens=100)
    first = run_jobs(batcher, [("k", ["bad"], 1), ("k", ["good"], 1)])
    assert all(isinstance(r, ValueError) for r in first)  # they shared the failing run
    assert run_jobs(batcher, [("k", ["after"], 1)]) == [[("k", "after")]]
    batcher.close()


def test_a_cancelled_job_is_skipped_and_its_neighbours_are_answered():
    gate = threading.Event()
    record = Recorder(gate)
    batcher = Batcher(record, max_wait=0.0, max_tokens=1)

    async def main():
        blocker = asyncio.ensure_future(batcher.submit("k", ["first"], 1))
        await asyncio.sleep(0.1)  # the worker is inside run, held by the gate
        gone = asyncio.ensure_future(batcher.submit("k", ["gone"], 1))
        kept = asyncio.ensure_future(batcher.submit("k", ["kept"], 1))
        await asyncio.sleep(0.05)
        gone.cancel()  # its client went away while it waited in the queue
        gate.set()
        return await blocker, await kept, gone.cancelled()

    first, kept, cancelled = asyncio.run(main())
    batcher.close()
    assert first == [("k", "first")] and kept == [("k", "kept")] and cancelled
    assert ["gone"] not in [items for _, items in record.batches]


def test_close_finishes_the_queued_jobs_then_refuses_new_ones():
    record = Recorder()
    batcher = Batcher(record, max_wait=0.0, max_tokens=1)
    assert run_jobs(batcher, [("k", [i], 1) for i in range(3)]) == [[("k", i)] for i in range(3)]
    batcher.close(timeout=10)
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(batcher.submit("k", [1], 1))


def test_no_items_need_no_run():
    record = Recorder()
    batcher = Batcher(record)
    assert asyncio.run(batcher.submit("k", [], 0)) == []
    batcher.close()
    assert record.batches == []


class Halt(BaseException):
    """What no `except Exception` catches: it ends the worker thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_fails_its_jobs_and_later_ones_at_once():
    def run(key, items):
        raise Halt("gone")

    batcher = Batcher(run, max_wait=0.0)

    async def main():
        first = await asyncio.gather(
            asyncio.wait_for(batcher.submit("k", [1], 1), 10), return_exceptions=True
        )
        for _ in range(1000):  # the worker sets its failure before it ends
            if not batcher.alive:
                break
            await asyncio.sleep(0.01)
        later = await asyncio.gather(
            asyncio.wait_for(batcher.submit("k", [2], 1), 10), return_exceptions=True
        )
        return first[0], later[0]

    first, later = asyncio.run(main())  # the thread's traceback is printed, as for a bug
    assert isinstance(first, BatcherStopped) and "stopped: Halt: gone" in str(first)
    assert isinstance(later, BatcherStopped) and not batcher.alive
    batcher.close(timeout=10)  # returns: the thread is already gone


@pytest.mark.parametrize("wait", [float("inf"), float("nan"), -1.0])
def test_a_wait_the_worker_cannot_keep_is_refused(wait):
    with pytest.raises(ValueError, match="give a finite number of seconds >= 0"):
        Batcher(Recorder(), max_wait=wait)
