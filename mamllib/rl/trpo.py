"""TRPO's update (Schulman et al. 2015) as the paper's code did it (rllab's
``ConjugateGradientOptimizer``): the outer optimiser of MAML for RL.

Maximise the surrogate subject to a KL trust region,

    min_θ L(θ)   subject to   KL̄(θ_old, θ) ≤ δ,

by solving F s = ∇L with conjugate gradient, where F v is a Hessian-vector product of
the mean KL (never forming F), scaling the step s to meet the KL bound under the
quadratic model, then backtracking until the surrogate improves and the true KL is
within δ. For MAML the KL and the surrogate are taken *through the inner update*
θ → θ'ᵢ, so F is the KL's Hessian with respect to the initial θ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from mamllib.checks import check_int, check_positive_float

Objective = Callable[[Mapping[str, Tensor], bool], tuple[Tensor, Tensor]]


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int = 10, residual_tol: float = 1e-10
) -> Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given only x ↦ A x.

    Args:
        matvec: x ↦ A x.
        b: right-hand side ``[n]``.
        iters: at most this many iterations (exact after n in exact arithmetic).
        residual_tol: stop when ‖r‖² falls below this.
    """
    check_int("iters", iters, 1)
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < residual_tol:
            break
        Ap = matvec(p)
        step = rr / (p @ Ap)
        x = x + step * p
        r = r - step * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _flat(tensors) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vector: Tensor, like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out, i = {}, 0
    for name, t in like.items():
        out[name] = vector[i : i + t.numel()].view_as(t)
        i += t.numel()
    return out


def _natural_direction(
    g: Tensor, kl: Tensor, leaves: list[Tensor], cg_iters: int, damping: float
) -> tuple[Tensor, float]:
    """s ≈ F⁻¹g by CG with Pearlmutter's F v = ∇(∇KL · v), and sᵀFs."""
    grad_kl = _flat(torch.autograd.grad(kl, leaves, create_graph=True))

    def fisher_vector(v: Tensor) -> Tensor:
        hv = torch.autograd.grad(grad_kl @ v, leaves, retain_graph=True)
        return _flat(hv).detach() + damping * v

    direction = conjugate_gradient(fisher_vector, g, cg_iters)
    return direction, (direction @ fisher_vector(direction)).item()


def trpo_step(
    params: Mapping[str, Tensor],
    objective: Objective,
    *,
    max_kl: float = 0.01,
    cg_iters: int = 10,
    damping: float = 1e-5,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
    fvp_kl: Callable[[Mapping[str, Tensor]], Tensor] | None = None,
) -> dict[str, float]:
    """One TRPO update of ``params`` (leaf tensors, changed in place).

    Args:
        params: θ, name -> leaf tensor with ``requires_grad``.
        objective: ``objective(θ, differentiable) -> (surrogate loss, mean KL)``, the
            loss to *minimise* and KL(π_old ‖ π_θ) averaged over the sampled states;
            with ``differentiable=False`` it may skip building graphs (line search).
        max_kl: δ, the trust region (the paper: 0.01).
        cg_iters: conjugate-gradient iterations (rllab: 10).
        damping: F + damping·I keeps CG well posed (rllab's ``reg_coeff``: 1e-5).
        backtrack_ratio, max_backtracks: the line search tries step·ratio^k, k < max.
        fvp_kl: θ -> mean KL on part of the data, for cheaper Hessian-vector products
            (as OpenAI baselines' TRPO takes every 5th sample); ``None``: the full KL.

    Returns:
        ``loss_before``, ``loss_after``, ``kl`` (of the accepted step, 0 if none),
        ``backtracks`` (tries used), ``accepted`` (1.0 or 0.0), ``expected_improvement``
        (of the full step, from the linear model).
    """
    check_positive_float("max_kl", max_kl)
    check_int("cg_iters", cg_iters, 1)
    check_int("max_backtracks", max_backtracks, 1)
    if not 0 < backtrack_ratio < 1:
        raise ValueError(f"backtrack_ratio must be in (0, 1), got {backtrack_ratio!r}")
    leaves = list(params.values())
    loss, kl = objective(params, True)
    g = _flat(torch.autograd.grad(loss, leaves, retain_graph=True))
    kl_for_fvp = fvp_kl(params) if fvp_kl is not None else kl
    direction, curvature = _natural_direction(g.detach(), kl_for_fvp, leaves, cg_iters, damping)
    step = math.sqrt(2 * max_kl / (curvature + 1e-8)) * direction
    loss_before = loss.item()
    del loss, kl, kl_for_fvp  # free the graphs before the line search
    old = _flat(leaves).detach()
    stats = {"loss_before": loss_before, "loss_after": loss_before, "kl": 0.0,
             "backtracks": float(max_backtracks), "accepted": 0.0,
             "expected_improvement": (g @ step).item()}  # fmt: skip
    for k in range(max_backtracks):
        candidate = _unflat(old - backtrack_ratio**k * step, params)
        new_loss, new_kl = objective(candidate, False)
        new_loss, new_kl = new_loss.item(), new_kl.item()
        if math.isfinite(new_loss) and new_loss < loss_before and new_kl <= max_kl:
            with torch.no_grad():
                for leaf, value in zip(leaves, candidate.values()):
                    leaf.copy_(value)
            stats.update(loss_after=new_loss, kl=new_kl, backtracks=float(k + 1), accepted=1.0)
            break
    return stats
