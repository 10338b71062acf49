"""The algorithm core (``mamllib.maml``): its numbers against independent references, and
its argument checks.

The references (``maml_references``) are written without mamllib: hand-evaluated tiny
models, hand-written SGD steps, central finite differences and the explicit Hessian of
one-step MAML, all in float64. Here they check the core's paths, ``"vmap"`` and ``"loop"``;
test_fast.py runs the same checks on the speed paths. Bad inputs fail early, with the
exception type and a message that names the bad value: "early" is checked with a model that
counts its forward calls, so that a rejected call must not have run the model even once.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from maml_references import (
    ALPHA,
    DTYPE,
    FD_ATOL,
    FD_RTOL,
    PATH_ATOL,
    PATH_RTOL,
    CountingNet,
    Spec,
    central_differences,
    check_class_labels_for_image_inputs_are_fine,
    check_cuda_matches_cpu,
    check_first_and_second_order_against_explicit_hessian,
    check_meta_sgd_learns_inner_lrs,
    check_meta_sgd_lr_gradient_against_finite_differences,
    check_paths_equal_loop,
    check_second_order_against_finite_differences,
    check_targets_that_would_broadcast,
    check_zero_steps_is_the_plain_multitask_gradient,
    hand_adapt,
    hand_meta_objective,
    hand_mlp,
    library_meta_grad,
    meta_sgd_lrs,
    mse,
    query_grad_at,
    sinusoid_batch,
    tiny_mlp,
)
from torch import Tensor, nn

import mamllib.maml
from mamllib import MAML, MLP, MAMLConfig, SinusoidTasks, TaskBatch, adapt, meta_loss, meta_step
from mamllib.maml import InnerLoop, check_path, inner_step, register_path, resolve_path

CORE_PATHS = ["vmap", "loop"]


# ----------------------------------------------------------------------------- 1. second order vs FD


@pytest.mark.parametrize("path", CORE_PATHS)
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_meta_gradient_matches_finite_differences(path, steps):
    check_second_order_against_finite_differences(path, steps)


# ----------------------------------------------------------------------------- 2. first order, Hessian term


@pytest.mark.parametrize("path", CORE_PATHS)
@pytest.mark.parametrize("num_tasks", [1, 4])
def test_first_and_second_order_against_explicit_hessian(path, num_tasks):
    check_first_and_second_order_against_explicit_hessian(path, num_tasks)


# ----------------------------------------------------------------------------- 3. vmap == loop


@pytest.mark.parametrize("meta_sgd", [False, True], ids=["float-lr", "meta-sgd"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("steps", [0, 1, 3])
def test_vmap_equals_loop(steps, first_order, meta_sgd):
    check_paths_equal_loop(["vmap"], steps, first_order, meta_sgd)


@pytest.mark.parametrize("path", CORE_PATHS)
def test_meta_sgd_lr_gradient_matches_finite_differences(path):
    check_meta_sgd_lr_gradient_against_finite_differences(path)


# ----------------------------------------------------------------------------- 4. zero inner steps


@pytest.mark.parametrize("path", CORE_PATHS)
@pytest.mark.parametrize("first_order", [False, True])
def test_zero_steps_is_the_plain_multitask_gradient(path, first_order):
    check_zero_steps_is_the_plain_multitask_gradient(path, first_order)


# ------------------------------------------------------------------------- 5. the inner step, adapt


@pytest.mark.parametrize("first_order", [False, True])
def test_inner_step_is_one_hand_written_sgd_step(first_order):
    """θ' = θ − α∇L(θ) and L(θ) against the hand-written step; the gradient of a query loss
    at θ' w.r.t. θ against the explicit Hessian formula (first order: without its term)."""
    model = tiny_mlp(seed=30)
    spec = Spec(model)
    batch = sinusoid_batch(1, seed=31)
    xs, ys, xq, yq = batch.x_support[0], batch.y_support[0], batch.x_query[0], batch.y_query[0]
    params = dict(model.named_parameters())
    flat = spec.flatten(params).detach()

    theta_prime, loss = inner_step(
        params, lambda p: mse(hand_mlp(p, xs), ys), ALPHA, first_order=first_order
    )
    through = torch.autograd.grad(mse(hand_mlp(theta_prime, xq), yq), list(params.values()))

    hand_theta, hand_losses = hand_adapt(hand_mlp, spec, flat, xs, ys, ALPHA, 1)
    g_q = query_grad_at(hand_mlp, spec, hand_theta, xq, yq)
    hessian = torch.autograd.functional.hessian(
        lambda v: mse(hand_mlp(spec.unflatten(v), xs), ys), flat
    )
    torch.testing.assert_close(
        spec.flatten(theta_prime).detach(), hand_theta, rtol=1e-12, atol=1e-15
    )
    torch.testing.assert_close(loss.detach(), hand_losses[0], rtol=1e-12, atol=0)
    expected = g_q if first_order else g_q - ALPHA * hessian @ g_q
    torch.testing.assert_close(spec.flatten(list(through)), expected, rtol=1e-10, atol=1e-12)


