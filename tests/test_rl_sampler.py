"""rllab's sampler (``rollout_steps``): restarting environments, a step budget of finished
episodes, unfinished ones dropped; the environment's partial reset it relies on."""

from __future__ import annotations

import math

import pytest
import torch

from mamllib.rl.env import PointNavigation, sample_goals
from mamllib.rl.meta import adaptation_returns
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.rollout import rollout, rollout_steps


def constant_policy(action=(1.0, 0.0), log_std=-30.0):
    """A policy whose mean is ``action`` everywhere and σ ≈ 0 (deterministic paths)."""
    policy = GaussianMLPPolicy(hidden=(4,), init_log_std=log_std)
    with torch.no_grad():
        for layer in policy.mean_net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        policy.mean_net[-1].bias.copy_(torch.tensor(action))
    return policy


def test_reset_mask_restarts_only_those_episodes_and_each_counts_its_own_steps():
    env = PointNavigation(torch.tensor([[0.5, 0.5], [0.5, 0.5]]), horizon=3)
    env.reset()
    env.step(torch.tensor([[0.1, 0.0], [0.0, 0.1]]))
    obs, _ = env.reset(options={"reset_mask": torch.tensor([True, False])})
    torch.testing.assert_close(obs, torch.tensor([[0.0, 0.0], [0.0, 0.1]]))
    assert env.elapsed.tolist() == [0, 1]
    for t in range(3):
        *_, truncated, _ = env.step(torch.zeros(2, 2))
        # The second episode started one step earlier, so it reaches the horizon first.
        assert truncated.tolist() == [t == 2, t >= 1]


@pytest.mark.parametrize(
    "mask, match",
    [
        (torch.tensor([1, 0]), r"reset_mask'\] must be a bool tensor of shape \(2,\), got torch.int64"),
        (torch.tensor([True]), r"shape \(2,\), got torch.bool \(1,\)"),
        ([True, False], r"bool tensor of shape \(2,\), got list"),
    ],
)  # fmt: skip
def test_bad_reset_mask_is_refused_naming_it(mask, match):
    env = PointNavigation(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=match):
        env.reset(options={"reset_mask": mask})
    with pytest.raises(
        ValueError, match=r"unknown reset options \['seed'\]: valid are goals, reset_mask"
    ):
        env.reset(options={"seed": 1})


def test_without_early_ends_it_is_rollout():
    """No episode reaches its goal: every environment runs one episode of H steps, which is
    exactly ``rollout`` with as many episodes (the same noise, the same paths)."""
    goals = torch.tensor([[0.5, 0.5], [-0.5, 0.4]])
    policy = GaussianMLPPolicy(hidden=(8,), init_log_std=-1.0)
    params = dict(policy.named_parameters())
    a = rollout(policy, params, goals, 3, generator=torch.Generator().manual_seed(0), horizon=4)
    b = rollout_steps(policy, params, goals, 12, envs=3,
                      generator=torch.Generator().manual_seed(0), horizon=4)  # fmt: skip
    for name in ("observations", "actions", "rewards", "mask", "positions"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name), msg=name)
    assert b.episode_mask.tolist() == [[1.0] * 3] * 2


def test_episodes_restart_until_the_budget_by_hand():
    """Goal (0.3, 0) is reached in 3 steps of 0.1; goal (0.5, 0.5) never within H = 5.

    Goal 0: its 2 environments finish an episode every 3 steps: 6 steps after 3, 12 ≥ 10
    after 6, so 4 episodes of return −(0.2 + 0.1 + 0). Goal 1: 2 episodes of 5 steps make
    its 10. The goal with fewer episodes is padded with empty ones.
    """
    policy = constant_policy()
    goals = torch.tensor([[0.3, 0.0], [0.5, 0.5]], dtype=torch.float64)
    policy = policy.double()
    traj = rollout_steps(policy, dict(policy.named_parameters()), goals, 10, envs=2,
                         generator=torch.Generator().manual_seed(0), horizon=5)  # fmt: skip
    assert traj.episode_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert traj.mask[0].sum(-1).tolist() == [3, 3, 3, 3]
    assert traj.mask[1].sum(-1).tolist() == [5, 5, 0, 0]
    torch.testing.assert_close(traj.episode_returns[0], torch.full((4,), -0.3, dtype=torch.float64))
    far = -sum(math.hypot(0.5 - 0.1 * t, 0.5) for t in range(1, 6))
    torch.testing.assert_close(traj.mean_returns(), torch.tensor([-0.3, far], dtype=torch.float64))
    # Every restarted episode starts at the origin and its path stays at its end.
    assert (traj.positions[0, :, 0] == 0).all()
    torch.testing.assert_close(traj.positions[0, :, 3:], traj.positions[0, :, 3:4].expand(4, 3, 2))


def test_budget_counts_finished_episodes_and_drops_unfinished_ones():
    """A noisy policy near its goals: many episodes end early. For every goal, the finished
    episodes hold at least the budget and each really ended (at the goal or the horizon):
    the episodes still running when the budget was reached are not among them."""
    goals = sample_goals(4, torch.Generator().manual_seed(1)) * 0.2
    policy = GaussianMLPPolicy(hidden=(8,), init_log_std=-1.5)
    H, budget = 20, 100
    traj = rollout_steps(policy, dict(policy.named_parameters()), goals, budget, envs=5,
                         generator=torch.Generator().manual_seed(0), horizon=H)  # fmt: skip
    lengths = traj.mask.sum(-1)
    assert (traj.episode_mask.sum(1) > 5).any()  # some goals got extra episodes
    for g in range(4):
        valid = traj.episode_mask[g] > 0
        ln = lengths[g][valid].long()
        assert ln.sum() >= budget
        end = traj.positions[g][valid][torch.arange(len(ln)), ln]
        at_goal = ((end - goals[g]).abs() < 0.01).all(-1)
        assert (at_goal | (ln == H)).all()
        assert (~at_goal[ln < H]).sum() == 0


def test_adaptation_returns_with_rllabs_sampler_averages_over_its_episodes():
    goals = torch.tensor([[0.3, 0.0], [0.5, 0.5]])
    policy = constant_policy()
    params = dict(policy.named_parameters())
    out = adaptation_returns(policy, params, goals, inner_lrs=(), episodes=2,
                             generator=torch.Generator().manual_seed(0), horizon=5,
                             sampler="steps", keep_trajectories=True)  # fmt: skip
    torch.testing.assert_close(out.returns[:, 0], out.trajectories[0].mean_returns())
    assert out.trajectories[0].episode_mask.sum(1).tolist() == [4, 2]
    with pytest.raises(ValueError, match=r"sampler='rllab': valid are episodes, steps"):
        adaptation_returns(policy, params, goals, inner_lrs=(0.1,), episodes=2,
                           generator=torch.Generator(), sampler="rllab")  # fmt: skip
