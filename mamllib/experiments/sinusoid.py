"""Sinusoid regression (the paper's Section 5.1): config, learner and training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mamllib.baselines import multitask_loss
from mamllib.checkpoints import load_state_strict
from mamllib.evaluate import adaptation_curve, summarize_curve
from mamllib.experiments.common import check_int, resolve_device
from mamllib.maml import MAML, PATHS, MAMLConfig, check_positive_float, check_steps
from mamllib.models import MLP
from mamllib.tasks.sinusoid import SinusoidTasks

METHODS = ("maml", "pretrain")


@dataclass(frozen=True)
class SinusoidConfig:
    """One sinusoid-regression experiment (the paper's Section 5.1 defaults).

    Attributes:
        method: ``"maml"`` (meta-learn θ) or ``"pretrain"`` (one network trained on all
            tasks jointly, the paper's baseline).
        inner_lr: α, the inner step size (paper's text: 0.01).
        inner_steps: inner updates during meta-training.
        first_order: first-order MAML (drop the Hessian term).
        learn_inner_lr: Meta-SGD, per-parameter learnable α.
        outer_lr: β, Adam's learning rate.
        meta_batch_size: tasks per meta-update.
        k_shot: K, support points per task.
        k_query: query points per task during training.
        hidden: widths of the hidden layers of the MLP.
        iterations: meta-updates in total.
        seed: seeds the initial weights and the task stream.
        eval_every: iterations between validation evaluations (and log entries).
        eval_tasks: validation tasks (fixed, drawn from their own seed).
        eval_steps: validation reports the query MSE after 0..eval_steps inner steps.
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
    k_shot: int = 10
    k_query: int = 10
    hidden: tuple[int, ...] = (40, 40)
    iterations: int = 70_000
    seed: int = 0
    eval_every: int = 2_000
    eval_tasks: int = 200
    eval_steps: int = 10
    checkpoint_every: int = 5_000
    path: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not one of {METHODS}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("meta_batch_size", "k_shot", "k_query", "iterations", "eval_every",
                     "checkpoint_every"):  # fmt: skip
            check_int(name, getattr(self, name), 1)
        check_int("eval_tasks", self.eval_tasks, 2)
        check_int("seed", self.seed, 0)
        check_steps(self.eval_steps, "eval_steps")
        for width in self.hidden:
            check_int("hidden layer width", width, 1)
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


def build_sinusoid_learner(config: SinusoidConfig, device: torch.device | str = "cpu") -> MAML:
    """The MLP 1-H-...-H-1 wrapped as a MAML learner (also used for the pre-trained net)."""
    model = MLP((1, *config.hidden, 1))
    return MAML(model, F.mse_loss, config.maml_config()).to(device)


class SinusoidExperiment:
    """Everything one sinusoid run needs: learner, optimiser, task stream, validation set."""

    name = "sinusoid"
    model_name = "sinusoid-mlp"
    config_cls = SinusoidConfig

    def __init__(self, config: SinusoidConfig):
        self.config = config
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.learner = self.build_learner(config, self.device)
        self.optimizer = self.learner.make_optimizer()
        self.tasks = SinusoidTasks()
        self.generator = torch.Generator().manual_seed(config.seed)
        # Validation tasks come from their own seed, never from the training stream.
        self.val_batch = self.tasks.sample(
            config.eval_tasks,
            config.k_shot,
            100,
            generator=torch.Generator().manual_seed(10_000 + config.seed),
        )

    @staticmethod
    def build_learner(config: SinusoidConfig, device: torch.device | str = "cpu") -> MAML:
        return build_sinusoid_learner(config, device)

    def train_step(self) -> float:
        c = self.config
        batch = self.tasks.sample(c.meta_batch_size, c.k_shot, c.k_query, generator=self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        if c.method == "maml":
            loss = self.learner.meta_loss(batch).loss
        else:
            loss = multitask_loss(self.learner.model, self.learner.params, batch, F.mse_loss)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def evaluate(self) -> dict[str, Any]:
        curve = adaptation_curve(
            self.learner.model,
            self.learner.params,
            self.val_batch,
            F.mse_loss,
            inner_lr=self.learner.inner_lr,
            steps=self.config.eval_steps,
        )
        return {"val_mse": summarize_curve(curve)["mean"]}

    @staticmethod
    def headline(metrics: dict[str, Any]) -> str:
        mse = metrics["val_mse"]
        return f"val MSE {mse[0]:.3f} -> {mse[-1]:.3f} ({len(mse) - 1} steps)"

    def state(self) -> dict[str, Any]:
        return {
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state(self, state: dict[str, Any], source: str) -> None:
        load_state_strict(self.learner, state["learner"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
