"""The inner policy-gradient step: the estimator's expectation and the per-task batching."""

from __future__ import annotations

import pytest
import torch

from mamllib.rl.env import sample_goals
from mamllib.rl.pg import policy_gradient_step, reinforce_loss
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.rollout import Trajectories, advantages, rollout


def test_reinforce_estimates_the_analytic_gradient_of_a_gaussian_bandit():
    """One-step episodes, reward −‖a − c‖², a ~ 𝒩(μ, σ²): E[reward] = −‖μ − c‖² − 2σ².

    So ∇_μ E = −2(μ − c) and ∇_{log σ} E = −2σ² per dimension. −∇L of the REINFORCE loss
    on many samples must match it within a few standard errors.
    """
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(hidden=(3,), init_log_std=-0.7).double()
    params = dict(policy.named_parameters())
    n = 100_000  # standard errors of the estimates below: about 0.006
    obs = torch.zeros(1, n, 1, 2, dtype=torch.float64)
    mean, log_std = policy(obs)
    g = torch.Generator().manual_seed(1)
    actions = (
        mean + log_std.exp() * torch.randn(mean.shape, generator=g, dtype=torch.float64)
    ).detach()
    c = torch.tensor([0.3, -0.2], dtype=torch.float64)
    reward = -((actions - c) ** 2).sum(-1)  # [1, n, 1]
    traj = Trajectories(obs, actions, reward, torch.ones_like(reward), obs, c.view(1, 2))
    loss = reinforce_loss(policy, params, traj, reward)
    grads = torch.autograd.grad(loss.sum(), [params["mean_net.2.bias"], params["log_std"]])
    mu, sigma = mean[0, 0, 0].detach(), log_std[0, 0, 0].exp().detach()
    # The mean is the last layer's bias plus a constant (the input is 0), so ∂μ/∂bias = I.
    torch.testing.assert_close(-grads[0], -2 * (mu - c), atol=0.025, rtol=0)
    torch.testing.assert_close(-grads[1], -2 * sigma**2, atol=0.025, rtol=0)


def test_per_task_step_equals_a_loop_over_tasks():
    """The batched θ'ᵢ (one backward through expanded copies of θ) vs one task at a time."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(hidden=(16, 16)).double()
    params = dict(policy.named_parameters())
    gen = torch.Generator().manual_seed(0)
    goals = sample_goals(3, gen).double()
    traj = rollout(policy, params, goals, 4, horizon=15, generator=gen)
    adv = advantages(traj, 0.99)
    adapted = policy_gradient_step(policy, params, traj, adv, 0.1)
    for i in range(3):
        one = Trajectories(*(getattr(traj, f)[i : i + 1] for f in
                             ("observations", "actions", "rewards", "mask", "positions", "goals")))  # fmt: skip
        loss = reinforce_loss(policy, params, one, adv[i : i + 1]).sum()
        grads = torch.autograd.grad(loss, list(params.values()))
        for (name, value), grad in zip(params.items(), grads):
            torch.testing.assert_close(adapted[name][i], value - 0.1 * grad)
    # A second step from per-task parameters (batched=True) agrees with the loop too.
    again = policy_gradient_step(
        policy, adapted, traj, adv, 0.05, batched=True, differentiable=False
    )
    one_params = {k: v[1].detach().requires_grad_() for k, v in adapted.items()}
    one = Trajectories(*(getattr(traj, f)[1:2] for f in
                         ("observations", "actions", "rewards", "mask", "positions", "goals")))  # fmt: skip
    grads = torch.autograd.grad(reinforce_loss(policy, one_params, one, adv[1:2]).sum(),
                                list(one_params.values()))  # fmt: skip
    for (name, value), grad in zip(one_params.items(), grads):
        torch.testing.assert_close(again[name][1], value.detach() - 0.05 * grad)
    assert not any(v.requires_grad for v in again.values())


def test_centered_advantages_are_standardised_per_task():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(hidden=(8,))
    gen = torch.Generator().manual_seed(0)
    traj = rollout(policy, dict(policy.named_parameters()), sample_goals(2, gen), 5,
                   horizon=30, generator=gen)  # fmt: skip
    adv = advantages(traj, 0.99)
    for i in range(2):
        valid = adv[i][traj.mask[i].bool()]
        assert abs(valid.mean().item()) < 1e-5
        assert abs(valid.std(correction=0).item() - 1) < 1e-4


def test_rollout_rejects_bad_goals_before_running_the_policy():
    calls = []
    policy = GaussianMLPPolicy(hidden=(4,))
    policy.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match=r"goals must have shape \[T, 2\], got \(4,\)"):
        rollout(policy, dict(policy.named_parameters()), torch.zeros(4), 3,
                generator=torch.Generator())  # fmt: skip
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        rollout(policy, dict(policy.named_parameters()), torch.zeros(2, 2), 0,
                generator=torch.Generator())  # fmt: skip
    assert calls == []


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_the_step_is_differentiable_through_its_gradient_unless_first_order(first_order):
    """d(Σᵢ Σ θ'ᵢ)/dθ against one task at a time with ``torch.autograd.grad(create_graph=True)``:
    Σᵢ (I − α ∇²L_𝒯ᵢ) 1 for second order, T · 1 for first order; ``differentiable=False``
    gives the same θ', detached."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(hidden=(8,)).double()
    params = dict(policy.named_parameters())
    gen = torch.Generator().manual_seed(1)
    goals = sample_goals(2, gen).double()
    traj = rollout(policy, params, goals, 3, horizon=10, generator=gen)
    adv = advantages(traj, 0.99)
    adapted = policy_gradient_step(policy, params, traj, adv, 0.1, first_order=first_order)
    got = torch.autograd.grad(sum(v.sum() for v in adapted.values()), list(params.values()))

    expected = [torch.zeros_like(p) for p in params.values()]
    for i in range(2):
        fields = ("observations", "actions", "rewards", "mask", "positions", "goals")
        one = Trajectories(*(getattr(traj, f)[i : i + 1] for f in fields))
        loss = reinforce_loss(policy, params, one, adv[i : i + 1]).sum()
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
        step = [g.detach() if first_order else g for g in grads]
        theta_i = [p - 0.1 * g for p, g in zip(params.values(), step)]
        through = torch.autograd.grad(sum(t.sum() for t in theta_i), list(params.values()))
        expected = [e + g for e, g in zip(expected, through)]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    if not first_order:  # the Hessian term is really there
        assert any(not torch.allclose(g, torch.full_like(g, 2.0)) for g in got)

    detached = policy_gradient_step(policy, params, traj, adv, 0.1, differentiable=False)
    for name, value in adapted.items():
        assert not detached[name].requires_grad
        torch.testing.assert_close(detached[name], value.detach())
