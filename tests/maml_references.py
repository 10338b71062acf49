"""MAML's numbers against independent references, shared by test_maml.py and test_fast.py.

Every reference here is computed without mamllib: the tiny models are evaluated by
hand from a flat parameter vector, the inner SGD steps are written out with
``torch.autograd.grad`` on a fresh leaf (no graph to the outside), and meta-gradients
are checked against central finite differences of that hand-written objective or
against the explicit Hessian formula of one-step MAML. ``check_*`` run one such check on
one meta-batch path: test_maml.py runs them on the core's paths (vmap, loop), test_fast.py
on the speed paths (hybrid, and hybrid split across two CPU threads), all in float64.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mamllib import MAML, MLP, MAMLConfig, SinusoidTasks, TaskBatch, meta_loss, meta_step

DTYPE = torch.float64
ALPHA = 0.05
EPS = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-8
PATH_RTOL, PATH_ATOL = 1e-10, 1e-12


def meta_loss_on(path: str, *args, **kwargs):
    """``meta_loss`` on ``path``, where "hybrid-threads" runs "hybrid" with two torch threads."""
    if path != "hybrid-threads":
        return meta_loss(*args, path=path, **kwargs)
    model, batch = args[0], args[2]
    callers = []
    hook = model.register_forward_pre_hook(
        lambda module, inputs: callers.append(threading.current_thread().name)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = meta_loss(*args, path="hybrid", **kwargs)
    finally:
        torch.set_num_threads(threads)
        hook.remove()
    # with two tasks or more the work really ran in the worker threads (the module copies
    # they call carry this hook along); with one task there is nothing to split
    in_workers = [name.startswith("mamllib-task") for name in callers]
    assert callers and all(in_workers) == (batch.num_tasks > 1), callers
    return result


# ----------------------------------------------------------------------------- models, data


def tiny_mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP((1, 4, 4, 1)).to(DTYPE)


def sinusoid_batch(
    num_tasks: int, k_support: int = 5, k_query: int = 7, seed: int = 0
) -> TaskBatch:
    b = SinusoidTasks().sample(
        num_tasks, k_support, k_query, generator=torch.Generator().manual_seed(seed)
    )
    return TaskBatch(
        b.x_support.to(DTYPE), b.y_support.to(DTYPE), b.x_query.to(DTYPE), b.y_query.to(DTYPE)
    )


class CountingNet(nn.Module):
    """A linear model that counts how often it is called."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


# ----------------------------------------------------------------------------- references


class Spec:
    """Names and shapes of a model's parameters: flat vector <-> dict of tensors."""

    def __init__(self, model: nn.Module):
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.sizes = [p.numel() for _, p in model.named_parameters()]

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        return {n: t.reshape(s) for n, s, t in zip(self.names, self.shapes, flat.split(self.sizes))}

    def flatten(self, tensors) -> Tensor:
        if isinstance(tensors, dict):
            tensors = [tensors[n] for n in self.names]
        return torch.cat([t.reshape(-1) for t in tensors])


def hand_mlp(p: dict[str, Tensor], x: Tensor) -> Tensor:
    """MLP((1, 4, 4, 1)) by hand: Linear, ReLU, Linear, ReLU, Linear."""
    h = torch.relu(x @ p["0.weight"].T + p["0.bias"])
    h = torch.relu(h @ p["2.weight"].T + p["2.bias"])
    return h @ p["4.weight"].T + p["4.bias"]


def mse(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target) ** 2).mean()


def hand_adapt(forward, spec: Spec, flat: Tensor, xs: Tensor, ys: Tensor, lr, steps: int):
    """``steps`` SGD steps on the support loss; returns θ' (detached) and the losses."""
    theta = flat.detach()
    losses = []
    for _ in range(steps):
        leaf = theta.clone().requires_grad_(True)
        loss = mse(forward(spec.unflatten(leaf), xs), ys)
        (g,) = torch.autograd.grad(loss, leaf)
        theta = theta - lr * g
        losses.append(loss.detach())
    return theta, losses


