"""Evaluation (``mamllib.evaluate``): the parameters and the query metric after each inner
step against hand-written SGD, the paths against each other, and the 95% intervals against
numpy."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mamllib import MLP, SinusoidTasks, TaskBatch
from mamllib.evaluate import (
    accuracy,
    adaptation_curve,
    adaptation_path,
    mean_ci95,
    summarize_curve,
)


def float64_batch(num_tasks: int = 3, seed: int = 2) -> TaskBatch:
    b = SinusoidTasks().sample(num_tasks, 5, 7, generator=torch.Generator().manual_seed(seed))
    return TaskBatch(*(t.double() for t in (b.x_support, b.y_support, b.x_query, b.y_query)))


def hand_sgd(model: nn.Module, xs, ys, alpha: float, steps: int) -> list[dict[str, torch.Tensor]]:
    """θ₀..θ_steps of plain SGD on a copy of ``model``, written with ``torch.autograd.grad``."""
    fresh = copy.deepcopy(model)
    weights = list(fresh.parameters())
    path = [{n: p.detach().clone() for n, p in fresh.named_parameters()}]
    for _ in range(steps):
        grads = torch.autograd.grad(F.mse_loss(fresh(xs), ys), weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= alpha * g
        path.append({n: p.detach().clone() for n, p in fresh.named_parameters()})
    return path


# ----------------------------------------------------------------------------- adaptation_path


def test_adaptation_path_matches_hand_written_sgd():
    torch.manual_seed(0)
    model = MLP((1, 8, 8, 1)).double()
    batch = float64_batch()
    xs, ys = batch.x_support[1], batch.y_support[1]
    params = dict(model.named_parameters())

    path = adaptation_path(model, params, xs, ys, F.mse_loss, inner_lr=0.05, steps=3)

    assert len(path) == 4
    for theta, expected in zip(path, hand_sgd(model, xs, ys, 0.05, 3)):
        assert set(theta) == set(expected)
        for name in expected:
            assert not theta[name].requires_grad
            torch.testing.assert_close(theta[name], expected[name], rtol=1e-12, atol=1e-14)
    assert all(torch.equal(path[0][n], p.detach()) for n, p in params.items())
    assert not torch.allclose(path[1]["0.weight"], path[0]["0.weight"])  # the steps moved θ


def test_adaptation_path_with_zero_steps_is_theta_and_meta_sgd_rates_work():
    torch.manual_seed(1)
    model = MLP((1, 4, 1)).double()
    batch = float64_batch(1, seed=3)
    xs, ys = batch.x_support[0], batch.y_support[0]
    params = dict(model.named_parameters())
    (theta,) = adaptation_path(model, params, xs, ys, F.mse_loss, inner_lr=0.1, steps=0)
    assert all(torch.equal(theta[n], p.detach()) for n, p in params.items())
    # Meta-SGD: α per parameter; α = 0.05 everywhere must equal the float α = 0.05
    lrs = {n: torch.full_like(p, 0.05) for n, p in params.items()}
    per_parameter = adaptation_path(model, params, xs, ys, F.mse_loss, inner_lr=lrs, steps=2)
    scalar = adaptation_path(model, params, xs, ys, F.mse_loss, inner_lr=0.05, steps=2)
    for a, b in zip(per_parameter, scalar):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=0)


class CountingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"steps": -1}, ValueError, r"steps must be >= 0, got -1"),
        ({"inner_lr": 0.0}, ValueError, r"inner_lr \(α\).*0\.0"),
        ({"x_support": torch.zeros(0, 1), "y_support": torch.zeros(0, 1)}, ValueError,
         r"x_support has no examples"),
        ({"y_support": torch.zeros(4, 1)}, ValueError, r"disagree on the number of examples"),
    ],
)  # fmt: skip
def test_adaptation_path_rejects_bad_inputs_before_running_the_model(overrides, error, match):
    net = CountingNet()
    kwargs = {"x_support": torch.zeros(3, 1), "y_support": torch.zeros(3, 1), "inner_lr": 0.1,
              "steps": 2} | overrides  # fmt: skip
    with pytest.raises(error, match=match):
        adaptation_path(net, dict(net.named_parameters()), loss_fn=F.mse_loss, **kwargs)
    assert net.calls == 0


# ----------------------------------------------------------------------------- adaptation_curve


def test_adaptation_curve_matches_hand_written_sgd():
    torch.manual_seed(0)
    model = MLP((1, 8, 8, 1)).double()
    b = SinusoidTasks().sample(3, 5, 7, generator=torch.Generator().manual_seed(2))
    batch = TaskBatch(*(t.double() for t in (b.x_support, b.y_support, b.x_query, b.y_query)))
    alpha, steps = 0.05, 3

    curve = adaptation_curve(
        model, dict(model.named_parameters()), batch, F.mse_loss, inner_lr=alpha, steps=steps
    )
    assert curve.shape == (3, steps + 1)

    for i in range(batch.num_tasks):
        xs, ys, xq, yq = batch.x_support[i], batch.y_support[i], batch.x_query[i], batch.y_query[i]
        fresh = copy.deepcopy(model)
        expected = []
        for k in range(steps + 1):
            with torch.no_grad():
                expected.append(F.mse_loss(fresh(xq), yq).item())
            if k == steps:
                break
            weights = list(fresh.parameters())
            grads = torch.autograd.grad(F.mse_loss(fresh(xs), ys), weights)
            with torch.no_grad():
                for w, g in zip(weights, grads):
                    w -= alpha * g
        torch.testing.assert_close(
            curve[i], torch.tensor(expected, dtype=curve.dtype), rtol=1e-10, atol=1e-12
        )
    # The curve actually changes with adaptation (column k is not column 0 repeated).
    assert not torch.allclose(curve[:, 0], curve[:, 1])


def test_mean_ci95_matches_numpy():
    values = torch.randn(17, 4, generator=torch.Generator().manual_seed(3)) * 2 + 1
    mean, ci = mean_ci95(values, dim=0)
    arr = values.double().numpy()
    np.testing.assert_allclose(mean.numpy(), arr.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ci.numpy(), 1.96 * arr.std(axis=0, ddof=1) / np.sqrt(17), rtol=1e-12)

    mean1, ci1 = mean_ci95(values, dim=1)
    np.testing.assert_allclose(ci1.numpy(), 1.96 * arr.std(axis=1, ddof=1) / np.sqrt(4), rtol=1e-12)
    np.testing.assert_allclose(mean1.numpy(), arr.mean(axis=1), rtol=1e-12)

    two = torch.tensor([1.0, 3.0])
    m, c = mean_ci95(two)
    assert m.item() == pytest.approx(2.0) and c.item() == pytest.approx(
        1.96 * math.sqrt(2) / math.sqrt(2)
    )

    with pytest.raises(ValueError, match="at least 2"):
        mean_ci95(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        mean_ci95(torch.zeros(5, 1), dim=1)


@pytest.mark.parametrize("path", ["vmap", "loop", "hybrid", "auto"])
def test_adaptation_curve_is_the_metric_along_the_adaptation_path(path):
    """Every path and chunking of ``adaptation_curve`` gives the metric of
    ``adaptation_path``'s θ_k on the query set."""
    torch.manual_seed(4)
    model = MLP((1, 8, 1)).double()
    batch = float64_batch(5, seed=5)
    params = dict(model.named_parameters())
    curve = adaptation_curve(model, params, batch, F.mse_loss, inner_lr=0.05, steps=2,
                             path=path, chunk_size=2)  # fmt: skip
    for i in range(batch.num_tasks):
        thetas = adaptation_path(model, params, batch.x_support[i], batch.y_support[i],
                                 F.mse_loss, inner_lr=0.05, steps=2)  # fmt: skip
        with torch.no_grad():
            expected = [F.mse_loss(torch.func.functional_call(model, t, (batch.x_query[i],)),
                                   batch.y_query[i]) for t in thetas]  # fmt: skip
        torch.testing.assert_close(curve[i], torch.stack(expected), rtol=1e-12, atol=1e-14)


def test_accuracy_and_summary():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 1])).item() == pytest.approx(0.75)
    curve = torch.tensor([[1.0, 0.5], [3.0, 0.5], [2.0, 100.0]])
    summary = summarize_curve(curve)
    assert summary["num_tasks"] == 3
    assert summary["mean"] == pytest.approx([2.0, 101.0 / 3])
    assert summary["median"] == pytest.approx([2.0, 0.5])  # the diverged task does not move it
    assert summary["ci95"] == pytest.approx(
        [1.96 * 1.0 / math.sqrt(3), mean_ci95(curve)[1][1].item()]
    )
