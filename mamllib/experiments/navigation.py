"""2D navigation (the paper's Section 5.3, Table 4): MAML for reinforcement learning.

A task is a goal g ~ U[−0.5, 0.5]²; the policy must learn to walk to it from the reward
alone. ``method="maml"`` meta-learns θ with one REINFORCE inner step and a TRPO outer
step through it; ``method="pretrain"`` is the paper's baseline (the same TRPO on goals
from the whole distribution, no inner step); ``oracle=True`` with ``"pretrain"`` trains
the oracle, a policy that is told the goal.

    python -m mamllib.train navigation --out checkpoints/navigation_maml.pt
    python -m mamllib.train navigation --method pretrain --out checkpoints/navigation_pretrain.pt
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mamllib import paths
from mamllib.checkpoints import hardware, load_checkpoint, load_state_strict
from mamllib.checks import check_int, check_positive_float
from mamllib.evaluate import mean_ci95
from mamllib.experiments.common import Experiment, MetaTrainingConfig, resolve_device
from mamllib.progress import progress as progress_bar
from mamllib.rl.env import PointNavigation, sample_goals
from mamllib.rl.meta import adaptation_returns, meta_objective, sample_meta_batch
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.trpo import trpo_step

# Table 4 of Finn et al. (2017): average return after 0, 1, 2, 3 gradient steps.
PAPER_TABLE4 = {
    "MAML": (-40.41, -11.68, -3.33, -3.23),
    "pre-trained": (-40.81, -19.73, -11.72, -8.47),
    "random": (-82.7, -58.0, -53.8, -46.8),  # read off the paper's Figure 5 ("about")
}
VALIDATION_SEED_OFFSET = 10_000
EVAL_NOISE_SEED_OFFSET = 20_000


@dataclass(frozen=True)
class NavigationConfig(MetaTrainingConfig):
    """One 2D-navigation experiment, with the paper's defaults (its Appendix A.2 and code).

    Fields of ``MetaTrainingConfig`` used here: ``method``, ``inner_lr`` (α = 0.1),
    ``inner_steps`` (1; the only value supported), ``first_order``, ``meta_batch_size``
    (20 goals), ``iterations``, ``seed``, ``eval_every``, ``eval_tasks`` (40 validation
    goals), ``checkpoint_every``, ``device``. ``outer_lr`` is not used (TRPO's step is set
    by ``max_kl``), ``learn_inner_lr`` must be False and ``path`` "auto" or "vmap"
    (tasks are always batched with ``vmap``).

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
    return GaussianMLPPolicy(obs_dim, 2, config.hidden, config.init_log_std).to(device)


def evaluate_policy(
    policy: nn.Module,
    config: NavigationConfig,
    goals: Tensor,
    *,
    seed: int,
    episodes: int | None = None,
    inner_lrs: tuple[float, ...] | None = None,
    keep_trajectories: bool = False,
):
    """Table 4's protocol for one policy: returns after 0..S steps on each goal.

    Args:
        goals: ``[G, 2]`` test goals.
        seed: seeds the action noise, so a re-evaluation repeats exactly.
        episodes: trajectories per goal and step (default ``config.eval_episodes``).
        inner_lrs: α per step (default ``config.eval_inner_lrs``).

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
    )


def summarize_returns(returns: Tensor) -> dict[str, Any]:
    """``[G, S + 1]`` returns -> JSON-friendly mean and 95% CI half-width per step."""
    mean, ci = mean_ci95(returns, dim=0)
    return {"mean": mean.tolist(), "ci95": ci.tolist(), "num_goals": returns.shape[0]}


class NavigationExperiment(Experiment):
    """Policy, task stream and validation goals of one navigation run; TRPO as optimiser."""

    name = "navigation"
    model_name = "navigation-gaussian-mlp"
    config_cls = NavigationConfig

    def __init__(self, config: NavigationConfig):
        self.config = config
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.learner = self.build_learner(config, self.device)
        self.optimizer = None  # TRPO keeps no state between steps
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
        return {
            "learner": self.learner.state_dict(),
            "generator": self.generator.get_state(),
            "generator_device": self.generator.device.type,
        }

    def load_state(self, state: dict[str, Any], source: str) -> None:
        load_state_strict(self.learner, state["learner"], source)
        if state.get("generator_device", "cpu") == self.generator.device.type:
            self.generator.set_state(state["generator"])
        else:
            # A CPU generator's state cannot drive a CUDA one: continue deterministically.
            self.generator.manual_seed(int(state["generator"].sum()) + self.config.seed)


# ----------------------------------------------------------------------------- Table 4

CHECKPOINTS = {
    "MAML": paths.CHECKPOINTS / "navigation_maml.pt",
    "pre-trained": paths.CHECKPOINTS / "navigation_pretrain.pt",
    "oracle": paths.CHECKPOINTS / "navigation_oracle.pt",
}
TEST_SEED = 2017  # the 40 test goals; training and validation goals come from other seeds
NOISE_SEED = 4  # action noise of the evaluation episodes
RANDOM_INIT_SEED = 1  # the randomly initialised policy of the baseline


def test_goals(num_goals: int = 40, seed: int = TEST_SEED) -> Tensor:
    """The fixed test goals of Table 4's reproduction, ``[num_goals, 2]``."""
    return sample_goals(num_goals, torch.Generator().manual_seed(seed))


