"""Process-group plumbing for DDP runs launched by ``torchrun`` (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them, picks the backend
from the device and returns a :class:`DistContext`. Without them (or with ``WORLD_SIZE=1``)
everything is a single process and the helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConfigError

__all__ = ["DistContext", "init_distributed", "resolve_device"]


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; ``cuda`` ->
    ``cuda:LOCAL_RANK``; ``cpu`` and ``cuda:N`` as given."""
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"expected a CUDA device for device = {spec!r}, found none on this machine"
            )
        if spec == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    try:
        return torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"expected device auto, cpu, cuda or cuda:N, found {spec!r}") from None


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) run.

    Attributes:
        rank: global rank.
        world: number of processes.
        local_rank: rank on this node (picks the GPU).
        device: this process's device.
        owns_group: whether :func:`init_distributed` created the process group (and so
            :meth:`close` destroys it).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - torch.device is immutable
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file of a run."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world > 1

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce ``tensor`` by sum (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max_flag(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def max_flags(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true on every rank if it is true on any rank (one all-reduce)."""
        if not self.active:
            return tuple(flags)
        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group ``torchrun`` describes in the environment, if any.

    The backend is NCCL when the device is CUDA, gloo otherwise. An already initialised
    group (e.g. created by the caller) is used as it is.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, False)
    if world <= 1:
        return DistContext(0, 1, 0, dev, False)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, True)
