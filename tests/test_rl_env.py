"""The navigation environment, rollouts, returns and the baseline against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mamllib.rl.env import PointNavigation, sample_goals
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.rollout import (
    baseline_features,
    discounted_returns,
    linear_feature_baseline,
    rollout,
)


def test_step_moves_by_the_clipped_velocity_and_rewards_minus_distance():
    env = PointNavigation(torch.tensor([[0.3, -0.2], [-0.4, 0.4]]))
    obs, info = env.reset()
    assert obs.tolist() == [[0.0, 0.0], [0.0, 0.0]] and info == {}
    obs, reward, terminated, truncated, _ = env.step(torch.tensor([[0.05, 0.2], [-0.3, 0.0]]))
    # Velocities are clipped to [-0.1, 0.1] per coordinate: (0.05, 0.1) and (-0.1, 0).
    torch.testing.assert_close(obs, torch.tensor([[0.05, 0.1], [-0.1, 0.0]]))
    expected = [-math.hypot(0.25, 0.3), -math.hypot(0.3, 0.4)]
    torch.testing.assert_close(reward, torch.tensor(expected))
    assert not terminated.any() and not truncated.any()
    obs, reward, *_ = env.step(torch.tensor([[0.1, -0.1], [0.0, 0.1]]))
    torch.testing.assert_close(obs, torch.tensor([[0.15, 0.0], [-0.1, 0.1]]))
    torch.testing.assert_close(
        reward, torch.tensor([-math.hypot(0.15, 0.2), -math.hypot(0.3, 0.3)])
    )


def test_termination_within_tolerance_per_coordinate_then_frozen():
    # Episode 0 lands on its goal; episode 1 ends 0.009 off in both coordinates
    # (distance 0.0127 > 0.01: the paper's code tests each coordinate); episode 2 is 0.011 off.
    env = PointNavigation(torch.tensor([[0.1, 0.0], [0.109, 0.009], [0.111, 0.0]]))
    env.reset()
    obs, reward, terminated, truncated, info = env.step(torch.tensor([[0.1, 0.0]] * 3))
    assert terminated.tolist() == [True, True, False] and not truncated.any()
    torch.testing.assert_close(reward[0], torch.tensor(0.0))
    torch.testing.assert_close(reward[1], torch.tensor(-math.hypot(0.009, 0.009)))
    obs2, reward2, terminated2, _, info2 = env.step(torch.tensor([[0.1, 0.1]] * 3))
    # Finished episodes stay put, earn nothing and stay terminated.
    torch.testing.assert_close(obs2[:2], obs[:2])
    assert reward2[:2].tolist() == [0.0, 0.0] and terminated2[:2].all()
    assert info2["active"].tolist() == [False, False, True]
    torch.testing.assert_close(obs2[2], torch.tensor([0.2, 0.1]))


def test_truncation_after_the_horizon():
    env = PointNavigation(torch.tensor([[0.5, 0.5]]), horizon=3)
    env.reset()
    for t in range(3):
        obs, reward, terminated, truncated, _ = env.step(torch.tensor([[0.1, 0.1]]))
        assert truncated.item() == (t == 2) and not terminated.item()
    torch.testing.assert_close(obs, torch.tensor([[0.3, 0.3]]))
    torch.testing.assert_close(reward, torch.tensor([-math.hypot(0.2, 0.2)]))


def test_gymnasium_conventions():
    env = PointNavigation(sample_goals(5, torch.Generator().manual_seed(0)))
    assert env.num_envs == 5
    assert env.single_action_space.shape == (2,) and env.action_space.shape == (5, 2)
    np.testing.assert_allclose(env.single_action_space.low, [-0.1, -0.1])
    np.testing.assert_allclose(env.single_action_space.high, [0.1, 0.1])
    assert env.single_observation_space.shape == (2,)
    assert env.action_space.sample().shape == (5, 2)
    obs, _ = env.reset(options={"goals": torch.zeros(5, 2)})
    assert obs.shape == (5, 2) and env.goals.abs().sum() == 0


def test_goals_are_uniform_on_the_square():
    goals = sample_goals(20_000, torch.Generator().manual_seed(0))
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    torch.testing.assert_close(goals.mean(0), torch.zeros(2), atol=0.01, rtol=0)
    torch.testing.assert_close(goals.var(0), torch.full((2,), 1 / 12), atol=0.003, rtol=0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PointNavigation(torch.zeros(3)), r"shape \[num_envs, 2\], got \(3,\)"),
        (lambda: PointNavigation(torch.zeros(2, 2), horizon=0), "horizon must be >= 1, got 0"),
        (lambda: PointNavigation(torch.full((1, 2), math.nan)), "NaN"),
        (lambda: PointNavigation(torch.zeros(2, 2)).step(torch.zeros(3, 2)), r"\(2, 2\), got \(3, 2\)"),
        (lambda: sample_goals(0), "num_goals must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_input_raises_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_rollout_maps_policy_actions_onto_velocities_like_rllab_normalize():
    """A policy with constant mean (0.5, −3) and σ ≈ 0: velocity 0.1·a clipped → (0.05, −0.1)."""
    policy = GaussianMLPPolicy(hidden=(4,), init_log_std=-30.0)
    with torch.no_grad():
        for p in policy.mean_net.parameters():
            p.zero_()
        policy.mean_net[-1].bias.copy_(torch.tensor([0.5, -3.0]))
    goals = torch.tensor([[0.5, -0.5], [0.3, 0.3]])
    traj = rollout(policy, dict(policy.named_parameters()), goals, 3, horizon=4,
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    steps = torch.arange(1, 5, dtype=torch.float32)
    path = torch.stack([0.05 * steps, -0.1 * steps], -1)  # [H, 2]
    torch.testing.assert_close(traj.positions[:, :, 1:], path.expand(2, 3, 4, 2))
    expected = -(path.unsqueeze(0) - goals.unsqueeze(1)).norm(dim=-1)  # [T, H]
    torch.testing.assert_close(traj.rewards, expected.unsqueeze(1).expand(2, 3, 4))
    torch.testing.assert_close(traj.observations[:, :, 0], torch.zeros(2, 3, 2))
    torch.testing.assert_close(traj.observations[:, :, 1:], traj.positions[:, :, 1:4])
    assert traj.mask.all() and traj.actions.shape == (2, 3, 4, 2)


def test_rollout_stops_rewarding_after_the_goal():
    policy = GaussianMLPPolicy(hidden=(4,), init_log_std=-30.0)
    with torch.no_grad():
        for p in policy.mean_net.parameters():
            p.zero_()
        policy.mean_net[-1].bias.copy_(torch.tensor([1.0, 1.0]))
    traj = rollout(policy, dict(policy.named_parameters()), torch.tensor([[0.2, 0.2]]), 2,
                   horizon=6, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert traj.mask[0, 0].tolist() == [1, 1, 0, 0, 0, 0]
    torch.testing.assert_close(traj.episode_returns[0], torch.full((2,), -math.hypot(0.1, 0.1)))
    torch.testing.assert_close(traj.positions[0, 0, -1], torch.tensor([0.2, 0.2]))


def test_discounted_returns_match_a_loop():
    rewards = torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.zeros_like(rewards)
    running = torch.zeros(3, 4, dtype=torch.float64)
    for t in reversed(range(7)):
        running = rewards[..., t] + 0.9 * running
        expected[..., t] = running
    torch.testing.assert_close(discounted_returns(rewards, 0.9), expected)


def test_linear_baseline_is_least_squares_on_rllab_features():
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 3, 5, 2, generator=g, dtype=torch.float64)
    returns = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 3, 5, dtype=torch.float64)
    mask[1, 0, 3:] = 0  # one episode ended early
    fitted = linear_feature_baseline(obs, returns, mask, reg=1e-5)
    for task in range(2):
        rows = mask[task].reshape(-1).bool().numpy()
        o = obs[task].reshape(-1, 2).numpy()[rows]
        t = np.tile(np.arange(5) / 100.0, 3)[rows, None]
        X = np.concatenate([o, o**2, t, t**2, t**3, np.ones_like(t)], 1)
        w = np.linalg.solve(
            X.T @ X + 1e-5 * np.eye(8), X.T @ returns[task].reshape(-1).numpy()[rows]
        )
        np.testing.assert_allclose(fitted[task].reshape(-1).numpy()[rows], X @ w, atol=1e-8)
        assert (fitted[task].reshape(-1).numpy()[~rows] == 0).all()
    assert baseline_features(obs, mask).shape == (2, 3, 5, 8)


def test_optimal_return_by_hand_and_no_policy_beats_it():
    from mamllib.paper.navigation import optimal_returns

    # (0.3, −0.2): positions (0.1, −0.1), (0.2, −0.2), then the goal itself.
    expected = -(math.hypot(0.2, 0.1) + 0.1)
    torch.testing.assert_close(
        optimal_returns(torch.tensor([[0.3, -0.2]])), torch.tensor([expected])
    )
    goals = sample_goals(6, torch.Generator().manual_seed(0))
    policy = GaussianMLPPolicy(hidden=(8,), init_log_std=-1.0)
    traj = rollout(policy, dict(policy.named_parameters()), goals, 50,
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert (traj.episode_returns <= optimal_returns(goals).unsqueeze(1) + 1e-6).all()
