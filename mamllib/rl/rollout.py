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
    def episode_mask(self) -> Tensor:
        """``[T, E]`` 1.0 for episodes that exist: ``rollout_steps`` gives tasks different
        numbers of episodes and pads the others with empty ones."""
        return self.mask[..., 0]

    def mean_returns(self) -> Tensor:
        """``[T]`` each task's mean return over its episodes (padding excluded)."""
        valid = self.episode_mask
        return (self.episode_returns * valid).sum(1) / valid.sum(1)

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]


def policy_observation(position: Tensor, goals: Tensor, goal_in_obs: bool) -> Tensor:
    """The position, with the goal appended for the oracle policy."""
    if not goal_in_obs:
        return position
    return torch.cat([position, goals.expand_as(position)], dim=-1)


def _start(goals: Tensor, per_goal: int, horizon: int, goal_in_obs: bool):
    """``per_goal`` environments for each of the ``[T, 2]`` goals, reset: the environment,
    the positions ``[T·per_goal, 2]``, each one's goal ``[T, per_goal, 2]``, the
    observation size."""
    check_int("horizon", horizon, 1)
    if goals.dim() != 2 or goals.shape[1] != 2:
        raise ValueError(f"goals must have shape [T, 2], got {tuple(goals.shape)}")
    env = PointNavigation(goals.repeat_interleave(per_goal, 0), horizon=horizon)
    position, _ = env.reset()
    task_goals = goals.unsqueeze(1).expand(goals.shape[0], per_goal, 2)
    return env, position, task_goals, 4 if goal_in_obs else 2


def _act(
    policy, params, obs: Tensor, batched: bool, generator: torch.Generator, env: PointNavigation
) -> tuple[Tensor, Tensor]:
    """a ~ π_θ(·|s) for ``obs [T, E, obs_dim]``, and the velocity the environment takes:
    ``low + (a + 1)(high − low)/2`` (rllab's ``normalize``), flattened to ``[T·E, 2]``."""
    mean, log_std = policy_outputs(policy, params, obs, batched)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    action = mean + log_std.exp() * noise
    low, high = (torch.as_tensor(b, dtype=action.dtype, device=action.device)
                 for b in (env.single_action_space.low, env.single_action_space.high))  # fmt: skip
    return action, low + (action.reshape(-1, 2) + 1) * (high - low) / 2


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
    T, E, H = goals.shape[0], episodes, horizon
    env, position, task_goals, obs_dim = _start(goals, E, horizon, goal_in_obs)
    observations = goals.new_zeros(T, E, H, obs_dim)
    actions = goals.new_zeros(T, E, H, 2)
    rewards = goals.new_zeros(T, E, H)
    mask = goals.new_zeros(T, E, H)
    positions = goals.new_zeros(T, E, H + 1, 2)
    for t in range(H):
        obs = policy_observation(position.view(T, E, 2), task_goals, goal_in_obs)
        action, velocity = _act(policy, params, obs, batched, generator, env)
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


@torch.no_grad()
def rollout_steps(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    goals: Tensor,
    steps: int,
    *,
    envs: int,
    generator: torch.Generator,
    horizon: int = 100,
    batched: bool = False,
    goal_in_obs: bool = False,
) -> Trajectories:
    """Sample like rllab's ``VectorizedSampler``, the paper's code's test sampler.

    Each goal gets ``envs`` environments; an environment starts a new episode as soon as
    its episode ends (goal reached, or the horizon), and sampling goes on until the
    *finished* episodes of the goal hold at least ``steps`` steps. Episodes still running
    then are dropped. (``test_maml_point.py``: ``batch_size=4000``, 100 steps per episode,
    so 40 environments.) With no early ends this is ``envs`` episodes of ``horizon``
    steps, as ``rollout`` gives; with early ends a goal gets more episodes, and short
    episodes (those that reach the goal quickly) are over-represented among them, since an
    environment finishes several short episodes in the time a long one takes.

    Args:
        steps: the goal's budget of steps in finished episodes (4000).
        envs: environments per goal (``steps // horizon`` in rllab).
        others: as ``rollout``.

    Returns:
        ``Trajectories`` ``[T, E, H, ...]`` with E the largest number of episodes any goal
        got; the other goals' missing episodes are padding (mask 0, ``episode_mask``).
        Episodes are in the order they finished.
    """
    check_int("steps", steps, 1)
    check_int("envs", envs, 1)
    T, N, H = goals.shape[0], envs, horizon
    env, position, task_goals, obs_dim = _start(goals, N, horizon, goal_in_obs)
    rows = torch.arange(T * N, device=goals.device)
    task_of = rows // N
    # The running episode of every environment.
    obs_buf = goals.new_zeros(T * N, H, obs_dim)
    act_buf = goals.new_zeros(T * N, H, 2)
    rew_buf = goals.new_zeros(T * N, H)
    pos_buf = goals.new_zeros(T * N, H + 1, 2)
    finished: list[tuple[Tensor, ...]] = []  # (task, length, obs, actions, rewards, positions)
    collected = torch.zeros(T, dtype=torch.long, device=goals.device)
    # Every environment finishes an episode at least every H steps, so each goal has its
    # budget after at most H + ceil(steps / envs) steps.
    for _ in range(H + -(-steps // N)):
        collecting = collected < steps
        t = env.elapsed.clone()
        obs = policy_observation(position.view(T, N, 2), task_goals, goal_in_obs)
        action, velocity = _act(policy, params, obs, batched, generator, env)
        position, reward, terminated, truncated, _ = env.step(velocity)
        obs_buf[rows, t] = obs.reshape(T * N, obs_dim)
        act_buf[rows, t] = action.reshape(T * N, 2)
        rew_buf[rows, t] = reward
        pos_buf[rows, t + 1] = position
        done = (terminated | truncated) & collecting[task_of]
        if bool(done.any()):
            idx = done.nonzero().squeeze(1)
            length = t[idx] + 1
            finished.append((task_of[idx], length, obs_buf[idx].clone(), act_buf[idx].clone(),
                             rew_buf[idx].clone(), pos_buf[idx].clone()))  # fmt: skip
            collected.index_add_(0, task_of[idx], length)
        ended = terminated | truncated
        if bool(ended.any()):
            position, _ = env.reset(options={"reset_mask": ended})
            for buf in (obs_buf, act_buf, rew_buf, pos_buf):
                buf[ended] = 0
        if bool((collected >= steps).all()):
            break
    task, length, obs, act, rew, pos = (torch.cat(x) for x in zip(*finished))
    # Slot of each episode within its goal, in the order they finished.
    order = torch.argsort(task, stable=True)
    task, length, obs, act, rew, pos = (x[order] for x in (task, length, obs, act, rew, pos))
    counts = torch.bincount(task, minlength=T)
    slot = torch.arange(task.shape[0], device=task.device) - (counts.cumsum(0) - counts)[task]
    E = int(counts.max())
    steps_idx = torch.arange(H, device=goals.device)
    step_mask = (steps_idx < length.unsqueeze(1)).to(goals.dtype)
    # The path stays at its last position after the episode ended (as ``rollout``).
    pos = pos.gather(1, torch.minimum(torch.arange(H + 1, device=goals.device),
                                      length.unsqueeze(1)).unsqueeze(-1).expand(-1, -1, 2))  # fmt: skip

    def place(x: Tensor) -> Tensor:
        out = x.new_zeros(T, E, *x.shape[1:])
        out[task, slot] = x
        return out

    return Trajectories(place(obs), place(act), place(rew * step_mask), place(step_mask),
                        place(pos), goals)  # fmt: skip


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