def hand_meta_objective(forward, spec, flat, batch, lr, steps) -> float:
    """1/T Σᵢ L_query(θ'ᵢ), evaluated without any graph."""
    total = 0.0
    for i in range(batch.num_tasks):
        theta, _ = hand_adapt(
            forward, spec, flat, batch.x_support[i], batch.y_support[i], lr, steps
        )
        with torch.no_grad():
            total += mse(forward(spec.unflatten(theta), batch.x_query[i]), batch.y_query[i]).item()
    return total / batch.num_tasks


def central_differences(f, x: Tensor, coords=None) -> Tensor:
    coords = range(x.numel()) if coords is None else coords
    out = []
    for j in coords:
        e = torch.zeros_like(x)
        e[j] = EPS
        out.append((f(x + e) - f(x - e)) / (2 * EPS))
    return torch.tensor(out, dtype=DTYPE)


def library_meta_grad(
    model, batch, *, inner_lr=ALPHA, steps=1, first_order=False, path="vmap", buffers=None
):
    params = dict(model.named_parameters())
    result = meta_loss_on(
        path, model, params, batch, F.mse_loss, inner_lr=inner_lr, steps=steps,
        first_order=first_order, buffers=buffers,
    )  # fmt: skip
    grads = torch.autograd.grad(result.loss, list(params.values()))
    return result, torch.cat([g.reshape(-1) for g in grads])


def query_grad_at(forward, spec, theta_prime: Tensor, xq: Tensor, yq: Tensor) -> Tensor:
    leaf = theta_prime.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(mse(forward(spec.unflatten(leaf), xq), yq), leaf)
    return g


