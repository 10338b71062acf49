"""Meta-training across processes: the meta-batch split, the meta-gradient averaged.

``torchrun --nproc_per_node=N -m mamllib.train ...`` starts N processes (ranks) and
tells each who it is through environment variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Every rank

- holds the same θ (the same seed initialises it, or the same checkpoint restores it),
- samples ``meta_batch_size / N`` tasks from its own stream, seeded with
  ``stream_seed(seed, rank)``,
- computes the meta-gradient of the mean query loss over its tasks,

and one ``all_reduce`` averages the meta-gradients, so every rank takes the Adam step
one process would take on all ``meta_batch_size`` tasks: the meta-objective
1/T Σᵢ L_query(θ'ᵢ) is a mean over tasks, and the mean of N equal-sized means is the
mean of the whole. Rank 0 alone evaluates, logs and writes the checkpoint, which holds
every rank's task-stream state: a resume with as many processes continues each stream
exactly; with another number, the streams restart from seeds derived from the saved
state (``Experiment.load_state``).

Without torchrun (or with ``WORLD_SIZE=1``) nothing here communicates: one process runs
exactly the code it ran before distributed training existed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

# Rank r's task stream starts from seed + r · 2³²: rank 0 keeps the single-process stream,
# and for any seed < 2³² no two ranks (or two seeds' rank 0) share a stream.
STREAM_STRIDE = 2**32


@dataclass(frozen=True)
class Context:
    """Who this process is in a torchrun launch (rank 0 of 1 without one).

    Attributes:
        rank: this process's index among all processes, 0 .. world_size − 1.
        world_size: number of processes meta-training together.
        local_rank: this process's index on its node; it picks the GPU ``cuda:local_rank``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process: gradients must be averaged."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0, the one process that evaluates, logs and writes checkpoints."""
        return self.rank == 0


def context() -> Context:
    """This process's place in the launch, from the environment variables torchrun sets."""
    env = os.environ
    if not all(key in env for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return Context()
    return Context(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))


def init(ctx: Context, device: torch.device) -> bool:
    """Join the process group of a multi-process launch: NCCL on CUDA, gloo on the CPU.

    Each rank's GPU is ``cuda:local_rank``. The rendezvous address comes from
    ``MASTER_ADDR`` and ``MASTER_PORT`` (set by torchrun).

    Returns:
        whether this call created the group (then ``cleanup`` should destroy it); False
        for a single process or a group that already exists.
    """
    if not ctx.enabled or dist.is_initialized():
        return False
    if device.type == "cuda":
        gpu = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(gpu)
        dist.init_process_group("nccl", rank=ctx.rank, world_size=ctx.world_size, device_id=gpu)
    else:
        dist.init_process_group("gloo", rank=ctx.rank, world_size=ctx.world_size)
    return True


def cleanup() -> None:
    """Leave the process group (``init`` returned True)."""
    dist.destroy_process_group()


def split_meta_batch(meta_batch_size: int, world_size: int) -> int:
    """Tasks per rank: ``meta_batch_size / world_size``, which must be a whole number.

    Equal shares keep the average of the ranks' meta-gradients equal to the meta-gradient
    of the whole meta-batch.
    """
    if meta_batch_size % world_size:
        raise ValueError(
            f"meta_batch_size={meta_batch_size} cannot be split evenly across "
            f"world_size={world_size} processes; use a multiple of {world_size}"
        )
    return meta_batch_size // world_size


def stream_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s task stream: ``seed + rank · 2³²`` (rank 0: ``seed``)."""
    return seed + rank * STREAM_STRIDE


def average_gradients(parameters: Iterable[Tensor], loss: Tensor) -> float:
    """Average the parameters' gradients and the loss over all ranks, in place.

    One ``all_reduce`` of a flat buffer holding every gradient and the loss: one message
    instead of one per tensor, and every rank gets the loss of the whole meta-batch, so
    all of them log the same number and stop together if it diverges.

    Args:
        parameters: the tensors whose ``.grad`` to average (those without one are
            skipped; they are the same on every rank, as every rank runs the same graph).
        loss: this rank's loss (a scalar).

    Returns:
        the loss averaged over ranks (``loss.item()`` in a single process).
    """
    ctx = context()
    if not ctx.enabled:
        return loss.item()
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1)])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    for grad, mean in zip(grads, flat[:-1].split([g.numel() for g in grads])):
        grad.copy_(mean.view_as(grad))
    return flat[-1].item()


def all_gather(obj: Any) -> list[Any]:
    """``obj`` (any picklable value) from every rank of the process group, in rank order."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
