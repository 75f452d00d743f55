"""A request's share of a thread pool: its tasks run at most `width` at a time, the next one
submitted as one finishes, and whatever is left is cancelled when the request fails."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

from ..domain.errors import ServiceError


@dataclass
class Blame:
    """Which input of a request an error belongs to: `at`, its position, or None for the whole
    request."""

    at: Optional[int] = None


class Late(Exception):
    """The deadline passed with tasks unfinished; args[0]: the first unfinished task's index."""


class TaskWindow:
    """Tasks of one request on a shared pool, at most `width` of them queued or running at once;
    the next is submitted as one finishes."""

    def __init__(self, pool: ThreadPoolExecutor, width: int, tasks: Iterable[tuple[int, Callable[[], Any]]]):
        self.pool, self.width, self.tasks = pool, max(1, width), iter(tasks)
        self.running: dict[Future, int] = {}
        #: The index of the task whose error `results` raised.
        self.failed: Optional[int] = None
        self._fill()

    def _fill(self) -> None:
        while len(self.running) < self.width:
            task = next(self.tasks, None)
            if task is None:
                return
            self.running[self.pool.submit(task[1])] = task[0]

    def results(self, deadline: Optional[float] = None) -> Iterator[tuple[int, Any]]:
        """(index, result) as tasks finish; a task's error propagates as raised (its index in
        `failed`); raises Late when `deadline` (time.monotonic()) passes first."""
        while self.running:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                raise Late(min(self.running.values()))
            for future in sorted(done, key=self.running.__getitem__):
                index = self.running.pop(future)
                try:
                    result = future.result()
                except BaseException:
                    self.failed = index
                    raise
                yield index, result
            self._fill()

    @contextmanager
    def guarded(self, blame: "Blame") -> Iterator["TaskWindow"]:
        """Within the block: a failing task's index is blamed (for the error message); on leaving
        it, whatever is still queued is cancelled."""
        try:
            yield self
        except ServiceError:
            if self.failed is not None:
                blame.at = self.failed
            raise
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Queued tasks never start; running ones finish on their own (see the loader's event)."""
        for future in self.running:
            future.cancel()
        self.running.clear()
        self.tasks = iter(())