def all_grads(loss: Tensor, inputs: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


def meta_sgd_lrs(model, seed=0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        name: (ALPHA * (0.5 + torch.rand(p.shape, generator=g, dtype=DTYPE))).requires_grad_(True)
        for name, p in model.named_parameters()
    }


# ----------------------------------------------------------------------------- checks of one path


def check_second_order_against_finite_differences(path: str, steps: int) -> None:
    model = tiny_mlp(seed=1)
    spec = Spec(model)
    batch = sinusoid_batch(3, seed=2)
    flat = spec.flatten(dict(model.named_parameters())).detach()

    result, grad = library_meta_grad(model, batch, steps=steps, path=path)
    reference = central_differences(
        lambda v: hand_meta_objective(hand_mlp, spec, v, batch, ALPHA, steps), flat
    )

    assert result.loss.item() == pytest.approx(
        hand_meta_objective(hand_mlp, spec, flat, batch, ALPHA, steps), rel=1e-12
    )
    assert grad.abs().max() > 1e-3  # a non-trivial gradient
    torch.testing.assert_close(grad, reference, rtol=FD_RTOL, atol=FD_ATOL)


def check_first_and_second_order_against_explicit_hessian(path: str, num_tasks: int) -> None:
    model = tiny_mlp(seed=3)
    spec = Spec(model)
    batch = sinusoid_batch(num_tasks, seed=4)
    flat = spec.flatten(dict(model.named_parameters())).detach()

    g_fo_ref = torch.zeros_like(flat)
    g_so_ref = torch.zeros_like(flat)
    for i in range(num_tasks):
        xs, ys, xq, yq = batch.x_support[i], batch.y_support[i], batch.x_query[i], batch.y_query[i]
        theta_prime, _ = hand_adapt(hand_mlp, spec, flat, xs, ys, ALPHA, 1)
        g_q = query_grad_at(hand_mlp, spec, theta_prime, xq, yq)
        hessian = torch.autograd.functional.hessian(
            lambda v, xs=xs, ys=ys: mse(hand_mlp(spec.unflatten(v), xs), ys), flat
        )
        assert hessian.shape == (flat.numel(), flat.numel())
        g_fo_ref += g_q / num_tasks
        g_so_ref += (g_q - ALPHA * hessian @ g_q) / num_tasks

    _, g_fo = library_meta_grad(model, batch, steps=1, first_order=True, path=path)
    _, g_so = library_meta_grad(model, batch, steps=1, first_order=False, path=path)

    torch.testing.assert_close(g_fo, g_fo_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_so, g_so_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_so - g_fo, g_so_ref - g_fo_ref, rtol=1e-8, atol=1e-12)
    # The Hessian term is really there: first_order must make a visible difference.
    assert (g_so - g_fo).norm() > 1e-3 * g_so.norm()


def check_paths_equal_loop(paths: list[str], steps: int, first_order: bool, meta_sgd: bool) -> None:
    """Loss, per-task losses and the gradients w.r.t. θ (and α) of ``paths`` equal ``"loop"``'s."""
    model = tiny_mlp(seed=5)
    batch = sinusoid_batch(5, seed=6)  # odd: the two threads get unequal shares
    inner_lr = meta_sgd_lrs(model) if meta_sgd else ALPHA
    params = dict(model.named_parameters())
    lrs = list(inner_lr.values()) if isinstance(inner_lr, dict) else []
    out = {}
    for path in ["loop", *paths]:
        result = meta_loss_on(
            path, model, params, batch, F.mse_loss, inner_lr=inner_lr, steps=steps,
            first_order=first_order,
        )  # fmt: skip
        out[path] = (result, all_grads(result.loss, list(params.values()) + lrs))
    rl, gl = out["loop"]
    for path in out:
        rv, gv = out[path]
        torch.testing.assert_close(rv.loss, rl.loss, rtol=PATH_RTOL, atol=PATH_ATOL)
        torch.testing.assert_close(rv.query_losses, rl.query_losses, rtol=PATH_RTOL, atol=PATH_ATOL)
        torch.testing.assert_close(
            rv.support_losses, rl.support_losses, rtol=PATH_RTOL, atol=PATH_ATOL
        )
        assert rv.query_losses.shape == (5,)
        assert rv.support_losses.shape == (5, steps)
        for a, b in zip(gv, gl):
            torch.testing.assert_close(a, b, rtol=PATH_RTOL, atol=PATH_ATOL)
        assert any(g.abs().max() > 1e-3 for g in gv)
        if meta_sgd and steps > 0:  # α really receives a meta-gradient
            assert all(g.abs().max() > 0 for g in gv[len(gv) // 2 :])


def check_meta_sgd_lr_gradient_against_finite_differences(path: str) -> None:
    model = tiny_mlp(seed=7)
    spec = Spec(model)
    batch = sinusoid_batch(3, seed=8)
    steps = 2
    lrs = meta_sgd_lrs(model, seed=9)
    flat_theta = spec.flatten(dict(model.named_parameters())).detach()
    flat_lr = spec.flatten(lrs).detach()

    params = dict(model.named_parameters())
    result = meta_loss_on(path, model, params, batch, F.mse_loss, inner_lr=lrs, steps=steps)
    grads = torch.autograd.grad(result.loss, list(params.values()) + list(lrs.values()))
    n = len(params)
    g_theta, g_lr = spec.flatten(list(grads[:n])), spec.flatten(list(grads[n:]))

    # a few entries of α in every layer, and all of θ
    coords = [0, 3, 5, 9, 20, 28, 32]
    ref_lr = central_differences(
        lambda a: hand_meta_objective(hand_mlp, spec, flat_theta, batch, a, steps), flat_lr, coords
    )
    ref_theta = central_differences(
        lambda v: hand_meta_objective(hand_mlp, spec, v, batch, flat_lr, steps), flat_theta
    )
    assert ref_lr.abs().max() > 1e-3
    torch.testing.assert_close(g_lr[coords], ref_lr, rtol=FD_RTOL, atol=FD_ATOL)
    torch.testing.assert_close(g_theta, ref_theta, rtol=FD_RTOL, atol=FD_ATOL)


def check_zero_steps_is_the_plain_multitask_gradient(path: str, first_order: bool) -> None:
    model = tiny_mlp(seed=10)
    batch = sinusoid_batch(5, seed=11)
    params = list(model.parameters())

    plain = torch.stack(
        [F.mse_loss(model(batch.x_query[i]), batch.y_query[i]) for i in range(batch.num_tasks)]
    )
    plain_grads = torch.autograd.grad(plain.mean(), params)

    result, grad = library_meta_grad(model, batch, steps=0, first_order=first_order, path=path)
    torch.testing.assert_close(result.loss, plain.mean().detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(result.query_losses, plain.detach(), rtol=1e-12, atol=0)
    assert result.support_losses.shape == (5, 0)
    torch.testing.assert_close(
        grad, torch.cat([g.reshape(-1) for g in plain_grads]), rtol=1e-12, atol=1e-15
    )


def check_meta_sgd_learns_inner_lrs(path: str) -> None:
    torch.manual_seed(20)
    config = MAMLConfig(inner_lr=0.01, outer_lr=1e-3, learn_inner_lr=True, path=path)
    maml = MAML(MLP((1, 8, 1)), F.mse_loss, config)
    names = [n for n, _ in maml.model.named_parameters()]
    assert len(maml.inner_lrs) == len(names)
    lrs_before = {k: v.detach().clone() for k, v in maml.inner_lrs.items()}
    for v in lrs_before.values():
        assert torch.all(v == 0.01)
    # the optimiser updates θ and α
    optimizer = maml.make_optimizer()
    n_opt = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n_opt == 2 * len(names)

    batch = SinusoidTasks().sample(5, 5, 5, generator=torch.Generator().manual_seed(21))
    meta_step(maml, optimizer, batch)
    for key, lr in maml.inner_lrs.items():
        assert lr.grad is not None, key
        assert lr.grad.abs().max() > 0, key
        assert not torch.equal(lr.detach(), lrs_before[key]), key
        # Adam's first step: Δα = −β g / (|g| + ε)
        expected = lrs_before[key] - 1e-3 * lr.grad / (lr.grad.abs() + 1e-8)
        torch.testing.assert_close(lr.detach(), expected, rtol=1e-5, atol=1e-7)


def check_cuda_matches_cpu(path: str) -> None:
    model = tiny_mlp(seed=25)
    batch = sinusoid_batch(4, seed=26)
    cpu_result, cpu_grad = library_meta_grad(model, batch, steps=2, path=path)
    gpu_model = copy.deepcopy(model).cuda()
    # the CPU batch moves to θ's device inside meta_loss
    gpu_result, gpu_grad = library_meta_grad(gpu_model, batch, steps=2, path=path)
    assert gpu_result.loss.device.type == "cuda"
    torch.testing.assert_close(gpu_result.loss.cpu(), cpu_result.loss, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        gpu_result.support_losses.cpu(), cpu_result.support_losses, rtol=1e-9, atol=1e-12
    )
    torch.testing.assert_close(gpu_grad.cpu(), cpu_grad, rtol=1e-9, atol=1e-12)


def check_targets_that_would_broadcast(path: str, steps: int) -> None:
    """Every path, also without inner steps (then only the query loss sees the targets)."""
    torch.manual_seed(0)
    net = CountingNet()
    batch = SinusoidTasks().sample(2, 3, 4, generator=torch.Generator().manual_seed(0))
    flat = TaskBatch(batch.x_support, batch.y_support.squeeze(-1),
                     batch.x_query, batch.y_query.squeeze(-1))  # fmt: skip
    shape = (3 if steps else 4,)
    with pytest.raises(ValueError, match=rf"y_query\) of each task have shape \[{shape[0]}\]"):
        meta_loss_on(path, net, dict(net.named_parameters()), flat, F.mse_loss, inner_lr=0.01,
                     steps=steps)  # fmt: skip


def check_class_labels_for_image_inputs_are_fine(path: str) -> None:
    """int64 labels [T, N·K] for images [T, N·K, 1, 28, 28]: no shape complaint."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))
    labels = torch.arange(5).repeat_interleave(2).expand(3, -1)
    images = torch.rand(3, 10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    tasks = TaskBatch(images, labels, images, labels)
    result = meta_loss(model, dict(model.named_parameters()), tasks, F.cross_entropy,
                       inner_lr=0.1, steps=1, path=path)  # fmt: skip
    assert result.query_losses.shape == (3,) and torch.isfinite(result.loss)
