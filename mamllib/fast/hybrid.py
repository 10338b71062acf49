"""The CPU path for conv nets: inner loop vmapped over tasks, query losses task by task.

Small support sets batch well under ``vmap``; large query sets run faster as ordinary
convolutions, which CPU kernels do far better than vmap's grouped ones (a convolution
with per-task weights becomes a grouped convolution under ``vmap``). On a CPU with
several threads the meta-batch is also split across threads, one share each.

The numbers are ``mamllib.maml``'s: tests/test_fast.py checks them against its
``"vmap"`` and ``"loop"`` paths, in float64.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor, nn
from torch.func import vmap

from mamllib.batch import TaskBatch
from mamllib.maml import InnerLoop, MetaLossResult, Params


def choose_path(model: nn.Module, device: torch.device | str) -> str:
    """The faster meta-batch implementation for this model on this device (``"auto"``).

    Measured with ``python -m mamllib.tools.bench`` (README, "Speed"): on CUDA and for MLPs
    ``vmap`` is fastest (one kernel per layer for the whole meta-batch instead of one
    per task). Convolutional nets on the CPU are the exception: under ``vmap`` a
    convolution with per-task weights becomes a grouped convolution, which the CPU
    kernels run 2-3x slower than the same work as ordinary convolutions, so there
    ``"hybrid"`` wins (vmapped inner loop, per-task query convolutions, tasks split
    across the CPU threads).

    Returns:
        ``"hybrid"`` or ``"vmap"``.
    """
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    return "hybrid" if torch.device(device).type == "cpu" and has_conv else "vmap"


def hybrid_meta_loss(inner: InnerLoop, params: Params, batch: TaskBatch) -> MetaLossResult:
    """``meta_loss`` on the ``"hybrid"`` path (registered in ``mamllib.maml``).

    Without a meta-gradient to compute (grad mode off, or nothing requires a gradient) it
    only adapts and evaluates. Otherwise the meta-gradient is computed right here, task by
    task and on every CPU thread, and ``.loss`` carries it: ``.loss.backward()`` works as
    usual, but ``.loss`` can be differentiated once, not twice.

    Args:
        inner: the inner loop (model, loss, α, steps, order, buffers).
        params: θ, name -> tensor.
        batch: the meta-batch, on θ's device.

    Returns:
        ``MetaLossResult`` with the same numbers as ``meta_loss(path="loop")``.
    """
    data = (batch.x_support, batch.y_support, batch.x_query, batch.y_query)
    inputs = _differentiable_inputs(params, inner.inner_lr)
    if not inputs:
        adapted, support = _adapt_all(inner, params, data)
        query = torch.stack([inner.loss({k: v[i] for k, v in adapted.items()}, xq, yq)
                             for i, (xq, yq) in enumerate(zip(data[2], data[3]))])  # fmt: skip
        return MetaLossResult(
            loss=query.mean(), query_losses=query.detach(), support_losses=support
        )
    device = next(iter(params.values())).device
    workers = min(torch.get_num_threads(), batch.num_tasks) if device.type == "cpu" else 1
    query, support, grads = _threaded(inner, params, data, inputs, workers)
    loss = _PrecomputedGradient.apply(query.mean(), grads, *inputs)
    return MetaLossResult(loss=loss, query_losses=query, support_losses=support)


def _adapt_all(inner: InnerLoop, params: Params, data: tuple[Tensor, ...]) -> tuple[Params, Tensor]:
    """Every task's θ'ᵢ (``[T, ...]`` per name) and support losses ``[T, steps]``, vmapped."""
    return vmap(lambda xs, ys: inner.adapt(params, xs, ys), randomness="different")(*data[:2])


def _gradients(
    inner: InnerLoop, params: Params, data: tuple[Tensor, ...], inputs: list[Tensor], scale: float
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """Query losses ``[T]``, support losses ``[T, steps]`` and ``scale`` × the gradient of the
    query losses' sum w.r.t. ``inputs``.

    The chain rule in two parts, so that only one task's query graph is alive at a time:
    first each task's query gradient g'ᵢ = ∂L_query/∂θ'ᵢ (its graph freed right away),
    then one backward pass through the vmapped inner loop with the g'ᵢ as the incoming
    gradients. Keeping all the query graphs until the end instead took ~1.3 GB for the
    paper's 5-way 1-shot meta-batch and its page faults cost time.
    """
    adapted, support = _adapt_all(inner, params, data)
    names = list(adapted)
    query, query_grads = [], []
    for i, (xq, yq) in enumerate(zip(data[2], data[3])):
        theta_i = {k: adapted[k][i].detach().requires_grad_() for k in names}
        loss = inner.loss(theta_i, xq, yq)
        query_grads.append(torch.autograd.grad(loss * scale, [theta_i[k] for k in names]))
        query.append(loss.detach())
    incoming = [torch.stack(g) for g in zip(*query_grads)]
    grads = torch.autograd.grad([adapted[k] for k in names], inputs, incoming, allow_unused=True)
    grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs))
    return torch.stack(query), support, grads


def _differentiable_inputs(params: Params, inner_lr: object) -> list[Tensor]:
    """What the meta-gradient reaches when grad mode is on: θ, and α for Meta-SGD."""
    if not torch.is_grad_enabled():
        return []
    lrs = list(inner_lr.values()) if isinstance(inner_lr, Mapping) else []
    return [t for t in (*params.values(), *lrs) if t.requires_grad]


class _PrecomputedGradient(torch.autograd.Function):
    """A loss whose gradient w.r.t. ``inputs`` was already computed (by worker threads);
    ``backward`` scales it by the incoming gradient, so ``loss.backward()`` works as usual.
    """

    @staticmethod
    def forward(ctx, loss: Tensor, grads: tuple[Tensor, ...], *inputs: Tensor) -> Tensor:
        ctx.grads = grads
        return loss.clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return None, None, *(grad_output * g for g in ctx.grads)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="mamllib-task")
    return _POOLS[workers]


def _threaded(
    inner: InnerLoop, params: Params, data: tuple[Tensor, ...], inputs: list[Tensor], workers: int
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """``_gradients`` of the whole meta-batch, on ``workers`` shares of it at once.

    With several CPU threads each share runs in its own thread, single-threaded: torch
    releases the GIL inside its kernels, and one share per thread keeps every core busy
    with whole convolutions instead of splitting small ones between them. Each thread
    calls its own copy of the module, because ``functional_call`` swaps the parameters
    of the module it is given and two threads must not share one.
    """
    num_tasks = len(data[0])
    if workers == 1:
        return _gradients(inner, params, data, inputs, 1.0 / num_tasks)

    def run(share: Tensor, own: InnerLoop):
        torch.set_num_threads(1)  # this thread's intra-op pool only (OpenMP is per thread)
        with torch.enable_grad():
            return _gradients(own, params, tuple(t[share] for t in data), inputs, 1.0 / num_tasks)

    shares = torch.arange(num_tasks).tensor_split(workers)
    copies = [dataclasses.replace(inner, model=copy.deepcopy(inner.model)) for _ in shares]
    results = [f.result() for f in [_pool(workers).submit(run, *a) for a in zip(shares, copies)]]
    query = torch.cat([r[0] for r in results])
    support = torch.cat([r[1] for r in results])
    grads = tuple(torch.stack(gs).sum(0) for gs in zip(*(r[2] for r in results)))
    return query, support, grads
