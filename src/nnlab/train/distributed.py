"""Multi-process training through PyTorch's own engine (torchrun + DistributedDataParallel).

``torchrun --nproc-per-node N -m nnlab train ...`` sets RANK/WORLD_SIZE/MASTER_ADDR; we initialise the
process group from them (gloo on CPU, NCCL on CUDA). Each rank takes ``global_batch[rank::world]``, so
the mean of the ranks' gradients (DDP's all-reduce) equals the single-process gradient of the global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1); otherwise a no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(tensor):
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown():
    """Tear down the process group while the interpreter is fully alive: every rank together (a barrier first), then
    a garbage collection so that objects that held the group (a released DDP wrapper, its reducer) are gone before
    the group's threads are. ``destroy_process_group`` only unregisters a group that something still references."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()
