"""torchrun / DDP set-up: env:// rendezvous, one process per GPU picked by LOCAL_RANK, on one node or
several. Everything rank-dependent (data shards, masking seeds, who saves) uses the global RANK and
WORLD_SIZE; LOCAL_RANK only picks the GPU and the one process per node that speaks for its node."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist

from .errors import UsageError


@dataclasses.dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    nnodes: int = 1
    node_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (e.g. one rank got SIGTERM)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (any picklable value; tensors arrive on the CPU as they left).
        With several nodes only rank 0's output directory is sure to hold what rank 0 wrote."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"environment variable {name}={value!r} is not an integer") from None


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)


def node_layout(world: int, rank: int) -> tuple[int, int]:
    """(nnodes, node_rank) from the launcher's environment. berth and NGC's scripts set NNODES and
    NODE_RANK; torchrun sets GROUP_WORLD_SIZE and GROUP_RANK (its agents, one per node, are the group);
    a launcher that only sets LOCAL_WORLD_SIZE places ranks node after node, as torchrun does."""
    local_world = _env_int("LOCAL_WORLD_SIZE")
    nnodes = _first(_env_int("NNODES"), _env_int("GROUP_WORLD_SIZE"),
                    world // local_world if local_world else None, 1)
    node_rank = _first(_env_int("NODE_RANK"), _env_int("GROUP_RANK"),
                       rank // local_world if local_world else None, 0)
    if nnodes < 1 or not 0 <= node_rank < nnodes:
        raise UsageError(f"node rank {node_rank} of {nnodes} node(s): check NNODES / NODE_RANK")
    return nnodes, node_rank


def setup(device_flag: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    nnodes, node_rank = node_layout(world, rank)
    cuda = torch.cuda.is_available()
    if device_flag == "cuda" and not cuda:
        raise UsageError("--device cuda: no CUDA device is visible")
    use_cuda = cuda and device_flag != "cpu"
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
        # TF32 for the fp32 parts (optimizer, LayerNorm under autocast): what NVIDIA's recipes use.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://", rank=rank, world_size=world)
    return Dist(rank, world, local, device, nnodes, node_rank)
