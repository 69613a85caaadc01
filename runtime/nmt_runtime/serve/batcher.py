"""Requests that arrive together are searched together: one worker thread, one batch.

A server gets many small requests at once. Searching each alone wastes the matrix
products' width; searching them together costs little more than one. `Batcher` keeps a
queue of jobs; its one worker thread takes the oldest job, waits up to `max_wait`
seconds for more jobs with the same key (the same model and search settings) until
their sources reach `max_tokens`, and runs them as one call:

    batcher = Batcher(run)            # run(key, items) -> one result per item, in order
    results = await batcher.submit(key, items, tokens)   # from any asyncio task

The event loop never blocks: `submit` awaits a future that the worker settles. A job
whose caller went away (its future cancelled, e.g. the client disconnected) is skipped
if it has not started, and its results are dropped if it has: the other jobs of its
batch are answered as usual. `close` lets the queued jobs finish, then ends the thread.

A `run` that raises an `Exception` fails only its batch. Anything that stops the worker
itself (a `BaseException`, a bug in the batching) fails every waiting job and every later
`submit` with `BatcherStopped` at once, and `alive` turns false: a server asks it for its
health, so that a dead worker shows instead of leaving every request to hang.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class _Job:
    key: Hashable  # jobs with equal keys may share a batch
    items: Sequence[Any]
    tokens: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None):
    """Set a future's outcome unless its caller has given up on it (on the loop's thread)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _answer(job: _Job, result: Any, error: BaseException | None = None) -> None:
    """Hand a job's outcome to its caller's event loop, from the worker thread."""
    try:
        job.loop.call_soon_threadsafe(_settle, job.future, result, error)
    except RuntimeError:  # that caller's event loop is closed: nobody is waiting
        pass


class BatcherStopped(RuntimeError):
    """The worker thread is gone: no job will run again."""


class Batcher:
    """One worker thread running `run(key, items)` on the queued jobs, batched by key."""

    def __init__(
        self,
        run: Callable[[Hashable, list[Any]], list[Any]],
        max_wait: float = 0.005,
        max_tokens: int = 4000,
    ):
        if not (math.isfinite(max_wait) and max_wait >= 0):  # inf would kill the worker
            raise ValueError(f"max_wait {max_wait}: give a finite number of seconds >= 0")
        self.run = run
        self.max_wait = max_wait
        self.max_tokens = max_tokens
        self.batches = 0  # calls of `run` so far
        self.failure: BaseException | None = None  # what stopped the worker, if anything
        self._jobs: list[_Job] = []
        self._running: list[_Job] = []  # the batch inside `run`
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="nmt-batcher", daemon=True)
        self._thread.start()

    async def submit(self, key: Hashable, items: Sequence[Any], tokens: int) -> list[Any]:
        """`run`'s results for `items`, searched in a batch with other jobs of this key."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        job = _Job(key, items, tokens, loop.create_future(), loop)
        with self._cond:
            if self.failure is not None or (not self._thread.is_alive() and not self._closing):
                raise self.stop_error()
            if self._closing:
                raise RuntimeError("the batcher is closed")
            self._jobs.append(job)
            self._cond.notify()
        return await job.future

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued jobs, then stop the worker thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._jobs)

    @property
    def alive(self) -> bool:
        """Whether the worker still takes jobs (false once it stopped, or after `close`)."""
        return self.failure is None and self._thread.is_alive()

    def stop_error(self) -> BatcherStopped:
        """What `submit` raises once the worker has stopped, naming why."""
        failure = self.failure
        why = f": {type(failure).__name__}: {failure}" if failure is not None else ""
        return BatcherStopped(f"the batcher's worker thread stopped{why}")

    def _work(self) -> None:
        try:
            while batch := self._next_batch():
                self._run(batch)
        except BaseException as failure:  # the worker dies: nobody may wait for it
            with self._cond:
                self.failure = failure
                waiting, self._jobs = self._running + self._jobs, []
            for job in waiting:
                _answer(job, None, self.stop_error())
            raise  # threading's excepthook prints the traceback

    def _next_batch(self) -> list[_Job]:
        """The oldest live job and the later ones of its key that fit, after waiting up to
        `max_wait` for company; empty when closing with nothing left to do."""
        with self._cond:
            while True:
                self._jobs = [job for job in self._jobs if not job.future.cancelled()]
                if self._jobs or self._closing:
                    break
                self._cond.wait()
            if not self._jobs:
                return []
            key = self._jobs[0].key
            deadline = time.monotonic() + self.max_wait
            while not self._closing and self._tokens(key) < self.max_tokens:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, tokens = [], 0
            for job in self._jobs:
                if job.key != key or job.future.cancelled():
                    continue
                if batch and tokens + job.tokens > self.max_tokens:
                    break
                batch.append(job)
                tokens += job.tokens
            taken = {id(job) for job in batch}
            self._jobs = [job for job in self._jobs if id(job) not in taken]
            return batch

    def _tokens(self, key: Hashable) -> int:
        return sum(job.tokens for job in self._jobs if job.key == key)

    def _run(self, batch: list[_Job]) -> None:
        """One call of `run` for the whole batch; each job gets its own slice back."""
        items = [item for job in batch for item in job.items]
        self._running = batch  # answered by `_work` if `run` kills the worker
        try:
            results = self.run(batch[0].key, items)
            if len(results) != len(items):
                raise RuntimeError(f"run gave {len(results)} results for {len(items)} items")
        except Exception as error:  # every job of the batch hears of it; the worker goes on
            self._running = []
            for job in batch:
                _answer(job, None, error)
            return
        finally:
            self.batches += 1
        self._running = []
        start = 0
        for job in batch:
            part = results[start : start + len(job.items)]
            start += len(job.items)
            _answer(job, part)
