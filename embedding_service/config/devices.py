"""Device slots for Gunicorn workers. Torch-free: the master uses it.

A slot is an index into the list of worker devices. The master hands a free slot to each worker
in `pre_fork` and takes it back in `child_exit`, so a restarted worker gets the slot (and GPU) of
the worker it replaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional, Sequence

from .settings import Settings, SettingsError


def visible_gpu_count() -> int:
    """GPUs this process may use, without importing torch: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [e for e in (p.strip() for p in visible.split(",")) if e]
        if not entries or entries[0] == "-1":
            return 0
        return len(entries)
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def device_list(settings: Settings) -> list[str]:
    """The devices workers run on: DEVICES, else from DEVICE (`auto`: every visible GPU, else cpu).

    raises SettingsError when DEVICE=cuda but no GPU is visible.
    """
    if settings.devices:
        return list(settings.devices)
    if settings.device == "cpu" or settings.device.startswith("cuda:"):
        return [settings.device]
    count = visible_gpu_count()
    if count == 0:
        if settings.device == "cuda":
            raise SettingsError("DEVICE=cuda: no GPU is visible (CUDA_VISIBLE_DEVICES / nvidia-smi)")
        return ["cpu"]
    return [f"cuda:{i}" for i in range(count)]


def worker_count(settings: Settings, devices: list[str]) -> int:
    """WORKERS, else one per GPU, else on CPU max(2, cores // 4): several workers share the cores
    (cpu_share.py) and measured faster than one worker using them all (CONCURRENCY_ANALYSIS.md)."""
    if settings.workers:
        return settings.workers
    if any(d.startswith("cuda") for d in devices):
        return len(devices)
    return max(2, cpu_cores() // 4)


def cpu_cores() -> int:
    """Cores this process may run on (affinity, so container CPU sets count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def cpu_threads(cpu_workers: int) -> int:
    """Torch intra-op threads for one CPU worker: cores // CPU workers, at least 1."""
    return max(1, cpu_cores() // max(1, cpu_workers))


class SlotPool:
    """`workers` slots over `devices` (round-robin: slot i runs on devices[i % len(devices)])."""

    def __init__(self, devices: list[str], workers: int):
        if not devices:
            raise SettingsError("DEVICES: no device to run workers on")
        self.devices = [devices[i % len(devices)] for i in range(workers)]
        self.free = list(range(workers))
        self.cpu_workers = sum(1 for d in self.devices if d == "cpu")

    @property
    def slots(self) -> int:
        return len(self.devices)

    def acquire(self, holders: Optional[Sequence[tuple[int, int]]] = None) -> int:
        """A slot for a new worker.

        With `holders`, the `(age, slot)` of every live worker as Gunicorn's master knows them: the
        lowest slot none of them holds. The live workers are the truth, so the choice survives a
        reload (HUP re-executes the configuration, and with it this pool, while the old workers
        still run). When every slot is held (a reload starts its new workers before the old ones
        exit), the slot of the oldest worker that holds one alone: the next worker Gunicorn
        retires. Without `holders`: this pool's own free list; raises RuntimeError when every slot
        is taken."""
        if holders is not None:
            held = [slot for _, slot in holders]
            free = [slot for slot in range(self.slots) if slot not in held]
            if free:
                return free[0]
            alone = [(age, slot) for age, slot in holders if held.count(slot) == 1]
            return min(alone)[1] if alone else min(holders)[1]
        if not self.free:
            raise RuntimeError("no free device slot")
        self.free.sort()
        return self.free.pop(0)

    def release(self, slot: Optional[int]) -> None:
        if slot is not None and slot not in self.free:
            self.free.append(slot)

    def device(self, slot: int) -> str:
        return self.devices[slot]
