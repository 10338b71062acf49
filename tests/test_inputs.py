"""Bad inputs fail early, with the exception type and a message that names the bad value.

"Early" is checked with a model that counts its forward calls: a rejected call must
not have run the model even once.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mamllib.tasks
from mamllib import MAML, MAMLConfig, SinusoidTasks, TaskBatch, adapt, meta_loss


class CountingNet(nn.Module):
    """A linear model that counts how often it is called."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return CountingNet()


@pytest.fixture
def batch():
    return SinusoidTasks().sample(2, 3, 4, generator=torch.Generator().manual_seed(0))


def run_meta_loss(net, batch, **overrides):
    kwargs = {"inner_lr": 0.01, "steps": 1, "path": "loop"} | overrides
    return meta_loss(net, dict(net.named_parameters()), batch, F.mse_loss, **kwargs)


def run_adapt(net, batch, **overrides):
    kwargs = {"inner_lr": 0.01, "steps": 1} | overrides
    params = dict(net.named_parameters())
    return adapt(net, params, batch.x_support[0], batch.y_support[0], F.mse_loss, **kwargs)


def test_counting_net_counts(net, batch):
    """The 'no work done' checks below are meaningful: a valid call does run the model."""
    run_meta_loss(net, batch)
    assert net.calls > 0


# ----------------------------------------------------------------------------- α


BAD_INNER_LRS = [
    (0.0, ValueError, r"inner_lr \(α\).*0\.0"),
    (-0.1, ValueError, r"inner_lr \(α\).*-0\.1"),
    (math.nan, ValueError, r"inner_lr \(α\).*nan"),
    (math.inf, ValueError, r"inner_lr \(α\).*inf"),
    (-math.inf, ValueError, r"inner_lr \(α\).*-inf"),
    ("0.01", TypeError, r"inner_lr \(α\).*'0\.01'"),
    (None, TypeError, r"inner_lr \(α\).*None"),
    (True, TypeError, r"inner_lr \(α\).*True"),
]


@pytest.mark.parametrize(("value", "error", "match"), BAD_INNER_LRS)
@pytest.mark.parametrize("call", [run_meta_loss, run_adapt], ids=["meta_loss", "adapt"])
def test_bad_inner_lr(net, batch, call, value, error, match):
    with pytest.raises(error, match=match):
        call(net, batch, inner_lr=value)
    assert net.calls == 0


@pytest.mark.parametrize(("value", "error", "match"), BAD_INNER_LRS)
def test_bad_inner_lr_in_config(value, error, match):
    with pytest.raises(error, match=match):
        MAMLConfig(inner_lr=value)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_meta_sgd_inner_lr_not_finite(net, batch, bad):
    lrs = {name: torch.full_like(p, 0.01) for name, p in net.named_parameters()}
    lrs["lin.bias"][0] = bad
    with pytest.raises(ValueError, match=r"inner_lr\['lin\.bias'\].*NaN or inf"):
        run_meta_loss(net, batch, inner_lr=lrs)
    assert net.calls == 0


def test_meta_sgd_inner_lr_not_a_tensor(net, batch):
    lrs = {"lin.weight": torch.full((1, 1), 0.01), "lin.bias": 0.01}
    with pytest.raises(TypeError, match=r"inner_lr\['lin\.bias'\].*tensor.*float"):
        run_adapt(net, batch, inner_lr=lrs)
    assert net.calls == 0


@pytest.mark.parametrize("call", [run_meta_loss, run_adapt], ids=["meta_loss", "adapt"])
def test_meta_sgd_inner_lr_missing_keys(net, batch, call):
    lrs = {"lin.weight": torch.full((1, 1), 0.01)}
    with pytest.raises(ValueError, match=r"missing \['lin\.bias'\]"):
        call(net, batch, inner_lr=lrs)
    assert net.calls == 0


