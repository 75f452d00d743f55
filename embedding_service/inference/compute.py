"""The one thread of a process that runs its torch work: every forward pass, model loading,
warm-up and self-check, token embeddings.

torch's CPU build parallelises inside an operation with OpenMP (GNU libgomp). Every thread that
starts a parallel region becomes the master of a team of its own, and libgomp counts the threads
of every team: once a process holds more OpenMP threads than it has CPUs, all of them stop
spinning between regions and sleep on a futex, and each region must wake its team first. A model
loaded on one thread and run on another is enough to cross that line on a 2-core machine; a
single-text MiniLM forward pass then took about twice as long (CONCURRENCY_ANALYSIS.md, "One
thread for torch per process"). So the batchers take their turns on this thread (batching.py:
each enqueue submits the batcher's `serve`, which forms and runs one batch), `Registry.load`
runs here, and request threads do only tokenizer, PIL and numpy work (image processors return
numpy arrays; tensors are made here).

`run(fn, ...)` runs `fn` on the thread and returns its result or raises its exception; called
from the thread itself it runs `fn` directly. `submit(fn)` queues `fn` without waiting. Work
runs one item at a time, in submission order. Started on first use and again in a forked child
(threads do not survive `fork`).

Two lanes: besides this thread (the interactive lane) a second thread, the bulk lane, runs the
forward passes of bulk requests (batching.py: a later priority than 0, or more tokens than one
batch takes), at a lower scheduling priority (BULK_NICE). An interactive request then never waits
for a bulk pass to finish: both run, and the kernel gives the core to the interactive one. The
CPU share (config/cpu_share.py) counts each busy lane, so the two lanes' OpenMP threads together
stay within the cores and the oversubscription above does not return.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

log = logging.getLogger("embedding_service.inference.compute")


class Signal:
    """A one-shot signal for one waiting thread: `set` once, `wait` until set. A lock held from
    creation, released by `set`: cheaper than a threading.Event, whose condition variable
    allocates a lock per wait."""

    __slots__ = ("_lock", "is_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.is_set = False

    def set(self) -> None:
        """Wake the waiter; a second call does nothing (called by one thread only)."""
        if not self.is_set:
            self.is_set = True
            self._lock.release()

    def wait(self) -> None:
        with self._lock:
            pass


class _Call:
    __slots__ = ("fn", "args", "kwargs", "result", "error", "done")

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.done = Signal()


class ComputeThread:
    """A daemon thread running submitted calls one at a time, in submission order; with `nice`,
    the thread runs at that scheduling niceness (Linux: per thread), and so do the OpenMP threads
    it starts."""

    def __init__(self, name: str = "torch-compute", nice: int = 0):
        self.name = name
        self.nice = nice
        self._calls: "queue.SimpleQueue[Any]" = queue.SimpleQueue()  # _Call, or a callable from submit
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()

    @property
    def ident(self) -> Optional[int]:
        """The thread's id (`threading.get_ident()`), None before its first call."""
        return self._thread.ident if self._thread is not None else None

    @property
    def native_id(self) -> Optional[int]:
        """The thread's OS id (as in /proc/<pid>/task), None before its first call."""
        return self._thread.native_id if self._thread is not None else None

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the compute thread; its return value, or its exception
        re-raised here (the original object, traceback included)."""
        thread = self._thread
        if thread is not None and thread.ident == threading.get_ident():
            return fn(*args, **kwargs)
        call = _Call(fn, args, kwargs)
        self._ensure_started()
        self._calls.put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue `fn()` on the compute thread and return at once (the batchers' turns: see
        batching.py); an exception it raises is logged, nobody waits for it."""
        self._ensure_started()
        self._calls.put(fn)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                thread.start()
                self._thread = thread

    def _loop(self) -> None:
        if self.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except (OSError, AttributeError):  # not Linux, or not allowed: the lane still works
                log.warning("could not lower the priority of the %s thread", self.name)
        while True:
            call = self._calls.get()
            if not isinstance(call, _Call):
                try:
                    call()
                except BaseException:  # noqa: BLE001 - the thread must live on
                    log.exception("work queued on the compute thread failed")
                continue
            try:
                call.result = call.fn(*call.args, **call.kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                call.error = exc
            finally:
                call.args = call.kwargs = ()  # type: ignore[assignment] - drop references early
                call.done.set()

    def _forget(self) -> None:
        """In a forked child: the parent's thread is not there; start a new one on first use."""
        self._thread = None
        self._calls = queue.SimpleQueue()
        self._start_lock = threading.Lock()


#: Niceness of the bulk lane's thread: next to an interactive pass on the same core, the Linux
#: scheduler gives the bulk pass about 1/10 of the core (weights 110 against 1024).
BULK_NICE = 10

#: This process's compute thread: the interactive lane (lane 0), where models load and every
#: request's forward passes run unless they are bulk.
compute = ComputeThread()
#: The bulk lane (lane 1): forward passes of bulk requests (a later priority than 0, or more
#: tokens than a batch takes), at BULK_NICE, so that an interactive pass never waits for one.
bulk = ComputeThread("torch-bulk", nice=BULK_NICE)
LANES = (compute, bulk)
os.register_at_fork(after_in_child=compute._forget)
os.register_at_fork(after_in_child=bulk._forget)


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on this process's compute thread (see the module docstring)."""
    return compute.run(fn, *args, **kwargs)


def submit(fn: Callable[[], Any], lane: int = 0) -> None:
    """Queue `fn()` on compute lane `lane` (0: interactive, 1: bulk) without waiting (see
    ComputeThread.submit)."""
    LANES[lane].submit(fn)


def on_lane() -> bool:
    """Whether the calling thread is one of the compute lanes."""
    ident = threading.get_ident()
    return any(lane.ident == ident for lane in LANES)
