"""torch.distributed glue: one process per device under torchrun, or a single process."""

from __future__ import annotations

import os
from typing import Any

import attrs
import torch
import torch.distributed as dist

from .devices import resolve_device


@attrs.frozen
class World:
    """Where this process stands: its rank among ``size`` processes and its device."""

    rank: int = 0
    size: int = 1
    device: torch.device = attrs.Factory(lambda: torch.device("cpu"))
    # Started by torchrun: the process group is up and collectives run, even for one
    # process (so a 1-process torchrun exercises the same path, NCCL included, as many).
    launched: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1 or self.launched


def init_world(device: str = "auto") -> World:
    """Initialise torch.distributed when started by torchrun (gloo on CPU, nccl on CUDA).

    ``device``: "auto" (CUDA when available), "cpu", "cuda", "cuda:N" or "mps"; one this
    machine lacks raises :class:`~trm_core.devices.DeviceError` naming the devices it
    has. Under torchrun each process takes the GPU of its LOCAL_RANK.
    """
    chosen = resolve_device(device)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1 and "TORCHELASTIC_RUN_ID" not in os.environ:  # not started by torchrun
        return World(device=chosen)
    wants_cuda = chosen.type == "cuda"
    if wants_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if wants_cuda else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=chosen, launched=True)


def all_reduce_gradients(parameters, world: World) -> None:
    """Sum every parameter's gradient over all ranks (one flat buffer, one collective)."""
    if not world.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (in place)."""
    if world.distributed:
        dist.all_reduce(tensor)
    return tensor


def all_gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not world.distributed:
        return [obj]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, obj)
    return gathered


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when any rank says so (ranks must stop at the same step; under
    torchrun a collective)."""
    if not world.distributed:
        return flag
    value = torch.tensor([float(flag)], device=world.device)
    return bool(all_reduce_sum(value, world).item() > 0)
