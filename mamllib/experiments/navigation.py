"""2D navigation (the paper's Section 5.3, Table 4): MAML for reinforcement learning.

A task is a goal g ~ U[−0.5, 0.5]²; the policy must learn to walk to it from the reward
alone. ``method="maml"`` meta-learns θ with one REINFORCE inner step and a TRPO outer
step through it; ``method="pretrain"`` is the paper's baseline (the same TRPO on goals
from the whole distribution, no inner step); ``oracle=True`` with ``"pretrain"`` trains
the oracle, a policy that is told the goal.

    python -m mamllib.train navigation --out checkpoints/navigation_maml.pt
    python -m mamllib.train navigation --method pretrain --out checkpoints/navigation_pretrain.pt

Training and its validation only: the test goals, the shipped policies and Table 4 are in
``mamllib.paper.navigation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mamllib.checkpoints import load_state_strict
from mamllib.checks import check_int, check_positive_float
from mamllib.evaluate import mean_ci95
from mamllib.experiments.common import Experiment, MetaTrainingConfig, resolve_device
from mamllib.rl.env import sample_goals
from mamllib.rl.meta import adaptation_returns, meta_objective, sample_meta_batch
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.trpo import trpo_step

VALIDATION_SEED_OFFSET = 10_000
OPTIMIZERS = ("trpo", "adam")  # the meta-update (``NavigationConfig.optimizer``)
EVAL_NOISE_SEED_OFFSET = 20_000


@dataclass(frozen=True)
class NavigationConfig(MetaTrainingConfig):
    """One 2D-navigation experiment, with the paper's defaults (its Appendix A.2 and code).

    Fields of ``MetaTrainingConfig`` used here: ``method``, ``inner_lr`` (α = 0.1),
    ``inner_steps`` (1; the only value supported), ``first_order``, ``meta_batch_size``
    (20 goals), ``iterations``, ``seed``, ``eval_every``, ``eval_tasks`` (40 validation
    goals), ``checkpoint_every``, ``device``, ``outer_lr`` (β, only with
    ``optimizer="adam"``: TRPO's step is set by ``max_kl``). ``learn_inner_lr`` must be
    False and ``path`` "auto" or "vmap" (tasks are always batched with ``vmap``).

    Attributes:
        episodes: trajectories per task for the inner step, and again for the
            post-adaptation (outer) data (the paper: 20).
        horizon: H, steps per episode (100).
        discount: γ of the returns the baseline and advantages use (0.99).
        hidden: hidden layer widths of the policy's mean network ((100, 100)).
        init_log_std: log σ of the policy at initialisation (0: σ = 1).
        center_advantages: standardise advantages per task (rllab's ``center_adv``,
            on in the paper's code).
        max_kl: δ, TRPO's trust region on the mean KL (0.01).
        cg_iters: conjugate-gradient iterations (10).
        cg_damping: added to the KL Hessian in CG (1e-5).
        backtrack_ratio: line-search shrink factor (0.8).
        max_backtracks: line-search tries (15).
        fvp_fraction: fraction of the meta-batch's tasks whose KL the Hessian-vector
            products use (1.0, the paper); smaller is cheaper (TRPO implementations
            commonly subsample here), the gradient always uses every task.
        oracle: the policy also observes the goal (only with ``method="pretrain"``).
        eval_episodes: trajectories per goal and step in evaluation (the paper: 40).
        eval_steps: adaptation steps in evaluation (3).
        eval_inner_lr: α of the evaluation steps after the first (the first uses
            ``inner_lr``): the paper's 0.1 then 0.05.
        activation: the policy's hidden activation, ``"relu"`` (the paper's policies) or
            ``"tanh"`` (rllab's default, the paper's code's randomly initialised baseline).
        optimizer: the meta-update. ``"trpo"``: TRPO on the surrogate (the paper);
            ``"adam"``: one full-batch Adam step of size β = ``outer_lr`` on the same
            surrogate per iteration — how the paper's code trained its pre-trained
            baseline (``MAMLTRPO(use_maml=False)`` swaps TRPO for rllab's
            ``FirstOrderOptimizer``: Adam, learning rate 1e-3, one epoch, full batch).
    """

    inner_lr: float = 0.1
    meta_batch_size: int = 20
    iterations: int = 500
    eval_every: int = 25
    eval_tasks: int = 40
    checkpoint_every: int = 10
    episodes: int = 20
    horizon: int = 100
    discount: float = 0.99
    hidden: tuple[int, ...] = (100, 100)
    init_log_std: float = 0.0
    center_advantages: bool = True
    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 1e-5
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15
    fvp_fraction: float = 1.0
    oracle: bool = False
    eval_episodes: int = 40
    eval_steps: int = 3
    eval_inner_lr: float = 0.05
    activation: str = "relu"
    optimizer: str = "trpo"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.inner_steps != 1:
            raise ValueError(
                f"inner_steps={self.inner_steps!r}: navigation meta-trains with one inner step"
            )
        if self.learn_inner_lr:
            raise ValueError("learn_inner_lr=True (Meta-SGD) is not supported for navigation")
        if self.path not in ("auto", "vmap"):
            raise ValueError(
                f"path={self.path!r} is not available for navigation: its tasks run under "
                "vmap (valid: 'auto', 'vmap')"
            )
        for name in ("episodes", "horizon", "cg_iters", "max_backtracks", "eval_episodes"):
            check_int(name, getattr(self, name), 1)
        check_int("eval_steps", self.eval_steps, 0)
        for width in self.hidden:
            check_int("hidden layer width", width, 1)
        for name in ("max_kl", "cg_damping", "eval_inner_lr"):
            check_positive_float(name, getattr(self, name))
        for name in ("discount", "backtrack_ratio", "fvp_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not (0 < value <= 1) or (name == "backtrack_ratio" and value == 1):
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if not math.isfinite(self.init_log_std):
            raise ValueError(f"init_log_std must be finite, got {self.init_log_std!r}")
        if self.activation not in ("relu", "tanh"):
            raise ValueError(f"activation={self.activation!r}: valid are 'relu', 'tanh'")
        if self.optimizer not in OPTIMIZERS:
            valid = ", ".join(repr(o) for o in OPTIMIZERS)
            raise ValueError(f"optimizer={self.optimizer!r}: valid are {valid}")
        if self.oracle and self.method != "pretrain":
            raise ValueError(
                f"oracle=True needs method='pretrain' (it knows the goal), got {self.method!r}"
            )

    @property
    def eval_inner_lrs(self) -> tuple[float, ...]:
        """α of each evaluation step: ``inner_lr`` then ``eval_inner_lr`` (0.1, 0.05, 0.05)."""
        return tuple([self.inner_lr] + [self.eval_inner_lr] * (self.eval_steps - 1))[
            : self.eval_steps
        ]


def build_navigation_policy(config: NavigationConfig, device: torch.device | str = "cpu"):
    """The Gaussian MLP policy (observing the goal too for the oracle)."""
    obs_dim = 4 if config.oracle else 2
    return GaussianMLPPolicy(obs_dim, 2, config.hidden, config.init_log_std,
                             config.activation).to(device)  # fmt: skip


def evaluate_policy(
    policy: nn.Module,
    config: NavigationConfig,
    goals: Tensor,
    *,
    seed: int,
    episodes: int | None = None,
    inner_lrs: tuple[float, ...] | None = None,
    keep_trajectories: bool = False,
    keep_params: bool = False,
    sampler: str = "episodes",
):
    """Table 4's protocol for one policy: returns after 0..S steps on each goal.

    Args:
        goals: ``[G, 2]`` test goals.
        seed: seeds the action noise, so a re-evaluation repeats exactly.
        episodes: trajectories per goal and step (default ``config.eval_episodes``).
        inner_lrs: α per step (default ``config.eval_inner_lrs``).
        sampler: ``"episodes"`` or ``"steps"`` (``mamllib.rl.meta.adaptation_returns``).

    Returns:
        ``mamllib.rl.meta.AdaptationResult`` (``returns [G, S + 1]``).
    """
    device = next(policy.parameters()).device
    return adaptation_returns(
        policy,
        dict(policy.named_parameters()),
        goals.to(device),
        inner_lrs=config.eval_inner_lrs if inner_lrs is None else inner_lrs,
        episodes=config.eval_episodes if episodes is None else episodes,
        generator=torch.Generator(device).manual_seed(seed),
        horizon=config.horizon,
        discount=config.discount,
        center_advantages=config.center_advantages,
        goal_in_obs=config.oracle,
        keep_trajectories=keep_trajectories,
        keep_params=keep_params,
        sampler=sampler,
    )


def summarize_returns(returns: Tensor) -> dict[str, Any]:
    """``[G, S + 1]`` returns -> JSON-friendly mean and 95% CI half-width per step."""
    mean, ci = mean_ci95(returns, dim=0)
    return {"mean": mean.tolist(), "ci95": ci.tolist(), "num_goals": returns.shape[0]}


class NavigationExperiment(Experiment):
    """Policy, task stream and validation goals of one navigation run; TRPO (or Adam)
    as the meta-update."""

    name = "navigation"
    model_name = "navigation-gaussian-mlp"
    config_cls = NavigationConfig

    def __init__(self, config: NavigationConfig):
        self.config = config
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.learner = self.build_learner(config, self.device)
        # TRPO keeps no state between steps; Adam keeps its moments (checkpointed).
        self.optimizer = (
            torch.optim.Adam(self.learner.parameters(), lr=config.outer_lr)
            if config.optimizer == "adam" else None
        )  # fmt: skip
        # All the randomness of training (goals and action noise) comes from here.
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.val_goals = sample_goals(
            config.eval_tasks,
            torch.Generator().manual_seed(VALIDATION_SEED_OFFSET + config.seed),
        ).to(self.device)
        self.last_step: dict[str, float] = {}

    @staticmethod
    def build_learner(config: NavigationConfig, device: torch.device | str = "cpu"):
        return build_navigation_policy(config, device)

    def train_step(self) -> float:
        """One meta-iteration; returns −(mean return of the post-adaptation episodes)."""
        c = self.config
        policy = self.learner
        params = dict(policy.named_parameters())
        goals = sample_goals(c.meta_batch_size, self.generator)
        inner_lr = c.inner_lr if c.method == "maml" else None
        batch = sample_meta_batch(
            policy, params, goals, inner_lr=inner_lr, episodes=c.episodes,
            generator=self.generator, horizon=c.horizon, discount=c.discount,
            center_advantages=c.center_advantages, goal_in_obs=c.oracle,
        )  # fmt: skip
        fvp_batch = batch.head(max(1, round(c.fvp_fraction * c.meta_batch_size)))

        def objective(theta, differentiable):
            return meta_objective(policy, theta, batch, inner_lr=inner_lr,
                                  first_order=c.first_order, differentiable=differentiable)  # fmt: skip

        def fvp_kl(theta):
            return meta_objective(policy, theta, fvp_batch, inner_lr=inner_lr,
                                  first_order=c.first_order)[1]  # fmt: skip

        if self.optimizer is not None:  # Adam: one full-batch step on the surrogate
            stats = {"loss_before": self.meta_update(objective(params, True)[0])}
        else:
            stats = trpo_step(
                params, objective, max_kl=c.max_kl, cg_iters=c.cg_iters, damping=c.cg_damping,
                backtrack_ratio=c.backtrack_ratio, max_backtracks=c.max_backtracks,
                fvp_kl=fvp_kl if c.fvp_fraction < 1 else None,
            )  # fmt: skip
        post = batch.post.episode_returns.mean().item()
        pre = batch.pre.episode_returns.mean().item() if batch.pre is not None else post
        self.last_step = {**stats, "pre_return": pre, "post_return": post}
        return -post

    def evaluate(self) -> dict[str, Any]:
        c = self.config
        result = evaluate_policy(self.learner, c, self.val_goals,
                                 seed=EVAL_NOISE_SEED_OFFSET + c.seed)  # fmt: skip
        return {"val_return": result.returns.mean(0).tolist(),
                "last_step": dict(self.last_step)}  # fmt: skip

    @staticmethod
    def headline(metrics: dict[str, Any]) -> str:
        r = metrics["val_return"]
        return "val return " + " -> ".join(f"{v:.1f}" for v in r) + f" ({len(r) - 1} steps)"

    def state(self) -> dict[str, Any]:
        state = {
            "learner": self.learner.state_dict(),
            "generator": self.generator.get_state(),
            "generator_device": self.generator.device.type,
        }
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state(self, state: dict[str, Any], source: str) -> None:
        load_state_strict(self.learner, state["learner"], source)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if state.get("generator_device", "cpu") == self.generator.device.type:
            self.generator.set_state(state["generator"])
        else:
            # A CPU generator's state cannot drive a CUDA one: continue deterministically.
            self.generator.manual_seed(int(state["generator"].sum()) + self.config.seed)
