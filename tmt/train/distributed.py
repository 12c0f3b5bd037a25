"""torchrun / torch.distributed plumbing: DDP over gloo (CPU) or NCCL (GPU)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job. ``Dist.single()`` when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def single(cls) -> Dist:
        return cls()

    @classmethod
    def from_env(cls, device: str = "cpu") -> Dist:
        """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ...)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls.single()
        if not torch_dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            torch_dist.init_process_group(backend=backend)
        return cls(
            rank=torch_dist.get_rank(),
            world_size=torch_dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )

    def wrap(self, module: nn.Module) -> nn.Module:
        """DDP-wrap ``module`` when there is more than one process (gradients all-reduced)."""
        if self.world_size == 1:
            return module
        device_ids = [self.local_rank] if next(module.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks, in place (unchanged in a single process)."""
        if self.world_size > 1:
            torch_dist.all_reduce(tensor)
        return tensor

    def average(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place (one all-reduce of them all,
        flattened; e.g. the gradients of a model trained without a DDP wrapper)."""
        tensors = list(tensors)
        if self.world_size == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        torch_dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` overwritten, in place, by the main rank's."""
        if self.world_size > 1:
            torch_dist.broadcast(tensor, src=0)
        return tensor

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on the main rank first, then on the others (it writes a cache they
        then read instead of all computing it at once)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def local_device(device: str, dist: Dist) -> torch.device:
    """``cuda`` → this process's GPU (``cuda:LOCAL_RANK``); other devices unchanged."""
    if device == "cuda":
        return torch.device("cuda", dist.local_rank)
    return torch.device(device)
