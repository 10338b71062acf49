"""Sampling trajectories for many tasks at once, returns and the linear feature baseline.

All episodes of all tasks step together: the only Python loop is over time.
Tensors have shape ``[T, E, H, ...]``: tasks, episodes per task, time steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mamllib.checks import check_int
from mamllib.rl.env import PointNavigation
from mamllib.rl.policy import action_distribution, policy_outputs


@dataclass
class Trajectories:
    """A batch of episodes, ``E`` for each of ``T`` tasks, padded to the horizon ``H``.

    Attributes:
        observations: ``[T, E, H, obs_dim]`` what the policy saw before each action.
        actions: ``[T, E, H, action_dim]`` the sampled actions, in the policy's units.
        rewards: ``[T, E, H]`` (0 after the episode ended).
        mask: ``[T, E, H]`` 1.0 for steps taken, 0.0 after the episode ended.
        positions: ``[T, E, H + 1, 2]`` the path, from the start (for plots).
        goals: ``[T, 2]`` each task's goal.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    positions: Tensor
    goals: Tensor

    @property
    def episode_returns(self) -> Tensor:
        """``[T, E]`` undiscounted return of every episode (what the paper reports)."""
        return self.rewards.sum(-1)

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]


def policy_observation(position: Tensor, goals: Tensor, goal_in_obs: bool) -> Tensor:
    """The position, with the goal appended for the oracle policy."""
    if not goal_in_obs:
        return position
    return torch.cat([position, goals.expand_as(position)], dim=-1)


@torch.no_grad()
def rollout(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    goals: Tensor,
    episodes: int,
    *,
    generator: torch.Generator,
    horizon: int = 100,
    batched: bool = False,
    goal_in_obs: bool = False,
) -> Trajectories:
    """Sample ``episodes`` trajectories per goal with π_θ (or one θ'ᵢ per goal).

    Actions a ~ 𝒩(μ, σ²) are taken by the environment as velocities
    ``low + (a + 1) (high − low) / 2``, then clipped to the action box — rllab's
    ``normalize`` wrapper, which the paper's code used (for the [−0.1, 0.1] box: 0.1·a).

    Args:
        policy: the module (its structure; θ comes from ``params``).
        params: θ, or with ``batched=True`` one θ'ᵢ per task (leading dim ``T``).
        goals: ``[T, 2]`` one goal per task.
        episodes: E, trajectories per task.
        generator: the source of all randomness here (the action noise), so that runs
            and resumed runs repeat exactly.
        horizon: H.
        goal_in_obs: the oracle: the policy sees (position, goal).

    Returns:
        ``Trajectories`` with tensors ``[T, E, H, ...]``.
    """
    check_int("episodes", episodes, 1)
    check_int("horizon", horizon, 1)
    if goals.dim() != 2 or goals.shape[1] != 2:
        raise ValueError(f"goals must have shape [T, 2], got {tuple(goals.shape)}")
    T, E, H = goals.shape[0], episodes, horizon
    env = PointNavigation(goals.repeat_interleave(E, 0), horizon=H)
    low = torch.as_tensor(env.single_action_space.low, dtype=goals.dtype, device=goals.device)
    high = torch.as_tensor(env.single_action_space.high, dtype=goals.dtype, device=goals.device)
    position, _ = env.reset()
    task_goals = goals.unsqueeze(1).expand(T, E, 2)
    obs_dim = 4 if goal_in_obs else 2
    observations = goals.new_zeros(T, E, H, obs_dim)
    actions = goals.new_zeros(T, E, H, 2)
    rewards = goals.new_zeros(T, E, H)
    mask = goals.new_zeros(T, E, H)
    positions = goals.new_zeros(T, E, H + 1, 2)
    for t in range(H):
        obs = policy_observation(position.view(T, E, 2), task_goals, goal_in_obs)
        mean, log_std = policy_outputs(policy, params, obs, batched)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        action = mean + log_std.exp() * noise
        velocity = low + (action.view(T * E, 2) + 1) * (high - low) / 2
        position, reward, terminated, truncated, info = env.step(velocity)
        observations[:, :, t] = obs
        actions[:, :, t] = action
        rewards[:, :, t] = reward.view(T, E)
        mask[:, :, t] = info["active"].view(T, E)
        positions[:, :, t + 1] = position.view(T, E, 2)
        if bool((terminated | truncated).all()):
            positions[:, :, t + 2 :] = position.view(T, E, 1, 2)
            break
    return Trajectories(observations, actions, rewards, mask, positions, goals)