def test_meta_sgd_inner_lr_unexpected_keys(net, batch):
    lrs = {name: torch.full_like(p, 0.01) for name, p in net.named_parameters()}
    lrs["lin.typo"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected \['lin\.typo'\]"):
        run_meta_loss(net, batch, inner_lr=lrs)
    assert net.calls == 0


# ----------------------------------------------------------------------------- steps


BAD_STEPS = [
    (-1, ValueError, r"inner_steps must be >= 0, got -1"),
    (-5, ValueError, r"inner_steps must be >= 0, got -5"),
    (1.0, TypeError, r"inner_steps must be an int.*1\.0"),
    (2.5, TypeError, r"inner_steps must be an int.*2\.5"),
    ("1", TypeError, r"inner_steps must be an int.*'1'"),
    (True, TypeError, r"inner_steps must be an int.*True"),
    (None, TypeError, r"inner_steps must be an int.*None"),
]


@pytest.mark.parametrize(("value", "error", "match"), BAD_STEPS)
@pytest.mark.parametrize("call", [run_meta_loss, run_adapt], ids=["meta_loss", "adapt"])
def test_bad_steps(net, batch, call, value, error, match):
    with pytest.raises(error, match=match):
        call(net, batch, steps=value)
    assert net.calls == 0


@pytest.mark.parametrize(("value", "error", "match"), BAD_STEPS)
def test_bad_steps_in_config(value, error, match):
    with pytest.raises(error, match=match):
        MAMLConfig(inner_steps=value)


# ----------------------------------------------------------------------------- MAMLConfig


@pytest.mark.parametrize("path", ["gpu", "VMAP", "", None])
def test_config_bad_path(path):
    with pytest.raises(ValueError, match=rf"path={path!r}.*not one of.*'vmap'.*'loop'"):
        MAMLConfig(path=path)


def test_meta_loss_bad_path(net, batch):
    with pytest.raises(ValueError, match=r"path='fast' is not one of"):
        run_meta_loss(net, batch, path="fast")
    assert net.calls == 0


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"outer_lr.*got 0$"),
        (-1e-3, ValueError, r"outer_lr.*-0\.001"),
        (math.nan, ValueError, r"outer_lr.*nan"),
        (math.inf, ValueError, r"outer_lr.*inf"),
        ("1e-3", TypeError, r"outer_lr.*'1e-3'"),
        (None, TypeError, r"outer_lr.*None"),
    ],
)
def test_config_bad_outer_lr(value, error, match):
    with pytest.raises(error, match=match):
        MAMLConfig(outer_lr=value)


@pytest.mark.parametrize("field", ["first_order", "learn_inner_lr"])
def test_config_bad_flags(field):
    with pytest.raises(TypeError, match=rf"{field} must be a bool, got 'yes'"):
        MAMLConfig(**{field: "yes"})


def test_config_is_valid_by_default():
    config = MAMLConfig()
    assert config.inner_lr > 0 and config.outer_lr > 0 and config.inner_steps >= 0


def test_maml_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"model must be an nn\.Module, got function"):
        MAML(lambda x: x, F.mse_loss)
    with pytest.raises(TypeError, match=r"loss_fn must be callable, got 3"):
        MAML(nn.Linear(1, 1), 3)
    with pytest.raises(TypeError, match=r"config must be a MAMLConfig, got dict"):
        MAML(nn.Linear(1, 1), F.mse_loss, {"inner_lr": 0.1})


# ----------------------------------------------------------------------------- TaskBatch


def parts(T=2, ks=3, q=4, x_feat=(1,), y_feat=(1,)):
    return {
        "x_support": torch.zeros(T, ks, *x_feat),
        "y_support": torch.zeros(T, ks, *y_feat),
        "x_query": torch.zeros(T, q, *x_feat),
        "y_query": torch.zeros(T, q, *y_feat),
    }


def test_task_batch_valid():
    b = TaskBatch(**parts())
    assert b.num_tasks == 2


@pytest.mark.parametrize("name", ["x_support", "y_support", "x_query", "y_query"])
def test_task_batch_different_num_tasks(name):
    p = parts()
    p[name] = torch.zeros(3, *p[name].shape[1:])
    with pytest.raises(ValueError, match=rf"number of tasks T.*'{name}': \(3,"):
        TaskBatch(**p)


@pytest.mark.parametrize("split", ["support", "query"])
def test_task_batch_x_y_count_mismatch(split):
    p = parts()
    p[f"y_{split}"] = torch.zeros(2, 9, 1)
    with pytest.raises(
        ValueError,
        match=rf"x_{split} and y_{split} disagree on the number of examples.*\(2, 9, 1\)",
    ):
        TaskBatch(**p)


