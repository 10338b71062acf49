"""TRPO: conjugate gradient, the trust region, and the meta-gradient through the inner step."""

from __future__ import annotations

import pytest
import torch

from mamllib.rl.env import sample_goals
from mamllib.rl.meta import adaptation_returns, meta_objective, sample_meta_batch
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.trpo import conjugate_gradient, trpo_step


def test_conjugate_gradient_matches_a_direct_solve():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(30, 30, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=60, residual_tol=1e-28)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-7, atol=1e-9)
    # Ten iterations (the paper's setting) already reduce the residual a lot.
    x10 = conjugate_gradient(lambda v: a @ v, b, iters=10)
    assert (a @ x10 - b).norm() < 0.5 * b.norm()


def small_batch(inner_lr, dtype=torch.float32, hidden=(16, 16), tasks=4, episodes=6, horizon=20):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(hidden=hidden).to(dtype)
    with torch.no_grad():
        # Biases start at 0 and every episode starts at s = 0: exactly on the ReLU kinks,
        # where finite differences are meaningless. Move them off.
        for layer in list(policy.mean_net)[::2]:
            layer.bias.uniform_(-0.5, 0.5)
    gen = torch.Generator().manual_seed(0)
    goals = sample_goals(tasks, gen).to(dtype)
    params = dict(policy.named_parameters())
    batch = sample_meta_batch(policy, params, goals, inner_lr=inner_lr, episodes=episodes,
                              generator=gen, horizon=horizon)  # fmt: skip
    return policy, params, batch


@pytest.mark.parametrize("inner_lr", [0.1, None], ids=["maml", "pretrain"])
def test_trpo_step_respects_the_kl_bound_and_improves_the_surrogate(inner_lr):
    policy, params, batch = small_batch(inner_lr)

    def objective(theta, differentiable):
        return meta_objective(
            policy, theta, batch, inner_lr=inner_lr, differentiable=differentiable
        )

    before = {k: v.detach().clone() for k, v in params.items()}
    loss0, kl0 = objective(params, False)
    assert abs(kl0.item()) < 1e-6 and abs(loss0.item()) < 1e-5  # centred advantages, ratio 1
    stats = trpo_step(params, objective, max_kl=0.01)
    assert stats["accepted"] == 1.0
    loss1, kl1 = objective(params, False)  # recomputed independently at the new θ
    assert 0 < kl1.item() <= 0.01 and loss1.item() < loss0.item()
    assert kl1.item() > 0.01 * 0.8**6  # the step used a real part of the trust region
    assert any((params[k] - before[k]).abs().max() > 0 for k in params)


def test_rejected_line_search_leaves_parameters_unchanged():
    policy, params, batch = small_batch(0.1)
    before = {k: v.detach().clone() for k, v in params.items()}

    def objective(theta, differentiable):
        loss, kl = meta_objective(policy, theta, batch, inner_lr=0.1, differentiable=differentiable)
        # Pretend every candidate breaks the trust region.
        return loss, kl if differentiable else kl + 1.0

    stats = trpo_step(params, objective, max_kl=0.01, max_backtracks=3)
    assert stats["accepted"] == 0.0 and stats["backtracks"] == 3
    for k in params:
        assert torch.equal(params[k], before[k])


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_meta_gradient_through_the_inner_step_matches_finite_differences(first_order):
    """In float64 on a tiny policy: the autograd meta-gradient of the TRPO surrogate
    (through θ' = θ − α∇L_inner(θ)) against central differences of the same function; the
    first-order gradient must instead differ from them (it drops the Hessian term)."""
    policy, params, batch = small_batch(
        0.1, torch.float64, hidden=(6,), tasks=2, episodes=4, horizon=10
    )

    def loss_at(theta):
        return meta_objective(policy, theta, batch, inner_lr=0.1, first_order=first_order)[0]

    grads = torch.autograd.grad(loss_at(params), list(params.values()))
    g = torch.Generator().manual_seed(3)
    names = list(params)
    worst = 0.0
    for _ in range(4):
        direction = {
            k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in params.items()
        }
        eps = 1e-5
        with torch.no_grad():
            plus = {k: params[k] + eps * direction[k] for k in names}
            minus = {k: params[k] - eps * direction[k] for k in names}
        fd = (loss_at(plus) - loss_at(minus)).item() / (2 * eps)
        analytic = sum((gr * direction[k]).sum() for gr, k in zip(grads, names)).item()
        worst = max(worst, abs(fd - analytic) / max(abs(fd), 1e-8))
    if first_order:
        assert worst > 1e-4
    else:
        assert worst < 1e-6


def test_kl_hessian_vector_product_through_the_inner_step_matches_finite_differences():
    """F v (what CG uses) equals the finite difference of ∇KL along v, in float64."""
    policy, params, batch = small_batch(
        0.1, torch.float64, hidden=(6,), tasks=2, episodes=4, horizon=10
    )
    names = list(params)

    def grad_kl(theta, create_graph=False):
        kl = meta_objective(policy, theta, batch, inner_lr=0.1)[1]
        return torch.autograd.grad(kl, [theta[k] for k in names], create_graph=create_graph)

    g = grad_kl(params, create_graph=True)
    v = {k: torch.randn(p.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
         for k, p in params.items()}  # fmt: skip
    hv = torch.autograd.grad(
        sum((gi * v[k]).sum() for gi, k in zip(g, names)), list(params.values())
    )
    eps = 1e-5
    with torch.no_grad():
        plus = {k: (params[k] + eps * v[k]).requires_grad_() for k in names}
        minus = {k: (params[k] - eps * v[k]).requires_grad_() for k in names}
    fd = [(a - b) / (2 * eps) for a, b in zip(grad_kl(plus), grad_kl(minus))]
    for a, b in zip(hv, fd):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_bad_trpo_and_evaluation_arguments_raise_before_work():
    calls = []

    def objective(theta, differentiable):
        calls.append(1)
        raise AssertionError("must not be called")

    params = {"w": torch.zeros(2, requires_grad=True)}
    with pytest.raises(ValueError, match="max_kl must be a positive finite number, got -0.1"):
        trpo_step(params, objective, max_kl=-0.1)
    with pytest.raises(ValueError, match=r"backtrack_ratio must be in \(0, 1\), got 1.5"):
        trpo_step(params, objective, backtrack_ratio=1.5)
    assert calls == []
    policy = GaussianMLPPolicy(hidden=(4,))
    policy.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match=r"inner_lrs\[1\] must be a positive number, got -0.05"):
        adaptation_returns(policy, dict(policy.named_parameters()), torch.zeros(2, 2),
                           inner_lrs=(0.1, -0.05), episodes=2, generator=torch.Generator())  # fmt: skip
    assert calls == []
