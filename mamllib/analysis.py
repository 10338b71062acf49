"""Quantities the course measures to explain MAML (not needed to train it).

``hessian_term`` makes the difference between second- and first-order MAML concrete:
for one inner step θ' = θ − α∇L_s(θ), the chain rule gives

    ∇_θ L_q(θ') = (I − α ∇²L_s(θ)) ∇L_q(θ')        (second-order)
                = ∇L_q(θ') − α ∇²L_s(θ) ∇L_q(θ')
                  └ first-order ┘  └ the Hessian term ┘

The Hessian term is computed as a Hessian-vector product, never forming ∇²L_s.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import grad, vjp

from mamllib.maml import LossFn, adapt, predict


def hessian_term(
    model: nn.Module,
    params: Mapping[str, Tensor],
    x_support: Tensor,
    y_support: Tensor,
    x_query: Tensor,
    y_query: Tensor,
    loss_fn: LossFn,
    inner_lr: float,
) -> dict[str, dict[str, Tensor]]:
    """Both meta-gradients of one task after one inner step, and what separates them.

    Returns:
        ``{"first_order": ∇L_q(θ'), "hessian_term": −α ∇²L_s(θ) ∇L_q(θ'),
        "second_order": their sum}``, each a dict shaped like ``params``.
    """
    params = {k: v.detach() for k, v in params.items()}
    adapted, _ = adapt(model, params, x_support, y_support, loss_fn, inner_lr=inner_lr, steps=1)
    adapted = {k: v.detach() for k, v in adapted.items()}
    g_query = grad(lambda p: loss_fn(predict(model, p, x_query), y_query))(adapted)
    support_grad = grad(lambda p: loss_fn(predict(model, p, x_support), y_support))
    # ∇²L_s is symmetric, so the vector-Jacobian product of ∇L_s is the Hessian-vector product.
    _, vjp_fn = vjp(support_grad, params)
    (hvp,) = vjp_fn(g_query)
    term = {k: -inner_lr * hvp[k] for k in params}
    return {
        "first_order": g_query,
        "hessian_term": term,
        "second_order": {k: g_query[k] + term[k] for k in params},
    }


def flat(tensors: Mapping[str, Tensor]) -> Tensor:
    """A dict of tensors as one vector (in the dict's order)."""
    return torch.cat([t.reshape(-1) for t in tensors.values()])
