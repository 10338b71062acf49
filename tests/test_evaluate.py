"""Evaluation (``mamllib.evaluate``): the parameters and the query metric after each inner
step against hand-written SGD, the paths against each other, the 95% intervals against
numpy, and the query batchings (transductive or not) against forward passes by hand."""

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
    NON_TRANSDUCTIVE,
    TRANSDUCTIVE,
    QueryBatching,
    accuracy,
    adaptation_curve,
    adaptation_path,
    interleaved_by_class,
    mean_ci95,
    predict_query,
    query_batching_metrics,
    summarize,
    summarize_curve,
)
from mamllib.maml import predict
from mamllib.models import Conv4


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


# --------------------------------------------------------------- query batching (transduction)
N_WAY, K_SHOT, K_QUERY = 3, 2, 4


@pytest.fixture(scope="module")
def conv_task():
    """A small float64 Conv4 (batch norm on batch statistics) and one classification task,
    query images class-major as the Omniglot sampler gives them."""
    torch.manual_seed(0)
    model = Conv4(N_WAY, hidden=8).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs = torch.randn(N_WAY * K_SHOT, 1, 28, 28, dtype=torch.float64)
    xq = torch.randn(N_WAY * K_QUERY, 1, 28, 28, dtype=torch.float64)
    ys = torch.arange(N_WAY).repeat_interleave(K_SHOT)
    yq = torch.arange(N_WAY).repeat_interleave(K_QUERY)
    return model, params, xs, ys, xq, yq


def test_non_transductive_prediction_ignores_the_other_query_images(conv_task):
    """Replace every query image but the first: its non-transductive prediction stays
    the same, its transductive one (the paper's protocol) changes."""
    model, params, xs, _, xq, yq = conv_task
    other = xq.clone()
    other[1:] = 3 * torch.randn_like(other[1:]) + 1
    for batching, same in ((NON_TRANSDUCTIVE, True), (TRANSDUCTIVE, False)):
        before, after = (predict_query(model, params, x, batching, y_query=yq, x_support=xs)[0]
                         for x in (xq, other))  # fmt: skip
        assert torch.allclose(before, after, rtol=1e-12, atol=1e-12) is same, batching


@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_non_transductive_equals_a_forward_pass_per_query_image(conv_task, chunk_size):
    """The vmapped groups equal a slow loop: each query image through the network with the
    support set, one forward pass each, its own output kept."""
    model, params, xs, _, xq, yq = conv_task
    fast = predict_query(model, params, xq, NON_TRANSDUCTIVE, x_support=xs, chunk_size=chunk_size)
    slow = torch.stack([predict(model, params, torch.cat([xs, x[None]]))[-1] for x in xq])
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    alone = torch.stack([predict(model, params, x[None])[0] for x in xq])
    assert not torch.allclose(fast, alone)  # the support set does take part in the statistics


def test_groups_per_class_equal_forward_passes_by_hand(conv_task):
    """q images of each class together: pass i holds images i·q .. i·q + q - 1 of every class."""
    model, params, _, _, xq, yq = conv_task
    for q in (1, 2):
        got = predict_query(model, params, xq, QueryBatching(q * N_WAY), y_query=yq)
        expected = torch.empty_like(got)
        for i in range(K_QUERY // q):
            index = [c * K_QUERY + j for c in range(N_WAY) for j in range(i * q, (i + 1) * q)]
            expected[index] = predict(model, params, xq[index])
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(predict_query(model, params, xq, TRANSDUCTIVE),
                               predict(model, params, xq))  # fmt: skip
    one = predict_query(model, params, xq, QueryBatching(1))
    torch.testing.assert_close(one, torch.cat([predict(model, params, x[None]) for x in xq]))


def test_interleaved_by_class_takes_one_of_each_class_per_round():
    assert interleaved_by_class(torch.tensor([0, 0, 1, 1, 2, 2])).tolist() == [0, 2, 4, 1, 3, 5]
    assert interleaved_by_class(torch.tensor([2, 0, 2, 0, 0])).tolist() == [0, 1, 2, 3, 4]
    assert interleaved_by_class(torch.tensor([1, 1, 1, 0])).tolist() == [0, 3, 1, 2]


def test_without_batch_norm_every_batching_predicts_the_same():
    torch.manual_seed(1)
    model = MLP((1, 8, 1)).double()
    params = dict(model.named_parameters())
    b = float64_batch(1)
    plain = predict(model, params, b.x_query[0])
    for batching in (NON_TRANSDUCTIVE, QueryBatching(1), QueryBatching(7, with_support=True)):
        got = predict_query(model, params, b.x_query[0], batching, x_support=b.x_support[0])
        torch.testing.assert_close(got, plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "batching, kwargs, match",
    [
        (QueryBatching(5), {"y_query": torch.zeros(12, dtype=torch.long)}, "must divide the 12"),
        (QueryBatching(3), {}, "pass y_query"),
        (NON_TRANSDUCTIVE, {}, "needs x_support"),
    ],
)
def test_predict_query_rejects_impossible_batchings(conv_task, batching, kwargs, match):
    model, params, _, _, xq, _ = conv_task
    with pytest.raises(ValueError, match=match):
        predict_query(model, params, xq, batching, **kwargs)


@pytest.mark.parametrize("path", ["vmap", "loop"])
def test_query_batching_metrics_are_the_accuracy_of_the_adapted_network(conv_task, path):
    """Per batching, the accuracy after the inner steps equals adapting with
    ``adaptation_path`` and classifying by hand; ``adaptation_curve`` with the same batching
    agrees at every step."""
    model, params, xs, ys, xq, yq = conv_task
    g = torch.Generator().manual_seed(3)
    batch = TaskBatch(torch.stack([xs, xs.flip(0)]), torch.stack([ys, ys]),
                      torch.stack([xq, torch.randn(xq.shape, generator=g, dtype=xq.dtype)]),
                      torch.stack([yq, yq]))  # fmt: skip
    batchings = {"all": TRANSDUCTIVE, "support + 1": NON_TRANSDUCTIVE, "one": QueryBatching(1)}
    got = query_batching_metrics(model, params, batch, F.cross_entropy, inner_lr=0.5, steps=2,
                                 batchings=batchings, metric_fn=accuracy, chunk_size=4)  # fmt: skip
    for t in range(2):
        xs_t, xq_t = batch.x_support[t], batch.x_query[t]
        theta = adaptation_path(model, params, xs_t, ys, F.cross_entropy, inner_lr=0.5, steps=2)[-1]
        expected = {
            "all": predict(model, theta, xq_t),
            "support + 1": torch.stack(
                [predict(model, theta, torch.cat([xs_t, x[None]]))[-1] for x in xq_t]
            ),  # fmt: skip
            "one": torch.cat([predict(model, theta, x[None]) for x in xq_t]),
        }
        for label, logits in expected.items():
            assert got[label][t].item() == accuracy(logits, yq).item(), label
    for label in ("all", "support + 1"):
        curve = adaptation_curve(model, params, batch, F.cross_entropy, inner_lr=0.5, steps=2,
                                 metric_fn=accuracy, path=path, query_batching=batchings[label])  # fmt: skip
        torch.testing.assert_close(curve[:, -1], got[label])


def test_summarize_one_number_per_task():
    values = torch.tensor([0.5, 1.0, 0.75])
    summary = summarize(values)
    assert summary["mean"] == pytest.approx(0.75) and summary["median"] == pytest.approx(0.75)
    assert summary["ci95"] == pytest.approx(1.96 * 0.25 / math.sqrt(3))
    assert summary["num_tasks"] == 3