def test_task_batch_input_feature_mismatch():
    p = parts()
    p["x_query"] = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match=r"same example shape.*x_query \(2, 4, 3\)"):
        TaskBatch(**p)


def test_task_batch_target_feature_mismatch():
    p = parts()
    p["y_support"] = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match=r"same example shape.*y_support \(2, 3, 2\)"):
        TaskBatch(**p)


def test_task_batch_no_support_examples():
    with pytest.raises(ValueError, match=r"at least one support example"):
        TaskBatch(**parts(ks=0))


def test_task_batch_missing_task_dimension():
    p = parts()
    p["x_support"] = torch.zeros(3)
    with pytest.raises(
        ValueError, match=r"x_support must have shape \[T, examples, \.\.\.\], got \(3,\)"
    ):
        TaskBatch(**p)


def test_task_batch_not_a_tensor():
    p = parts()
    p["y_query"] = [[0.0]]
    with pytest.raises(TypeError, match=r"y_query must be a tensor, got list"):
        TaskBatch(**p)


# ----------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("k", [0, -3])
def test_sinusoid_k_support_below_one(k):
    with pytest.raises(ValueError, match=rf"k_support \(K\) must be >= 1, got {k}"):
        SinusoidTasks().sample(4, k, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_tasks": 0}, ValueError, r"num_tasks must be >= 1, got 0"),
        ({"k_query": 0}, ValueError, r"k_query must be >= 1, got 0"),
        ({"k_support": 2.0}, TypeError, r"k_support \(K\) must be an int.*2\.0"),
        ({"num_tasks": True}, TypeError, r"num_tasks must be an int.*True"),
    ],
)
def test_sinusoid_bad_counts(kwargs, error, match):
    args = {"num_tasks": 4, "k_support": 5, "k_query": 5} | kwargs
    with pytest.raises(error, match=match):
        SinusoidTasks().sample(**args)


@pytest.mark.parametrize("field", ["amplitude", "phase", "x_range"])
@pytest.mark.parametrize("bounds", [(1.0, 1.0), (2.0, 1.0), (0.0, math.inf)])
def test_sinusoid_bad_ranges(field, bounds):
    with pytest.raises(ValueError, match=rf"{field} must be a finite range.*{bounds[1]}"):
        SinusoidTasks(**{field: bounds})


def test_get_tasks_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'nope'.*valid names.*'sinusoid'"):
        mamllib.tasks.get_tasks("nope")


def test_get_tasks_known_name():
    assert isinstance(mamllib.tasks.get_tasks("sinusoid"), SinusoidTasks)


# ----------------------------------------------------------------------------- meta_loss batch


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [
        ((1, 2, 3, 4), "tuple"),
        ({"x_support": 1}, "dict"),
        (torch.zeros(2, 3, 1), "Tensor"),
        (None, "NoneType"),
    ],
)
def test_meta_loss_batch_not_a_task_batch(net, bad, type_name):
    with pytest.raises(TypeError, match=rf"batch must be a TaskBatch, got {type_name}"):
        meta_loss(net, dict(net.named_parameters()), bad, F.mse_loss, inner_lr=0.01, steps=1)
    assert net.calls == 0


# ----------------------------------------------------------------------------- examples


def test_task_batch_no_query_examples():
    with pytest.raises(
        ValueError, match=r"at least one query example per task, got x_query \(2, 0, 1\)"
    ):
        TaskBatch(**parts(q=0))


def test_adapt_empty_support(net, batch):
    with pytest.raises(ValueError, match=r"x_support has no examples \(shape \[0, 1\]\)"):
        adapt(net, dict(net.named_parameters()), torch.zeros(0, 1), torch.zeros(0, 1),
              F.mse_loss, inner_lr=0.01, steps=1)  # fmt: skip
    assert net.calls == 0


def test_adapt_more_targets_than_inputs(net):
    with pytest.raises(
        ValueError,
        match=r"x_support and y_support disagree on the number of examples: 5 inputs \[5, 1\] "
        r"vs 6 targets \[6, 1\]",
    ):
        adapt(net, dict(net.named_parameters()), torch.zeros(5, 1), torch.zeros(6, 1),
              F.mse_loss, inner_lr=0.01, steps=1)  # fmt: skip
    assert net.calls == 0


