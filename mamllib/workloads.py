"""Meta-training workloads of the paper's shapes, on random data: what costs are measured on.

Each ``Workload`` is one configuration of the paper (the sinusoid MLP, the Omniglot
Conv4 at 5-way and 20-way, and the four training settings of Table 1) with a batch of random inputs of the right shapes, so that
no data set is needed. ``build`` makes a seeded model, a fixed batch and Adam over θ;
``meta_iteration`` is one meta-update on that batch: what ``mamllib.cost`` and the
benchmark (``python -m mamllib.tools.bench``) time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mamllib.batch import TaskBatch
from mamllib.fast.graph import MetaStep
from mamllib.maml import LossFn, meta_loss
from mamllib.models import MLP, Conv4
from mamllib.tasks.sinusoid import SinusoidTasks

SEED = 0


@dataclass(frozen=True)
class Workload:
    """One benchmarked meta-training configuration.

    Attributes:
        name: short name used by ``--workloads`` (e.g. ``"W1"``).
        description: one line for the report.
        build_model: returns a fresh model (called after seeding, so θ is fixed).
        make_batch: ``make_batch(meta_batch_size, generator) -> TaskBatch`` of random
            data with the paper's shapes, on the CPU.
        loss_fn: ``loss_fn(prediction, target) -> scalar``.
        inner_lr: α.
        steps: inner updates per task.
        first_order: first-order MAML (drop the Hessian term).
        meta_batch_size: tasks per meta-update.
        outer_lr: β, Adam's learning rate.
    """

    name: str
    description: str
    build_model: Callable[[], nn.Module]
    make_batch: Callable[[int, torch.Generator], TaskBatch]
    loss_fn: LossFn
    inner_lr: float
    steps: int
    first_order: bool
    meta_batch_size: int
    outer_lr: float = 1e-3


def _sinusoid_mlp() -> nn.Module:
    return MLP((1, 40, 40, 1))


def _sinusoid_batch(meta_batch_size: int, generator: torch.Generator) -> TaskBatch:
    return SinusoidTasks().sample(meta_batch_size, 10, 10, generator=generator)


W1 = Workload(
    name="W1",
    description="sinusoid MLP 1-40-40-1, K=10+10, 25 tasks, 1 inner step, second-order",
    build_model=_sinusoid_mlp,
    make_batch=_sinusoid_batch,
    loss_fn=F.mse_loss,
    inner_lr=0.01,
    steps=1,
    first_order=False,
    meta_batch_size=25,
)


def _omniglot_batch(n_way: int, k_shot: int, k_query: int):
    def make(meta_batch_size: int, generator: torch.Generator) -> TaskBatch:
        def images(per_class: int) -> torch.Tensor:
            return torch.rand(meta_batch_size, n_way * per_class, 1, 28, 28, generator=generator)

        def labels(per_class: int) -> torch.Tensor:
            return torch.arange(n_way).repeat_interleave(per_class).repeat(meta_batch_size, 1)

        return TaskBatch(images(k_shot), labels(k_shot), images(k_query), labels(k_query))

    return make


W3 = Workload(
    name="W3",
    description="Omniglot Conv4, 5-way 1-shot, 15 query/class, 32 tasks, 1 inner step, second-order",
    build_model=lambda: Conv4(5),
    make_batch=_omniglot_batch(5, 1, 15),
    loss_fn=F.cross_entropy,
    inner_lr=0.4,
    steps=1,
    first_order=False,
    meta_batch_size=32,
)

W4 = Workload(
    name="W4",
    description="Omniglot Conv4, 20-way 1-shot, 15 query/class, 16 tasks, 5 inner steps, second-order",
    build_model=lambda: Conv4(20),
    make_batch=_omniglot_batch(20, 1, 15),
    loss_fn=F.cross_entropy,
    inner_lr=0.1,
    steps=5,
    first_order=False,
    meta_batch_size=16,
)


def _table1(n_way: int, k_shot: int) -> Workload:
    """One of the paper's four Omniglot training settings (Table 1), second-order, with one
    query image per class as in its code: 5-way α = 0.4, 1 inner step, 32 tasks; 20-way
    α = 0.1, 5 inner steps, 16 tasks."""
    five = n_way == 5
    tasks, steps = (32, 1) if five else (16, 5)
    return Workload(
        name=f"T1-{n_way}w{k_shot}s",
        description=f"Table 1: Omniglot Conv4, {n_way}-way {k_shot}-shot, 1 query/class, "
        f"{tasks} tasks, {steps} inner step{'s' if steps > 1 else ''}, second-order",
        build_model=lambda: Conv4(n_way),
        make_batch=_omniglot_batch(n_way, k_shot, 1),
        loss_fn=F.cross_entropy,
        inner_lr=0.4 if five else 0.1,
        steps=steps,
        first_order=False,
        meta_batch_size=tasks,
    )


TABLE1 = tuple(_table1(n_way, k_shot) for n_way in (5, 20) for k_shot in (1, 5))

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        W1,
        dataclasses.replace(
            W1,
            name="W1-FO",
            description=W1.description.replace("second-order", "first-order"),
            first_order=True,
        ),
        dataclasses.replace(
            W1,
            name="W2",
            description=W1.description.replace("1 inner step", "5 inner steps"),
            steps=5,
        ),
        W3,
        dataclasses.replace(
            W3,
            name="W3-FO",
            description=W3.description.replace("second-order", "first-order"),
            first_order=True,
        ),
        W4,
        *TABLE1,
    )
}


def parse_workloads(spec: str) -> list[Workload]:
    """``"W1,W2"`` -> the workloads, in that order; unknown names raise ``ValueError``."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise ValueError(
            f"unknown workload(s) {unknown or [spec]}; valid names: {', '.join(WORKLOADS)}"
        )
    return [WORKLOADS[n] for n in dict.fromkeys(names)]


