"""What every experiment shares: the MAML hyperparameters, devices, checkpoint state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mamllib.checkpoints import load_state_strict
from mamllib.checks import check_int, check_positive_float
from mamllib.maml import MAML, PATHS, MAMLConfig

METHODS = ("maml", "pretrain")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else must be a valid device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a torch device (try 'cpu', 'cuda', 'auto')"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for CUDA, but no CUDA device is available")
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
        if self.path not in PATHS:
            raise ValueError(f"path={self.path!r} is not one of {PATHS}")
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
    """

    name: str
    model_name: str
    config_cls: type
    config: Any
    device: torch.device
    learner: MAML
    optimizer: torch.optim.Optimizer
    generator: torch.Generator

    def state(self) -> dict[str, Any]:
        return {
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "generator_device": self.generator.device.type,
        }

    def load_state(self, state: dict[str, Any], source: str) -> None:
        load_state_strict(self.learner, state["learner"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("generator_device", "cpu") == self.generator.device.type:
            self.generator.set_state(state["generator"])
        else:
            # A CPU generator's state cannot drive a CUDA generator (or back): continue the
            # task stream from a seed derived from the saved state, deterministically.
            self.generator.manual_seed(int(state["generator"].sum()) + self.config.seed)