@pytest.mark.parametrize(("x", "y", "type_name"), [([[0.0]], torch.zeros(1, 1), "list"),
                                                   (torch.zeros(1, 1), 0.0, "float")])  # fmt: skip
def test_adapt_support_not_a_tensor(net, x, y, type_name):
    with pytest.raises(TypeError, match=rf"_support must be a tensor, got {type_name}"):
        adapt(net, dict(net.named_parameters()), x, y, F.mse_loss, inner_lr=0.01, steps=1)
    assert net.calls == 0


# ----------------------------------------------------------------------------- target shapes

BROADCAST = r"the model predicts \[3, 1\]: the loss would broadcast them to \[3, 3\]; reshape"


@pytest.mark.parametrize("loss_fn", [F.mse_loss, F.l1_loss, torch.nn.MSELoss()],
                         ids=["mse_loss", "l1_loss", "MSELoss"])  # fmt: skip
def test_adapt_targets_that_would_broadcast(net, batch, loss_fn):
    params = dict(net.named_parameters())
    y = batch.y_support[0].squeeze(-1)  # [3] for a prediction [3, 1]
    with pytest.raises(ValueError, match=rf"targets y_support have shape \[3\] but {BROADCAST}"):
        adapt(net, params, batch.x_support[0], y, loss_fn, inner_lr=0.01, steps=1)


@pytest.mark.parametrize("path", ["vmap", "loop", "hybrid", "hybrid-threads"])
@pytest.mark.parametrize("steps", [0, 1])
def test_meta_loss_targets_that_would_broadcast(net, batch, path, steps):
    """Every path, also without inner steps (then only the query loss sees the targets)."""
    flat = TaskBatch(batch.x_support, batch.y_support.squeeze(-1),
                     batch.x_query, batch.y_query.squeeze(-1))  # fmt: skip
    shape = (3 if steps else 4,)
    threads = torch.get_num_threads()
    if path == "hybrid-threads":
        torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=rf"y_query\) of each task have shape \[{shape[0]}\]"):
            run_meta_loss(net, flat, steps=steps, path=path.removesuffix("-threads"))
    finally:
        torch.set_num_threads(threads)


def test_meta_loss_targets_with_another_feature_size(net, batch):
    wide = TaskBatch(batch.x_support, batch.y_support.expand(-1, -1, 2),
                     batch.x_query, batch.y_query.expand(-1, -1, 2))  # fmt: skip
    with pytest.raises(
        ValueError, match=r"have shape \[3, 2\] but the model predicts \[3, 1\].*a model that"
    ):
        run_meta_loss(net, wide, path="vmap")


def test_well_shaped_targets_pass_and_give_the_hand_written_loss(net, batch):
    result = run_meta_loss(net, batch, steps=0)
    expected = torch.stack(
        [((net.lin(x) - y) ** 2).mean() for x, y in zip(batch.x_query, batch.y_query)]
    )
    torch.testing.assert_close(result.query_losses, expected.detach())


def test_a_loss_that_reshapes_itself_is_not_second_guessed(net, batch):
    """Only the elementwise losses of torch are checked: a custom loss may squeeze."""
    params = dict(net.named_parameters())
    y = batch.y_support[0].squeeze(-1)
    _, losses = adapt(net, params, batch.x_support[0], y,
                      lambda p, t: F.mse_loss(p.squeeze(-1), t), inner_lr=0.01, steps=1)  # fmt: skip
    expected = ((net.lin(batch.x_support[0]).squeeze(-1) - y) ** 2).mean()
    torch.testing.assert_close(losses[0], expected.detach())


@pytest.mark.parametrize("path", ["vmap", "loop", "hybrid"])
def test_class_labels_for_image_inputs_are_fine(path):
    """int64 labels [T, N·K] for images [T, N·K, 1, 28, 28]: no shape complaint."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))
    labels = torch.arange(5).repeat_interleave(2).expand(3, -1)
    images = torch.rand(3, 10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    tasks = TaskBatch(images, labels, images, labels)
    result = meta_loss(model, dict(model.named_parameters()), tasks, F.cross_entropy,
                       inner_lr=0.1, steps=1, path=path)  # fmt: skip
    assert result.query_losses.shape == (3,) and torch.isfinite(result.loss)
