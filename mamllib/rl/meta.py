"""MAML for reinforcement learning (the paper's Algorithm 3) with a TRPO meta-update.

One meta-iteration on a meta-batch of goals 𝒯ᵢ:

1. sample E trajectories 𝒟ᵢ per task with π_θ, fit the baseline, compute Â;
2. adapt: θ'ᵢ = θ − α ∇_θ L_𝒯ᵢ(θ; 𝒟ᵢ) (one REINFORCE step);
3. sample *fresh* trajectories 𝒟'ᵢ with π_θ'ᵢ — the inner loop's data cannot grade the
   adapted policy: it was drawn from π_θ, and reusing it would reward overfitting it;
4. TRPO on θ with the surrogate Σᵢ E_𝒟'ᵢ[π_θ'ᵢ(θ)(a|s) / π_θ'ᵢ(a|s) · Â'] and the KL
   between π_θ'ᵢ at the old and the new θ, both through the inner step θ → θ'ᵢ(θ).

The pre-training baseline is the same TRPO on goals from the whole distribution with
no inner step (θ'ᵢ = θ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn
from torch.distributions import kl_divergence

from mamllib.rl.pg import policy_gradient_step
from mamllib.rl.policy import action_distribution, policy_outputs
from mamllib.rl.rollout import Trajectories, advantages, rollout, rollout_steps


@dataclass
class MetaBatch:
    """What one meta-update needs: pre- and post-adaptation data of every task.

    Attributes:
        pre: trajectories sampled with θ (``None`` without an inner step).
        pre_adv: their advantages ``[T, E, H]``.
        post: fresh trajectories sampled with θ'ᵢ (or θ).
        post_adv: their advantages.
        old_mean, old_log_std: π_θ'ᵢ at the current θ on ``post``'s states (fixed).
        old_log_prob: log π_θ'ᵢ(a|s) of ``post``'s actions, ``[T, E, H]``.
    """

    pre: Trajectories | None
    pre_adv: Tensor | None
    post: Trajectories
    post_adv: Tensor
    old_mean: Tensor
    old_log_std: Tensor
    old_log_prob: Tensor

    def head(self, num_tasks: int) -> MetaBatch:
        """The first ``num_tasks`` tasks (a random subset: tasks are drawn i.i.d.)."""

        def cut(x):
            if isinstance(x, Trajectories):
                return Trajectories(*(getattr(x, f.name)[:num_tasks] for f in fields(x)))
            return None if x is None else x[:num_tasks]

        return MetaBatch(*(cut(getattr(self, f.name)) for f in fields(self)))


def sample_meta_batch(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    goals: Tensor,
    *,
    inner_lr: float | None,
    episodes: int,
    generator: torch.Generator,
    horizon: int = 100,
    discount: float = 0.99,
    center_advantages: bool = True,
    goal_in_obs: bool = False,
) -> MetaBatch:
    """Steps 1–3 above for every goal at once (``inner_lr=None``: no inner step)."""
    params = {k: v.detach() for k, v in params.items()}
    kwargs = {"generator": generator, "horizon": horizon, "goal_in_obs": goal_in_obs}
    pre = pre_adv = None
    post_params, batched = params, False
    if inner_lr is not None:
        pre = rollout(policy, params, goals, episodes, **kwargs)
        pre_adv = advantages(pre, discount, center_advantages)
        post_params = policy_gradient_step(policy, params, pre, pre_adv, inner_lr,
                                           differentiable=False)  # fmt: skip
        batched = True
    post = rollout(policy, post_params, goals, episodes, batched=batched, **kwargs)
    post_adv = advantages(post, discount, center_advantages)
    with torch.no_grad():
        mean, log_std = policy_outputs(policy, post_params, post.observations, batched)
        old_log_prob = action_distribution(mean, log_std).log_prob(post.actions).sum(-1)
    return MetaBatch(pre, pre_adv, post, post_adv, mean, log_std, old_log_prob)


def meta_objective(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    batch: MetaBatch,
    *,
    inner_lr: float | None,
    first_order: bool = False,
    differentiable: bool = True,
) -> tuple[Tensor, Tensor]:
    """TRPO's surrogate loss and mean KL at θ, through the inner step.

    Returns:
        ``(loss, kl)``: loss = −meanᵢ mean_t [π_θ'ᵢ(a|s)/π_old(a|s) · Â'], kl =
        meanᵢ mean_t KL(π_old(·|s) ‖ π_θ'ᵢ(·|s)), means over each task's valid steps.
    """
    if batch.pre is not None:
        adapted = policy_gradient_step(policy, params, batch.pre, batch.pre_adv, inner_lr,
                                       first_order=first_order, differentiable=differentiable)  # fmt: skip
        batched = True
    else:
        adapted, batched = params, False
    with torch.set_grad_enabled(differentiable):
        mean, log_std = policy_outputs(policy, adapted, batch.post.observations, batched)
        new = action_distribution(mean, log_std)
        old = action_distribution(batch.old_mean, batch.old_log_std)
        ratio = torch.exp(new.log_prob(batch.post.actions).sum(-1) - batch.old_log_prob)
        mask = batch.post.mask
        count = mask.sum((1, 2))
        loss = -((ratio * batch.post_adv * mask).sum((1, 2)) / count).mean()
        kl = ((kl_divergence(old, new).sum(-1) * mask).sum((1, 2)) / count).mean()
    return loss, kl


# How ``adaptation_returns`` draws each step's episodes (see there).
SAMPLERS = ("episodes", "steps")


@dataclass
class AdaptationResult:
    """Returns (and optionally the paths) after 0..S adaptation steps on each goal.

    Attributes:
        returns: ``[G, S + 1]`` mean undiscounted return of the E episodes per goal.
        trajectories: per step, the ``Trajectories`` sampled (if kept), else empty.
        params: per step, θ_k (if kept; from step 1 on, one per goal ``[G, ...]``).
        batched: per step, whether ``params`` holds one θ per goal.
    """

    returns: Tensor
    trajectories: list[Trajectories]
    params: list[dict[str, Tensor]] = field(default_factory=list)
    batched: list[bool] = field(default_factory=list)


def adaptation_returns(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    goals: Tensor,
    *,
    inner_lrs: Sequence[float],
    episodes: int,
    generator: torch.Generator,
    horizon: int = 100,
    discount: float = 0.99,
    center_advantages: bool = True,
    goal_in_obs: bool = False,
    keep_trajectories: bool = False,
    keep_params: bool = False,
    sampler: str = "episodes",
) -> AdaptationResult:
    """The paper's evaluation: sample, step, sample, step, ... on every goal at once.

    At step k the policy θ_k samples E fresh episodes of each goal; their mean return is
    column k; then θ_{k+1} = θ_k − α_k ∇L(θ_k; those episodes). With ``inner_lrs`` =
    (0.1, 0.05, 0.05) this is Table 4's protocol (with E = 40).

    ``sampler`` says how the episodes are drawn: ``"episodes"``, E episodes per goal
    (``rollout``); ``"steps"``, E environments per goal restarting their episodes until
    the finished ones hold E·H steps (``rollout_steps``: rllab's sampler, which the
    paper's code used at test time); the return is then the mean over those episodes.

    Returns:
        ``AdaptationResult`` with ``returns [G, len(inner_lrs) + 1]``.
    """
    for k, lr in enumerate(inner_lrs):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"inner_lrs[{k}] must be a positive number, got {lr!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: valid are {', '.join(SAMPLERS)}")
    theta = {k: v.detach() for k, v in params.items()}
    batched = False
    returns, kept, kept_params, kept_batched = [], [], [], []
    kwargs = {"generator": generator, "horizon": horizon, "goal_in_obs": goal_in_obs}
    for k in range(len(inner_lrs) + 1):
        if keep_params:
            kept_params.append(theta)
            kept_batched.append(batched)
        if sampler == "steps":
            traj = rollout_steps(policy, theta, goals, episodes * horizon, envs=episodes,
                                 batched=batched, **kwargs)  # fmt: skip
        else:
            traj = rollout(policy, theta, goals, episodes, batched=batched, **kwargs)
        returns.append(traj.mean_returns())
        if keep_trajectories:
            kept.append(traj)
        if k < len(inner_lrs):
            adv = advantages(traj, discount, center_advantages)
            theta = policy_gradient_step(policy, theta, traj, adv, inner_lrs[k],
                                         batched=batched, differentiable=False)  # fmt: skip
            batched = True
    return AdaptationResult(torch.stack(returns, 1), kept, kept_params, kept_batched)
