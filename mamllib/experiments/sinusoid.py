"""Sinusoid regression (the paper's Section 5.1): config, learner and training step.

Training and its validation only: the test tasks, the shipped checkpoints, Table 2 and
Figures 2 and 3 are in ``mamllib.paper.sinusoid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mamllib.baselines import multitask_loss
from mamllib.checks import check_int, check_steps
from mamllib.evaluate import adaptation_curve, summarize_curve
from mamllib.experiments.common import Experiment, MetaTrainingConfig, resolve_device
from mamllib.maml import MAML
from mamllib.models import MLP
from mamllib.tasks.sinusoid import SinusoidTasks


@dataclass(frozen=True)
class SinusoidConfig(MetaTrainingConfig):
    """One sinusoid-regression experiment, with the paper's Section 5.1 defaults.

    The fields of ``MetaTrainingConfig`` (α = 0.01, one inner step, meta-batch 25,
    70,000 iterations here), and:

    Attributes:
        k_shot: K, support points per task.
        k_query: query points per task during training.
        hidden: widths of the hidden layers of the MLP.
        eval_steps: validation reports the query MSE after 0..eval_steps inner steps.
    """

    inner_lr: float = 0.01
    meta_batch_size: int = 25
    iterations: int = 70_000
    eval_every: int = 2_000
    eval_tasks: int = 200
    checkpoint_every: int = 5_000
    k_shot: int = 10
    k_query: int = 10
    hidden: tuple[int, ...] = (40, 40)
    eval_steps: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hidden", tuple(self.hidden))
        check_int("k_shot", self.k_shot, 1)
        check_int("k_query", self.k_query, 1)
        check_steps(self.eval_steps, "eval_steps")
        for width in self.hidden:
            check_int("hidden layer width", width, 1)


def build_sinusoid_learner(config: SinusoidConfig, device: torch.device | str = "cpu") -> MAML:
    """The MLP 1-H-...-H-1 wrapped as a MAML learner (also used for the pre-trained net)."""
    model = MLP((1, *config.hidden, 1))
    return MAML(model, F.mse_loss, config.maml_config()).to(device)


class SinusoidExperiment(Experiment):
    """Everything one sinusoid run needs: learner, optimiser, task stream, validation set."""

    name = "sinusoid"
    model_name = "sinusoid-mlp"
    config_cls = SinusoidConfig
    supports_distributed = True

    def __init__(self, config: SinusoidConfig):
        self.config = config
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.learner = self.build_learner(config, self.device)
        self.optimizer = self.learner.make_optimizer()
        self.tasks = SinusoidTasks()
        self.generator = self.task_generator()
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
        batch = self.tasks.sample(
            self.local_meta_batch, c.k_shot, c.k_query, generator=self.generator
        )
        if c.method == "maml":
            loss = self.learner.meta_loss(batch).loss
        else:
            loss = multitask_loss(self.learner.model, self.learner.params, batch, F.mse_loss)
        return self.meta_update(loss)

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
