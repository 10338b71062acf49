"""What every experiment shares: the MAML hyperparameters, devices, checkpoint state."""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from mamllib import distributed
from mamllib.checkpoints import load_state_strict
from mamllib.checks import check_int, check_positive_float
from mamllib.maml import MAML, MAMLConfig, check_path

METHODS = ("maml", "pretrain")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else must be a valid device.

    Under torchrun, CUDA means this process's own GPU, ``cuda:LOCAL_RANK``.
    """
    if device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"--device {device!r} is not a torch device; use 'cpu', 'cuda' or 'auto'"
            ) from None
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"--device {device} asks for CUDA, but this torch sees no CUDA device; "
                "use --device cpu or --device auto"
            )
        count = torch.cuda.device_count() if resolved.type == "cuda" else 0
        if resolved.type == "cuda" and (resolved.index or 0) >= count:
            valid = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise ValueError(
                f"--device {device} asks for GPU {resolved.index}, but this machine has "
                f"{count} ({valid})"
            )
    ctx = distributed.context()
    if resolved.type == "cuda" and ctx.enabled:
        if resolved.index is not None:
            raise ValueError(
                f"device={device!r} names one GPU, but under torchrun each process uses its "
                "own, cuda:LOCAL_RANK; pass device='cuda' or 'auto'"
            )
        resolved = torch.device("cuda", ctx.local_rank)
    return resolved


@dataclass(frozen=True)
class MetaTrainingConfig:
    """The fields every experiment's config has; each domain sets its paper's defaults.

    Attributes:
        method: ``"maml"`` (meta-learn θ) or ``"pretrain"`` (the paper's baseline: one
            network trained on all tasks jointly, fine-tuned at test time).
        inner_lr: α, the inner step size.
        inner_steps: inner updates during meta-training.
        first_order: first-order MAML (drop the Hessian term).
        learn_inner_lr: Meta-SGD, per-parameter learnable α.
        outer_lr: β, Adam's learning rate.
        meta_batch_size: tasks per meta-update.
        iterations: meta-updates in total.
        seed: seeds the initial weights and the task stream.
        eval_every: iterations between validation evaluations (and log entries).
        eval_tasks: validation tasks (fixed, drawn from their own seed).
        checkpoint_every: iterations between checkpoints.
        path: meta-batch implementation, ``"vmap"``, ``"loop"`` or ``"auto"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    method: str = "maml"
    inner_lr: float = 0.01
    inner_steps: int = 1
    first_order: bool = False
    learn_inner_lr: bool = False
    outer_lr: float = 1e-3
    meta_batch_size: int = 25
    iterations: int = 10_000
    seed: int = 0
    eval_every: int = 1_000
    eval_tasks: int = 100
    checkpoint_every: int = 1_000
    path: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not one of {METHODS}")
        for name in ("meta_batch_size", "iterations", "eval_every", "checkpoint_every"):
            check_int(name, getattr(self, name), 1)
        check_int("eval_tasks", self.eval_tasks, 2)
        check_int("seed", self.seed, 0)
        check_positive_float("outer_lr", self.outer_lr)
        check_path(self.path)
        self.maml_config()  # validates α, steps and order

    def maml_config(self) -> MAMLConfig:
        return MAMLConfig(
            inner_lr=self.inner_lr,
            inner_steps=self.inner_steps,
            outer_lr=self.outer_lr,
            first_order=self.first_order,
            learn_inner_lr=self.learn_inner_lr,
            path=self.path,
        )


class Experiment:
    """What ``mamllib.train.fit`` needs of a domain, and the checkpoint state they share.

    A subclass sets ``name``, ``model_name``, ``config_cls``, and in ``__init__`` the
    attributes ``config``, ``device``, ``learner``, ``optimizer`` and ``generator`` (the
    task stream); it implements ``build_learner``, ``train_step``, ``evaluate`` and
    ``headline``.

    An experiment that sets ``supports_distributed = True`` can run under torchrun
    (``mamllib.distributed``): its ``generator`` comes from ``task_generator``, its
    ``train_step`` samples ``local_meta_batch`` tasks and ends with ``meta_update``.
    """

    supports_distributed = False
    name: str
    model_name: str
    config_cls: type
    config: Any
    device: torch.device
    learner: MAML
    optimizer: torch.optim.Optimizer
    generator: torch.Generator

    def task_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """This rank's task stream, seeded with ``stream_seed(seed, rank)`` (one process: ``seed``)."""
        rank = distributed.context().rank
        return torch.Generator(device).manual_seed(distributed.stream_seed(self.config.seed, rank))

    @property
    def local_meta_batch(self) -> int:
        """Tasks this rank meta-trains on per step: ``meta_batch_size / world_size``."""
        world_size = distributed.context().world_size
        return distributed.split_meta_batch(self.config.meta_batch_size, world_size)

    def use_cuda_graph(self, requested: bool | None) -> None:
        """How ``train_step`` runs its meta-update: ``True`` captures it in a CUDA graph
        (``mamllib.fast.graph``), ``False`` runs it eagerly, ``None`` chooses. This domain's
        step is eager: only ``None`` and ``False`` are accepted.

        Raises:
            ValueError: a graph asked of an experiment that has none.
        """
        if requested:
            raise ValueError(f"--cuda-graph: the {self.name!r} experiment has no captured step")

    def meta_update(self, loss: torch.Tensor) -> float:
        """θ ← Adam(θ, ∇_θ loss), the gradient averaged over ranks; the loss, averaged too."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = distributed.average_gradients(self.learner.parameters(), loss)
        self.optimizer.step()
        return value

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds to resume exactly.

        Under torchrun this is a collective (every rank must call it): ``"generators"``
        gathers every rank's task-stream state, in rank order; ``"generator"`` is this
        rank's alone, as in a single process.
        """
        state = {
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "generator_device": self.generator.device.type,
        }
        if distributed.context().enabled:
            state["generators"] = distributed.all_gather(state["generator"])
        return state

    def load_state(self, state: dict[str, Any], source: str) -> None:
        """Restore ``state()``; each rank takes back its own task stream.

        A task stream continues exactly when the checkpoint was written by as many ranks
        as run now, on the same kind of device. Otherwise (a CPU generator's state cannot
        drive a CUDA generator, and another number of ranks splits the meta-batch
        differently) each rank's stream restarts from a seed derived from the saved state
        and its rank, deterministically: training continues, but not bit for bit.
        """
        load_state_strict(self.learner, state["learner"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        ctx = distributed.context()
        # Checkpoints of one process (and those from before distributed training) hold one.
        streams = state.get("generators", [state["generator"]])
        same_device = state.get("generator_device", "cpu") == self.generator.device.type
        if same_device and len(streams) == ctx.world_size:
            self.generator.set_state(streams[ctx.rank])
            return
        if len(streams) != ctx.world_size and ctx.is_main:
            warnings.warn(
                f"{source} was written by {len(streams)} process(es) and this run has "
                f"{ctx.world_size}: weights, Adam's state and the iteration continue, but "
                "the task streams restart from seeds derived from the saved state, so the "
                "run will not match an uninterrupted one bit for bit",
                stacklevel=2,
            )
        seed = distributed.stream_seed(self.config.seed, ctx.rank)
        self.generator.manual_seed(int(streams[0].sum()) + seed)


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One command-line flag per field of a config dataclass (``--inner-lr`` for ``inner_lr``)."""
    defaults = config_cls()
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        doc = f"(default: {default})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=doc)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=int, nargs="+", default=None, help=doc)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=doc)