@dataclass
class Setup:
    """What one measurement needs: the seeded model, a fixed batch and Adam over θ (and, for
    the path ``"graph"``, the captured meta-step, made on its first iteration)."""

    model: nn.Module
    batch: TaskBatch
    optimizer: torch.optim.Optimizer
    graph: MetaStep | None = None


def _floating(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t.to(dtype) if t.is_floating_point() else t


def build(workload: Workload, device: torch.device, dtype: torch.dtype = torch.float32) -> Setup:
    """The workload's model (seeded with ``SEED``), its fixed batch and Adam, on ``device``.

    Args:
        workload: what to build.
        device: where the model and the batch go.
        dtype: the floating-point type of θ and of the inputs (labels keep theirs).

    Returns:
        A ``Setup``; the same θ and batch on every call.
    """
    torch.manual_seed(SEED)
    model = workload.build_model().to(device, dtype)
    b = workload.make_batch(workload.meta_batch_size, torch.Generator().manual_seed(SEED))
    batch = TaskBatch(
        *(_floating(t, dtype) for t in (b.x_support, b.y_support, b.x_query, b.y_query))
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=workload.outer_lr)
    return Setup(model, batch, optimizer)


def objective(workload: Workload, setup: Setup, path: str) -> Tensor:
    """The meta-loss of the setup's batch at the model's current θ, on ``path`` of ``meta_loss``."""
    return meta_loss(
        setup.model,
        dict(setup.model.named_parameters()),
        setup.batch,
        workload.loss_fn,
        inner_lr=workload.inner_lr,
        steps=workload.steps,
        first_order=workload.first_order,
        path=path,
        buffers=dict(setup.model.named_buffers()),
    ).loss


def meta_iteration(workload: Workload, setup: Setup, path: str) -> None:
    """What is timed: one meta-update on the fixed batch.

    ``path="graph"`` (CUDA): the ``"vmap"`` meta-update as training runs it on CUDA, captured
    in a CUDA graph and replayed (``mamllib.fast.graph.MetaStep``: its first
    ``mamllib.fast.graph.WARMUP`` iterations are eager, the next one captures).
    """
    if path == "graph":
        setup.graph = setup.graph or MetaStep(setup.optimizer, graph=True)
        setup.graph(lambda: objective(workload, setup, "vmap"))
        return
    setup.optimizer.zero_grad(set_to_none=True)
    objective(workload, setup, path).backward()
    setup.optimizer.step()