def discounted_returns(rewards: Tensor, discount: float) -> Tensor:
    """Rewards-to-go R_t = Σ_{k≥t} γ^{k−t} r_k along the last dimension ``[..., H]``.

    One matrix product with the upper-triangular matrix Γ[k, t] = γ^{k−t} (k ≥ t)
    instead of a Python loop over time.
    """
    H = rewards.shape[-1]
    steps = torch.arange(H, device=rewards.device, dtype=rewards.dtype)
    lag = steps.unsqueeze(1) - steps.unsqueeze(0)  # [k, t] = k − t
    gamma = torch.where(lag >= 0, discount ** lag.clamp(min=0), torch.zeros_like(lag))
    return rewards @ gamma


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """rllab's ``LinearFeatureBaseline`` features [s, s², t, t², t³, 1], t = step/100.

    Observations are clipped to [−10, 10] as rllab does; padded steps get all-zero rows
    so that they do not take part in the fit.
    """
    obs = observations.clamp(-10, 10)
    H = observations.shape[-2]
    al = (torch.arange(H, device=obs.device, dtype=obs.dtype) / 100.0).view(H, 1)
    al = al.expand(*obs.shape[:-1], 1)
    feats = torch.cat([obs, obs**2, al, al**2, al**3, torch.ones_like(al)], dim=-1)
    return feats * mask.unsqueeze(-1)


def linear_feature_baseline(
    observations: Tensor, returns: Tensor, mask: Tensor, reg: float = 1e-5
) -> Tensor:
    """b(s_t, t) fitted per task by regularised least squares on that task's episodes.

    Solves (XᵀX + λI) w = XᵀR for each task (in float64: the t³ features make XᵀX
    badly conditioned in float32), retrying with 10× λ up to 5 times if the solution is
    not finite, as rllab did.

    Args:
        observations: ``[T, E, H, obs_dim]``.
        returns: ``[T, E, H]`` discounted rewards-to-go to regress on.
        mask: ``[T, E, H]``.

    Returns:
        ``[T, E, H]`` the fitted baseline, 0 on padded steps.
    """
    T = observations.shape[0]
    X = baseline_features(observations, mask).reshape(T, -1, observations.shape[-1] * 2 + 4)
    X64 = X.double()
    y = (returns * mask).reshape(T, -1, 1).double()
    gram, rhs = X64.transpose(1, 2) @ X64, X64.transpose(1, 2) @ y
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    for _ in range(5):
        w = torch.linalg.solve(gram + reg * eye, rhs)
        if torch.isfinite(w).all():
            break
        reg *= 10
    return (X64 @ w).to(returns.dtype).view_as(returns) * mask


def advantages(traj: Trajectories, discount: float, center: bool = True) -> Tensor:
    """Â_t = R_t − b(s_t, t), standardised per task over its valid steps if ``center``.

    The baseline is fitted on the same trajectories (the paper's code fitted it before
    computing the advantages); ``center`` is rllab's ``center_adv`` (on in the paper's
    code), which also fixes the scale of the inner gradient step.

    Returns:
        ``[T, E, H]``, 0 on padded steps.
    """
    returns = discounted_returns(traj.rewards, discount)
    adv = (returns - linear_feature_baseline(traj.observations, returns, traj.mask)) * traj.mask
    if not center:
        return adv
    count = traj.mask.sum((1, 2), keepdim=True)
    mean = adv.sum((1, 2), keepdim=True) / count
    var = (((adv - mean) * traj.mask) ** 2).sum((1, 2), keepdim=True) / count
    return (adv - mean) / (var.sqrt() + 1e-8) * traj.mask


def action_log_probs(policy, params, traj: Trajectories, batched: bool) -> Tensor:
    """log π_θ(a_t | s_t) of the trajectories' actions, ``[T, E, H]``."""
    mean, log_std = policy_outputs(policy, params, traj.observations, batched)
    return action_distribution(mean, log_std).log_prob(traj.actions).sum(-1)
