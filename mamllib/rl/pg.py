"""The inner loop: one vanilla policy-gradient (REINFORCE) step per task, differentiable.

For task 𝒯ᵢ with trajectories sampled from π_θ and advantages Â (``advantages``):

    L_𝒯ᵢ(θ) = −(1/N) Σ_t log π_θ(a_t | s_t) Â_t        (N: valid steps of the task)
    θ'ᵢ = θ − α ∇_θ L_𝒯ᵢ(θ)

∇_θ L_𝒯ᵢ is the REINFORCE estimate of −∇_θ E[return] (with the baseline subtracted). The
step is the core's ``mamllib.maml.inner_step``, so the outer loop can differentiate through
it: second-order MAML; ``first_order=True`` treats the inner gradient as a constant.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from mamllib.maml import Params, inner_step
from mamllib.rl.rollout import Trajectories, action_log_probs


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
    theta = {k: v if batched else v.unsqueeze(0).expand(T, *v.shape) for k, v in params.items()}

    def summed_loss(p: Params) -> Tensor:  # task i's loss only touches its own copy θᵢ
        return reinforce_loss(policy, p, traj, adv, batched=True).sum()

    # torch.autograd, not torch.func: one plain backward pass through all T copies at once
    adapted, _ = inner_step(theta, summed_loss, inner_lr, autograd=True,
                            first_order=first_order or not differentiable)  # fmt: skip
    return adapted if differentiable else {k: v.detach() for k, v in adapted.items()}
