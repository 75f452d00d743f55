"""Where and how a process runs its models: the device, torch's threads, the CPU share between
workers and the CPU kernels. Decided once, at start-up, before any model loads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

from ..config.cpu_share import CpuShare
from ..config.devices import cpu_threads
from ..config.settings import Settings


def local_device(settings: Settings) -> str:
    """The device of a single-process server: DEVICES' first entry, DEVICE, or `auto` (cuda if
    torch sees a GPU, else cpu)."""
    if settings.devices:
        return settings.devices[0]
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Runtime:
    """`device` (`cpu`, `cuda`, `cuda:N`); `threads`, torch's intra-op threads at rest (None:
    leave torch's default); `thread_counts`, every thread count a forward pass may run with;
    `cpu_share`, this worker's handle on the cores shared with other CPU workers (None when
    alone or off); `cpu_kernels`, `auto` (decided per model at load), `onednn`, `mkl` or
    `default` (acceleration.py)."""

    device: str
    threads: Optional[int]
    thread_counts: tuple[int, ...]
    cpu_share: Optional[SlotShare]
    cpu_kernels: str

    @classmethod
    def for_worker(
        cls, settings: Settings, slot: int, device: str, cpu_workers: int, share: Optional[CpuShare]
    ) -> "Runtime":
        """A Gunicorn worker on `device`: on CPU, cores // CPU workers threads at rest and, with
        CPU_SHARE, a slot in the master's CpuShare (every thread count it can pick is warmed)."""
        from ..inference.cpu.kernels import choose_cpu_kernels

        kernels = choose_cpu_kernels(settings.cpu_kernels, device)
        if device != "cpu":
            return cls(device, None, (), None, kernels)
        threads = cpu_threads(cpu_workers)
        if share is None or not settings.cpu_share:
            return cls(device, threads, (threads,), None, kernels)
        counts = tuple(sorted({threads, *share.thread_counts()}))
        return cls(device, threads, counts, SlotShare(share, slot), kernels)

    @classmethod
    def local(cls, settings: Settings, device: Optional[str] = None) -> "Runtime":
        """A single process (development server, tests): torch's own thread count, no share."""
        import torch

        from ..inference.cpu.kernels import choose_cpu_kernels

        device = device or local_device(settings)
        return cls(device, None, (torch.get_num_threads(),), None, choose_cpu_kernels(settings.cpu_kernels, device))

    def apply(self) -> None:
        """Set torch's threads (CPU) or current device (CUDA) for this process."""
        import torch

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if self.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(self.device))


class SlotShare:
    """One worker's handle on a CpuShare: what the batcher calls around each forward pass."""

    def __init__(self, share: CpuShare, slot: int):
        self.share = share
        self.slot = slot
        self.share.clear(slot)  # a worker that died mid-pass left its slot marked busy
        #: Each compute lane's thread count as last set (torch's count is per OpenMP thread).
        self._threads = threading.local()

    def enter(self, lane: int = 0) -> None:
        """Before a forward pass on compute lane `lane` (its own thread): mark the lane busy and
        size this thread's torch threads to its share."""
        threads = self.share.enter(self.slot, lane)
        if threads != getattr(self._threads, "count", None):
            import torch

            torch.set_num_threads(threads)
            self._threads.count = threads

    def leave(self, lane: int = 0) -> None:
        self.share.leave(self.slot, lane)
