"""Baselines: the pre-training objective against a hand-written pooled MSE, the scratch
network, the pixel-space nearest neighbour against a plain loop."""

import pytest
import torch
import torch.nn.functional as F

from mamllib import MLP, SinusoidTasks, TaskBatch
from mamllib.baselines import multitask_loss, pixel_nearest_neighbour_accuracy, scratch_learner
from mamllib.experiments.omniglot import OmniglotConfig
from mamllib.models import Conv4
from mamllib.paper.omniglot import meta_test_episodes


def test_pixel_nearest_neighbour_equals_a_loop():
    batch = meta_test_episodes(OmniglotConfig(), 8)
    expected = []
    for xs, ys, xq, yq in zip(batch.x_support, batch.y_support, batch.x_query, batch.y_query):
        correct = 0
        for x, y in zip(xq, yq):
            distances = [((x - s) ** 2).sum().item() for s in xs]
            correct += int(ys[distances.index(min(distances))] == y)
        expected.append(correct / len(yq))
    assert pixel_nearest_neighbour_accuracy(batch).tolist() == pytest.approx(expected)


def test_multitask_loss_is_pooled_mse():
    torch.manual_seed(0)
    model = MLP((1, 8, 8, 1)).double()
    b = SinusoidTasks().sample(4, 3, 9, generator=torch.Generator().manual_seed(1))
    batch = TaskBatch(*(t.double() for t in (b.x_support, b.y_support, b.x_query, b.y_query)))
    params = dict(model.named_parameters())

    squared, count = 0.0, 0
    with torch.no_grad():
        for i in range(batch.num_tasks):
            for x, y in (
                (batch.x_support[i], batch.y_support[i]),
                (batch.x_query[i], batch.y_query[i]),
            ):
                squared += ((model(x) - y) ** 2).sum().item()
                count += y.numel()
    expected = squared / count
    assert count == 4 * (3 + 9)

    got = multitask_loss(model, params, batch, F.mse_loss)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # Also a function of the params passed, not the model's own weights.
    shifted = {k: v + 0.1 for k, v in params.items()}
    assert multitask_loss(model, shifted, batch, F.mse_loss).item() != pytest.approx(
        expected, rel=1e-6
    )
    # And differentiable w.r.t. them.
    got.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_scratch_learner_is_a_seeded_random_conv4_with_the_configs_alpha():
    config = OmniglotConfig(n_way=20, hidden=8, inner_lr=0.1)
    a, b = scratch_learner(config, seed=3), scratch_learner(config, seed=3)
    assert isinstance(a.model, Conv4) and a.model.head.out_features == 20
    assert not a.training and a.inner_lr == 0.1
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    torch.manual_seed(3)
    fresh = Conv4(20, hidden=8)
    assert all(torch.equal(a.params[k], v) for k, v in fresh.named_parameters())
    other = scratch_learner(config, seed=4)
    assert not torch.equal(a.params["head.weight"], other.params["head.weight"])