def test_inner_step_takes_meta_sgd_rates_per_parameter():
    model = tiny_mlp(seed=32)
    spec = Spec(model)
    batch = sinusoid_batch(1, seed=33)
    xs, ys = batch.x_support[0], batch.y_support[0]
    params = {k: v.detach() for k, v in model.named_parameters()}
    lrs = {k: v.detach() for k, v in meta_sgd_lrs(model, seed=34).items()}

    theta_prime, _ = inner_step(params, lambda p: mse(hand_mlp(p, xs), ys), lrs)
    flat_lrs = spec.flatten(lrs)
    hand_theta, _ = hand_adapt(hand_mlp, spec, spec.flatten(params), xs, ys, flat_lrs, 1)
    torch.testing.assert_close(spec.flatten(theta_prime), hand_theta, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(flat_lrs, flat_lrs.mean().expand_as(flat_lrs))  # not one α


@pytest.mark.parametrize("first_order", [False, True])
def test_adapt_matches_hand_sgd(first_order):
    model = tiny_mlp(seed=12)
    spec = Spec(model)
    batch = sinusoid_batch(1, k_support=10, seed=13)
    xs, ys = batch.x_support[0], batch.y_support[0]
    params = dict(model.named_parameters())
    flat = spec.flatten(params).detach()
    steps = 4

    theta_prime, losses = adapt(
        model, params, xs, ys, F.mse_loss, inner_lr=ALPHA, steps=steps, first_order=first_order
    )

    hand_theta, hand_losses = hand_adapt(hand_mlp, spec, flat, xs, ys, ALPHA, steps)
    assert losses.shape == (steps,)
    assert not losses.requires_grad
    torch.testing.assert_close(losses, torch.stack(hand_losses), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        spec.flatten(theta_prime).detach(), hand_theta, rtol=1e-12, atol=1e-15
    )
    assert not torch.allclose(hand_theta, flat)  # the steps did move θ
    # each loss is L_support at the intermediate θ before that step, recomputed by hand
    theta = flat
    for k in range(steps):
        expected = mse(hand_mlp(spec.unflatten(theta), xs), ys)
        torch.testing.assert_close(losses[k], expected.detach(), rtol=1e-12, atol=0)
        theta, _ = hand_adapt(hand_mlp, spec, theta, xs, ys, ALPHA, 1)
    # the losses decrease on this smooth small-step problem
    assert losses[-1] < losses[0]


def test_adapt_zero_steps_returns_theta():
    model = tiny_mlp(seed=14)
    batch = sinusoid_batch(1, seed=15)
    params = dict(model.named_parameters())
    theta_prime, losses = adapt(
        model, params, batch.x_support[0], batch.y_support[0], F.mse_loss, inner_lr=ALPHA, steps=0
    )
    assert set(theta_prime) == set(params)
    for name, p in params.items():
        assert torch.equal(theta_prime[name], p)
    assert losses.shape == (0,)


# ----------------------------------------------------------------------------- 6. buffers


class ScaledNet(nn.Module):
    """A tiny smooth net whose input is multiplied by a fixed (non-trainable) buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor([0.7], dtype=DTYPE))
        self.hidden = nn.Linear(1, 3).to(DTYPE)
        self.out = nn.Linear(3, 1).to(DTYPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.tanh(self.hidden(x * self.scale)))


def hand_scaled(scale: Tensor):
    def forward(p, x):
        h = torch.tanh((x * scale) @ p["hidden.weight"].T + p["hidden.bias"])
        return h @ p["out.weight"].T + p["out.bias"]

    return forward


@pytest.mark.parametrize("scale", [None, 2.5], ids=["own-buffer", "passed-buffer"])
def test_model_with_buffers(scale):
    torch.manual_seed(16)
    model = ScaledNet()
    spec = Spec(model)
    assert spec.names == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    batch = sinusoid_batch(3, seed=17)
    buffers = dict(model.named_buffers())
    if scale is not None:
        buffers = {"scale": torch.tensor([scale], dtype=DTYPE)}
    flat = spec.flatten(dict(model.named_parameters())).detach()
    forward = hand_scaled(buffers["scale"])

    steps = 2
    rv, gv = library_meta_grad(model, batch, steps=steps, path="vmap", buffers=buffers)
    rl, gl = library_meta_grad(model, batch, steps=steps, path="loop", buffers=buffers)
    torch.testing.assert_close(rv.loss, rl.loss, rtol=PATH_RTOL, atol=PATH_ATOL)
    torch.testing.assert_close(rv.support_losses, rl.support_losses, rtol=PATH_RTOL, atol=PATH_ATOL)
    torch.testing.assert_close(gv, gl, rtol=PATH_RTOL, atol=PATH_ATOL)

    reference = central_differences(
        lambda v: hand_meta_objective(forward, spec, v, batch, ALPHA, steps), flat
    )
    assert rv.loss.item() == pytest.approx(
        hand_meta_objective(forward, spec, flat, batch, ALPHA, steps), rel=1e-12
    )
    torch.testing.assert_close(gv, reference, rtol=FD_RTOL, atol=FD_ATOL)
    assert not any(b.requires_grad for b in model.buffers())


# ----------------------------------------------------------------------------- 7. the learner


def test_meta_step_is_one_adam_step():
    torch.manual_seed(18)
    maml = MAML(MLP((1, 8, 1)), F.mse_loss, MAMLConfig(inner_lr=0.01, outer_lr=1e-3, path="vmap"))
    batch = SinusoidTasks().sample(5, 5, 5, generator=torch.Generator().manual_seed(19))
    before = {n: p.detach().clone() for n, p in maml.named_parameters()}

    # the meta-gradient on an untouched copy, then Adam's first step by hand:
    # m̂ = g, v̂ = g², so Δθ = −β g / (|g| + ε)
    twin = copy.deepcopy(maml)
    twin.meta_loss(batch).loss.backward()
    expected = {
        n: before[n] - 1e-3 * p.grad / (p.grad.abs() + 1e-8) for n, p in twin.named_parameters()
    }

    result = meta_step(maml, maml.make_optimizer(), batch)
    assert torch.isfinite(result.loss)
    for n, p in maml.named_parameters():
        assert not torch.equal(p.detach(), before[n]), n
        torch.testing.assert_close(p.detach(), expected[n], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("path", CORE_PATHS)
def test_meta_sgd_learns_inner_lrs(path):
    check_meta_sgd_learns_inner_lrs(path)


@pytest.fixture
def one_thread():
    """Tiny kernels: more threads only add overhead (and contention on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_meta_training_reduces_sinusoid_loss(one_thread):
    torch.manual_seed(22)
    tasks = SinusoidTasks()
    maml = MAML(
        MLP((1, 40, 40, 1)), F.mse_loss, MAMLConfig(inner_lr=0.01, outer_lr=3e-3, path="vmap")
    )
    optimizer = maml.make_optimizer()
    generator = torch.Generator().manual_seed(23)
    eval_batch = tasks.sample(25, 10, 10, generator=torch.Generator().manual_seed(24))

    eval_losses = []
    num_steps = 200
    for step in range(num_steps):
        if step < 20 or step >= num_steps - 20:
            eval_losses.append(maml.meta_loss(eval_batch).loss.item())
        meta_step(maml, optimizer, tasks.sample(25, 10, 10, generator=generator))

    first, last = sum(eval_losses[:20]) / 20, sum(eval_losses[-20:]) / 20
    assert last < 0.7 * first, (first, last)


# ----------------------------------------------------------------------------- 8. cuda


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", CORE_PATHS)
def test_cuda_matches_cpu(path):
    check_cuda_matches_cpu(path)


# ----------------------------------------------------------------------------- 9. paths


def test_check_path_names_the_valid_paths():
    check_path("auto")
    with pytest.raises(ValueError, match=r"path='gpu' is not one of \('auto', 'vmap', 'loop'"):
        check_path("gpu")


def test_a_registered_path_is_called_with_the_inner_loop(monkeypatch):
    """``register_path`` makes a speed path reachable by name (and, with ``choose``, by
    ``"auto"``); the path gets the inner loop, θ and the batch on θ's device."""
    monkeypatch.setattr(mamllib.maml, "SPEED_PATHS", dict(mamllib.maml.SPEED_PATHS))
    monkeypatch.setattr(mamllib.maml, "_choose", mamllib.maml._choose)
    calls = []

    def by_loop(inner, params, batch):
        calls.append(inner)
        return meta_loss(inner.model, params, batch, inner.loss_fn, inner_lr=inner.inner_lr,
                         steps=inner.steps, first_order=inner.first_order, path="loop")  # fmt: skip

    register_path("test-path", by_loop, choose=lambda model, device: "test-path")
    model, batch = tiny_mlp(seed=35), sinusoid_batch(3, seed=36)
    assert resolve_path("auto", model, "cpu") == "test-path"
    result = meta_loss(model, dict(model.named_parameters()), batch, F.mse_loss, inner_lr=ALPHA,
                       steps=2, path="auto")  # fmt: skip
    reference = meta_loss(model, dict(model.named_parameters()), batch, F.mse_loss,
                          inner_lr=ALPHA, steps=2, path="loop")  # fmt: skip
    assert len(calls) == 1 and isinstance(calls[0], InnerLoop) and calls[0].steps == 2
    torch.testing.assert_close(result.loss, reference.loss, rtol=0, atol=0)


# ----------------------------------------------------------------------------- 10. bad inputs


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


@pytest.mark.parametrize("path", CORE_PATHS)
@pytest.mark.parametrize("steps", [0, 1])
def test_meta_loss_targets_that_would_broadcast(path, steps):
    check_targets_that_would_broadcast(path, steps)


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


@pytest.mark.parametrize("path", CORE_PATHS)
def test_class_labels_for_image_inputs_are_fine(path):
    check_class_labels_for_image_inputs_are_fine(path)
