"""The Omniglot network: exact batch norm under vmap on every path, the conv net's shape
(the Omniglot experiment: test_experiments.py)."""

import pytest
import torch
import torch.nn.functional as F

from mamllib.batch import TaskBatch
from mamllib.maml import meta_loss
from mamllib.models import BatchNorm, Conv4


def _episodes(tasks=3, n_way=5, k_shot=1, k_query=2, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def images(k):
        return torch.rand(tasks, n_way * k, 1, 28, 28, generator=g, dtype=dtype)

    def labels(k):
        return torch.arange(n_way).repeat_interleave(k).repeat(tasks, 1)

    return TaskBatch(images(k_shot), labels(k_shot), images(k_query), labels(k_query))


def test_batch_norm_matches_torch_in_training_mode():
    torch.manual_seed(0)
    bn = BatchNorm(6).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64, requires_grad=True)
    ours = bn(x)
    theirs = F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    torch.testing.assert_close(ours, theirs)
    g1 = torch.autograd.grad(ours.pow(3).sum(), (x, bn.weight, bn.bias))
    g2 = torch.autograd.grad(theirs.pow(3).sum(), (x, bn.weight, bn.bias))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv4_every_path_equals_loop_in_float64(first_order, steps, threads):
    """The DESIGN's warning: native batch norm breaks second-order MAML under vmap; ours is
    exact, on every path (with 2 threads the hybrid path splits the tasks across them)."""
    torch.manual_seed(0)
    model = Conv4(5, hidden=8).double()
    params = dict(model.named_parameters())
    batch = _episodes()
    grads = {}
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for path in ("vmap", "loop", "hybrid"):
            result = meta_loss(model, params, batch, F.cross_entropy, inner_lr=0.4, steps=steps,
                               first_order=first_order, path=path)  # fmt: skip
            grads[path] = torch.autograd.grad(result.loss, list(params.values()))
    finally:
        torch.set_num_threads(saved)
    scale = max(g.abs().max() for g in grads["loop"])
    for path in ("vmap", "hybrid"):
        for name, a, b in zip(params, grads[path], grads["loop"]):
            assert (a - b).abs().max() <= 1e-10 * scale, (path, name)


def test_native_batch_norm_is_what_goes_wrong():
    """Keep the story honest: with torch's batch norm the vmap path disagrees (second order)."""

    class NativeConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(4, track_running_stats=False)
            self.head = torch.nn.Linear(4, 5)

        def forward(self, x):
            return self.head(F.relu(self.bn(self.conv(x))).mean((-2, -1)))

    torch.manual_seed(0)
    model = NativeConv().double()
    params = dict(model.named_parameters())
    batch = _episodes()
    grads = {
        path: torch.autograd.grad(
            meta_loss(model, params, batch, F.cross_entropy, inner_lr=0.4, steps=1, path=path).loss,
            list(params.values()),
        )
        for path in ("vmap", "loop")
    }
    worst = max((a - b).abs().max() / b.abs().max() for a, b in zip(grads["vmap"], grads["loop"]))
    if worst < 1e-8:
        pytest.skip("this torch version's native batch norm is exact under vmap")
    assert worst > 1e-6


def test_conv4_shapes_and_no_redundant_bias():
    model = Conv4(20)
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, 20)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.bias is None and c.stride == (2, 2) for c in convs)
    with pytest.raises(ValueError, match="n_way"):
        Conv4(0)
