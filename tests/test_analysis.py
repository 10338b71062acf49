"""mamllib.analysis: the Hessian term against an explicit Hessian, in float64."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from mamllib.analysis import flat, hessian_term
from mamllib.models import MLP


def test_hessian_term_equals_the_explicit_hessian_times_the_query_gradient():
    torch.manual_seed(0)
    model = MLP((1, 5, 1)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs, ys, xq, yq = (torch.randn(4, 1, dtype=torch.float64) for _ in range(4))
    alpha = 0.1
    names, shapes = list(params), [v.shape for v in params.values()]
    sizes = [v.numel() for v in params.values()]

    def unflat(vector):
        return dict(zip(names, (c.view(s) for c, s in zip(vector.split(sizes), shapes))))

    def support(vector):
        return F.mse_loss(functional_call(model, unflat(vector), (xs,)), ys)

    def query(vector):
        return F.mse_loss(functional_call(model, unflat(vector), (xq,)), yq)

    theta = flat(params)
    H = torch.autograd.functional.hessian(support, theta)  # the whole matrix, by hand
    theta_prime = theta - alpha * torch.autograd.functional.jacobian(support, theta)
    g_query = torch.autograd.functional.jacobian(query, theta_prime)
    parts = hessian_term(model, params, xs, ys, xq, yq, F.mse_loss, inner_lr=alpha)
    torch.testing.assert_close(flat(parts["first_order"]), g_query)
    torch.testing.assert_close(flat(parts["hessian_term"]), -alpha * H @ g_query)
    torch.testing.assert_close(
        flat(parts["second_order"]), (torch.eye(len(theta)) - alpha * H) @ g_query
    )


def test_flat_concatenates_in_dict_order():
    out = flat({"b": torch.tensor([[1.0, 2.0]]), "a": torch.tensor([3.0])})
    assert out.tolist() == [1.0, 2.0, 3.0]
