"""The inner loop: one vanilla policy-gradient (REINFORCE) step per task, differentiable.

For task 𝒯ᵢ with trajectories sampled from π_θ and advantages Â (``advantages``):

    L_𝒯ᵢ(θ) = −(1/N) Σ_t log π_θ(a_t | s_t) Â_t        (N: valid steps of the task)
    θ'ᵢ = θ − α ∇_θ L_𝒯ᵢ(θ)

∇_θ L_𝒯ᵢ is the REINFORCE estimate of −∇_θ E[return] (with the baseline subtracted).
Written with ``torch.autograd.grad(create_graph=True)`` so that the outer loop can
differentiate through the step: second-order MAML; ``first_order=True`` treats the
inner gradient as a constant.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mamllib.rl.rollout import Trajectories, action_log_probs

Params = dict[str, Tensor]


def reinforce_loss(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    traj: Trajectories,
    adv: Tensor,
    batched: bool = False,
) -> Tensor:
    """``[T]``: L_𝒯ᵢ(θ) = −mean over valid steps of log π_θ(a|s) · Â, for each task."""
    logp = action_log_probs(policy, params, traj, batched)
    return -(logp * adv * traj.mask).sum((1, 2)) / traj.mask.sum((1, 2))


def policy_gradient_step(
    policy: nn.Module,
    params: Mapping[str, Tensor],
    traj: Trajectories,
    adv: Tensor,
    inner_lr: float,
    *,
    batched: bool = False,
    first_order: bool = False,
    differentiable: bool = True,
) -> Params:
    """θ'ᵢ = θ − α ∇_θ L_𝒯ᵢ(θ) for every task of ``traj`` at once.

    θ is copied once per task (an expanded view, no memory) and the summed loss is
    differentiated with respect to the copies: each task's loss only touches its own
    copy, so one backward pass yields all T per-task gradients.

    Args:
        params: θ shared by all tasks, or (``batched=True``) θᵢ per task ``[T, ...]``.
        traj: the task's own trajectories, sampled with those parameters.
        adv: ``[T, E, H]`` their advantages.
        inner_lr: α.
        first_order: the inner gradient is a constant (no Hessian term).
        differentiable: keep the graph (θ' a differentiable function of θ); ``False``
            returns detached θ' (evaluation, sampling, line search).

    Returns:
        θ' as a dict of ``[T, ...]`` tensors.
    """
    T = traj.num_tasks
    with torch.enable_grad():
        theta = {}
        for name, value in params.items():
            value = value if batched else value.unsqueeze(0).expand(T, *value.shape)
            if not (differentiable and value.requires_grad):
                value = value.detach().requires_grad_()
            theta[name] = value
        loss = reinforce_loss(policy, theta, traj, adv, batched=True).sum()
        grads = torch.autograd.grad(
            loss, list(theta.values()), create_graph=differentiable and not first_order
        )
    adapted = {name: value - inner_lr * g for (name, value), g in zip(theta.items(), grads)}
    if not differentiable:
        adapted = {name: value.detach() for name, value in adapted.items()}
    return adapted