def optimal_returns(goals: Tensor, horizon: int = 100) -> Tensor:
    """``[G]`` the best return any policy can reach on each goal (an exact oracle).

    The controller that knows the goal and moves each coordinate towards it at full
    speed: velocities are clipped per coordinate, so after t steps no policy can be
    closer than max(0, |g| − 0.1·t) in either coordinate, and this one is exactly that
    close in both. It minimises every step's distance, hence the return.
    """
    env = PointNavigation(goals, horizon=horizon)
    position, _ = env.reset()
    total = torch.zeros(goals.shape[0], dtype=goals.dtype, device=goals.device)
    for _ in range(horizon):
        position, reward, terminated, truncated, _ = env.step(goals - position)
        total += reward
        if bool((terminated | truncated).all()):
            break
    return total


def load_navigation_policy(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, NavigationConfig, dict[str, Any]]:
    """A trained policy, its config and the checkpoint dict."""
    ckpt = load_checkpoint(path, expect_model=NavigationExperiment.model_name, map_location=device)
    known = {f.name for f in fields(NavigationConfig)}
    config = NavigationConfig(**{k: v for k, v in ckpt["config"].items() if k in known})
    policy = build_navigation_policy(config, device)
    load_state_strict(policy, ckpt["state"]["learner"], str(path))
    return policy.eval(), config, ckpt


def navigation_policies(
    device: torch.device | str = "cpu",
) -> dict[str, tuple[nn.Module, NavigationConfig]]:
    """The shipped MAML, pre-trained (and oracle, if shipped) policies, and a random one.

    The random policy is a fresh initialisation (seed ``RANDOM_INIT_SEED``) with the
    MAML run's config, so it is adapted with the same steps.
    """
    found = {}
    for label, path in CHECKPOINTS.items():
        if path.is_file():
            policy, config, _ = load_navigation_policy(path, device)
            found[label] = (policy, config)
    if "MAML" not in found:
        raise FileNotFoundError(f"no MAML navigation checkpoint at {CHECKPOINTS['MAML']}")
    config = found["MAML"][1]
    torch.manual_seed(RANDOM_INIT_SEED)
    found["random"] = (build_navigation_policy(config, device).eval(), config)
    return dict(sorted(found.items(), key=lambda kv: list(PLOT_ORDER).index(kv[0])))


PLOT_ORDER = ("MAML", "pre-trained", "random", "oracle")


def evaluate_navigation(
    num_goals: int = 40,
    episodes: int = 40,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Table 4: every policy's mean return after 0..3 steps on the same test goals.

    MAML, pre-trained and random policies take the paper's steps (α = 0.1, then 0.05,
    ``episodes`` fresh episodes per goal and step); a trained oracle (told the goal), if
    shipped, is not adapted. ``"optimal"`` is the best return possible on each goal
    (``optimal_returns``): the ceiling the paper's oracle line stands for.
    ``progress=True`` shows a bar over the policies.
    """
    check_int("num_goals", num_goals, 2)
    check_int("episodes", episodes, 1)
    policies = navigation_policies(device)
    goals = test_goals(num_goals)
    maml_config = policies["MAML"][1]
    results: dict[str, Any] = {
        "num_goals": num_goals,
        "episodes": episodes,
        "inner_lrs": list(maml_config.eval_inner_lrs),
        "test_seed": TEST_SEED,
        "noise_seed": NOISE_SEED,
        "hardware": hardware(device),
        "torch": str(torch.__version__),
        "paper_table4": {k: list(v) for k, v in PAPER_TABLE4.items()},
        "returns": {},
        "checkpoints": {},
    }
    for label in progress_bar(policies, desc="policies", unit="policy", enabled=progress):
        policy, config = policies[label]
        lrs = () if config.oracle else maml_config.eval_inner_lrs
        out = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                              inner_lrs=lrs)  # fmt: skip
        results["returns"][label] = summarize_returns(out.returns)
    results["returns"]["optimal"] = summarize_returns(
        optimal_returns(goals, maml_config.horizon).unsqueeze(1)
    )
    for label, path in CHECKPOINTS.items():
        if path.is_file():
            ckpt = load_checkpoint(path)
            results["checkpoints"][label] = {
                "file": path.name,
                "iteration": ckpt["iteration"],
                "iterations_planned": ckpt["config"]["iterations"],
                "wall_time_s": ckpt["wall_time_s"],
                "trained_on": ckpt["provenance"]["hardware"],
                "commands": [s["command"] for s in ckpt.get("sessions", [])],
            }
    return results


def table4_markdown(results: dict[str, Any]) -> str:
    """Table 4 of the paper beside ours: mean return ± 95% CI (over goals) per step."""
    steps = range(len(results["returns"]["MAML"]["mean"]))
    header = "| 2D navigation, average return | " + " | ".join(
        f"{s} step{'s' if s != 1 else ''}" for s in steps
    )
    lines = [header + " |", "|---" * (len(steps) + 1) + "|"]
    for label in ("MAML", "pre-trained", "random"):
        if label not in results["returns"]:
            continue
        paper = PAPER_TABLE4[label]
        about = "about " if label == "random" else ""
        lines.append(f"| {label}, paper | " + " | ".join(f"{about}{v:.2f}" for v in paper) + " |")
        r = results["returns"][label]
        lines.append(
            f"| {label}, mamllib | "
            + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(r["mean"], r["ci95"]))
            + " |"
        )
    for label, name in (("oracle", "oracle (told the goal, not adapted)"),
                        ("optimal", "optimal return (knows the goal)")):  # fmt: skip
        if label in results["returns"]:
            r = results["returns"][label]
            lines.append(f"| {name}, mamllib | {r['mean'][0]:.2f} ± {r['ci95'][0]:.2f} |"
                         + " |" * (len(steps) - 1))  # fmt: skip
    return "\n".join(lines)
