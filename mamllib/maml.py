"""MAML, the algorithm (Finn, Abbeel & Levine, ICML 2017, Algorithm 2).

The model is any ``nn.Module``; MAML only needs it as a function of its parameters.
Parameters are a dict θ (name -> tensor) and the model is called with
``torch.func.functional_call(model, (θ, buffers), x)``.

One task 𝒯ᵢ:  θ'ᵢ = θ − α ∇_θ L_support(θ)           (``adapt``, repeated ``steps`` times)
Meta-batch:   L(θ) = 1/T Σᵢ L_query(θ'ᵢ)              (``meta_loss``)
Meta-update:  θ ← Adam(θ, ∇_θ L(θ), β)                (``meta_step``)

Second-order MAML differentiates through the inner updates, which brings the Hessian
term (I − α∇²L_support) into ∇_θ L. First-order MAML treats the inner gradients as
constants: the meta-gradient is then the query gradient evaluated at θ'.

Three implementations of the meta-batch compute the same numbers:

- ``"vmap"``: one task's adaptation is a pure function (``torch.func.grad`` for the
  inner gradient), and ``torch.func.vmap`` runs the whole meta-batch at once.
- ``"loop"``: a Python loop over tasks with ``torch.autograd.grad(create_graph=True)``,
  which is what most MAML libraries do. It is the reference the tests compare against.
- ``"hybrid"``: the inner loop vmapped over tasks (small support sets batch well), the
  query loss task by task (large query sets run as ordinary convolutions, which CPU
  kernels do far better than vmap's grouped ones); on a CPU with several threads the
  meta-batch is also split across threads, one share each (see ``choose_path``).

References:
    Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML 2017. https://arxiv.org/abs/1703.03400
    Li, Zhou, Chen, Li. Meta-SGD: Learning to Learn Quickly for Few-Shot Learning. 2017.
    https://arxiv.org/abs/1707.09835
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from mamllib.checks import check_count, check_int, check_positive_float, check_prediction_shape
from mamllib.tasks.base import TaskBatch

Params = dict[str, Tensor]
InnerLR = float | Mapping[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]

PATHS = ("auto", "vmap", "loop", "hybrid")


@dataclass(frozen=True)
class MAMLConfig:
    """Hyperparameters of the MAML algorithm itself (the domain supplies model and data).

    Attributes:
        inner_lr: α, the step size of the inner SGD updates on the support set.
        inner_steps: number of inner updates during meta-training.
        outer_lr: β, Adam's learning rate for the meta-update.
        first_order: drop the Hessian term (inner gradients treated as constants).
        learn_inner_lr: Meta-SGD: α becomes a learnable tensor per parameter,
            initialised to ``inner_lr`` and meta-learned with θ.
        path: ``"vmap"``, ``"loop"``, ``"hybrid"`` or ``"auto"`` (``choose_path``
            picks per model and device).
    """

    inner_lr: float = 0.01
    inner_steps: int = 1
    outer_lr: float = 1e-3
    first_order: bool = False
    learn_inner_lr: bool = False
    path: str = "auto"

    def __post_init__(self) -> None:
        check_inner_lr(self.inner_lr)
        check_steps(self.inner_steps)
        check_positive_float("outer_lr", self.outer_lr)
        if not isinstance(self.first_order, bool):
            raise TypeError(f"first_order must be a bool, got {self.first_order!r}")
        if not isinstance(self.learn_inner_lr, bool):
            raise TypeError(f"learn_inner_lr must be a bool, got {self.learn_inner_lr!r}")
        if self.path not in PATHS:
            raise ValueError(f"path={self.path!r} is not one of {PATHS}")


# ----------------------------------------------------------------------------- checks


def check_inner_lr(inner_lr: object) -> None:
    """α must be a positive finite float, or a mapping of finite tensors (Meta-SGD)."""
    if isinstance(inner_lr, Mapping):
        for name, value in inner_lr.items():
            if not isinstance(value, Tensor):
                raise TypeError(f"inner_lr[{name!r}] must be a tensor, got {type(value).__name__}")
            if not torch.isfinite(value.detach()).all():
                raise ValueError(f"inner_lr[{name!r}] contains NaN or inf")
        return
    check_positive_float("inner_lr (α)", inner_lr)


def check_steps(steps: object, name: str = "inner_steps") -> None:
    check_int(name, steps, 0)


# Elementwise losses that broadcast targets of another shape than the prediction (torch
# only warns): their targets are checked against the prediction's shape.
ELEMENTWISE_LOSSES = (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss)
ELEMENTWISE_LOSS_MODULES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def shape_checked(loss_fn: LossFn, targets: str) -> LossFn:
    """``loss_fn``, raising when an elementwise loss gets targets shaped unlike the prediction.

    The check compares shapes only, inside the call that computes the loss anyway (under
    ``vmap`` the per-task shapes), so it costs no extra forward pass.
    """
    if not (loss_fn in ELEMENTWISE_LOSSES or isinstance(loss_fn, ELEMENTWISE_LOSS_MODULES)):
        return loss_fn

    def checked(prediction: Tensor, target: Tensor) -> Tensor:
        check_prediction_shape(prediction, target, targets)
        return loss_fn(prediction, target)

    return checked


def _check_support(x_support: object, y_support: object) -> None:
    """One task's support set: tensors, at least one example, as many inputs as targets."""
    for name, t in (("x_support", x_support), ("y_support", y_support)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
        check_count(name, t.shape)
    if x_support.shape[0] != y_support.shape[0]:
        raise ValueError(
            f"x_support and y_support disagree on the number of examples: "
            f"{x_support.shape[0]} inputs {list(x_support.shape)} vs {y_support.shape[0]} "
            f"targets {list(y_support.shape)}"
        )


def _check_inner_lr_keys(inner_lr: InnerLR, params: Mapping[str, Tensor]) -> None:
    if isinstance(inner_lr, Mapping) and set(inner_lr) != set(params):
        missing = sorted(set(params) - set(inner_lr))
        extra = sorted(set(inner_lr) - set(params))
        raise ValueError(
            f"inner_lr tensors must match the parameters: missing {missing}, unexpected {extra}"
        )


# ----------------------------------------------------------------------------- helpers


def named_params(model: nn.Module) -> Params:
    """θ as a dict of the model's parameters (the live tensors: gradients reach them)."""
    return dict(model.named_parameters())


def named_buffers(model: nn.Module) -> Params:
    return dict(model.named_buffers())


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def choose_path(model: nn.Module, device: torch.device | str) -> str:
    """The faster meta-batch implementation for this model on this device.

    Measured with ``python -m mamllib.bench`` (README, "Speed"): on CUDA and for MLPs
    ``vmap`` is fastest (one kernel per layer for the whole meta-batch instead of one
    per task). Convolutional nets on the CPU are the exception: under ``vmap`` a
    convolution with per-task weights becomes a grouped convolution, which the CPU
    kernels run 2-3x slower than the same work as ordinary convolutions, so there
    ``"hybrid"`` wins (vmapped inner loop, per-task query convolutions, tasks split
    across the CPU threads).
    """
    if torch.device(device).type == "cpu" and has_conv(model):
        return "hybrid"
    return "vmap"


def _detached(params: Mapping[str, Tensor]) -> Params:
    return {k: v.detach() for k, v in params.items()}


def _lr(inner_lr: InnerLR, name: str) -> Tensor | float:
    return inner_lr[name] if isinstance(inner_lr, Mapping) else inner_lr


def _sgd(params: Params, grads: Mapping[str, Tensor], inner_lr: InnerLR) -> Params:
    return {k: p - _lr(inner_lr, k) * grads[k] for k, p in params.items()}


def predict(
    model: nn.Module,
    params: Mapping[str, Tensor],
    x: Tensor,
    buffers: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """f_θ(x): the model called with the parameters θ instead of its own."""
    return functional_call(model, (dict(params), dict(buffers or {})), (x,))


# ----------------------------------------------------------------------------- inner loop


def adapt(
    model: nn.Module,
    params: Mapping[str, Tensor],
    x_support: Tensor,
    y_support: Tensor,
    loss_fn: LossFn,
    *,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool = False,
    buffers: Mapping[str, Tensor] | None = None,
) -> tuple[Params, Tensor]:
    """Adapt θ to one task: ``steps`` SGD updates on its support set.

    A pure function of (θ, support), written with ``torch.func.grad`` so that it can
    run under ``vmap`` (one call per meta-batch) and be differentiated by the outer
    autograd (second-order MAML).

    Args:
        model: any ``nn.Module``; only its structure is used, θ comes from ``params``.
        params: θ, name -> tensor.
        x_support: support inputs ``[N·K, ...]`` of one task.
        y_support: support targets ``[N·K, ...]``; for an elementwise loss
            (``ELEMENTWISE_LOSSES``, e.g. ``F.mse_loss``) shaped as the model's prediction.
        loss_fn: ``loss_fn(prediction, target) -> scalar``.
        inner_lr: α, a float or (Meta-SGD) a dict of tensors shaped like ``params``.
        steps: number of inner updates (0 returns θ unchanged).
        first_order: treat the inner gradients as constants (first-order MAML).
        buffers: the model's buffers, if any.

    Returns:
        θ' after ``steps`` updates, and the support losses ``[steps]`` before each
        update (L_support(θ₀), ..., L_support(θ_{steps−1})).

    Raises:
        ValueError: no support examples, as many inputs as targets, or (elementwise
            losses) targets the loss would broadcast against the prediction.
    """
    check_inner_lr(inner_lr)
    check_steps(steps)
    _check_inner_lr_keys(inner_lr, params)
    _check_support(x_support, y_support)
    loss_fn = shape_checked(loss_fn, "y_support")
    return _adapt_func(
        model, dict(params), x_support, y_support, loss_fn, inner_lr, steps, first_order,
        dict(buffers or {}),
    )  # fmt: skip


def _adapt_func(
    model: nn.Module,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
) -> tuple[Params, Tensor]:
    """``adapt`` without the argument checks: the hot path under ``vmap``."""

    def support_loss(p: Params) -> Tensor:
        return loss_fn(functional_call(model, (p, buffers), (x_support,)), y_support)

    grad_fn = grad_and_value(support_loss)
    theta = params
    losses = []
    for _ in range(steps):
        grads, loss = grad_fn(_detached(theta) if first_order else theta)
        theta = _sgd(theta, grads, inner_lr)
        losses.append(loss.detach())
    support_losses = torch.stack(losses) if losses else x_support.new_zeros(0)
    return theta, support_losses


def _adapt_autograd(
    model: nn.Module,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
) -> tuple[Params, Tensor]:
    """The same inner loop written with ``torch.autograd.grad`` (the per-task path)."""
    theta = dict(params)
    names = list(theta)
    losses = []
    differentiate = torch.is_grad_enabled()
    with torch.enable_grad():
        for _ in range(steps):
            through = theta
            if first_order or not differentiate:
                through = {k: v.detach().requires_grad_() for k, v in theta.items()}
            loss = loss_fn(functional_call(model, (through, buffers), (x_support,)), y_support)
            grads = torch.autograd.grad(
                loss,
                [through[k] for k in names],
                create_graph=differentiate and not first_order,
            )
            theta = _sgd(theta, dict(zip(names, grads)), inner_lr)
            if not differentiate:
                theta = _detached(theta)
            losses.append(loss.detach())
    support_losses = torch.stack(losses) if losses else x_support.new_zeros(0)
    return theta, support_losses


# ----------------------------------------------------------------------------- outer loop


@dataclass
class MetaLossResult:
    """What one evaluation of the meta-objective produced.

    Attributes:
        loss: the meta-objective, 1/T Σᵢ L_query(θ'ᵢ) (differentiable w.r.t. θ).
        query_losses: ``[T]`` post-adaptation query loss per task (detached).
        support_losses: ``[T, steps]`` support loss before each inner step (detached).
    """

    loss: Tensor
    query_losses: Tensor
    support_losses: Tensor


def meta_loss(
    model: nn.Module,
    params: Mapping[str, Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    *,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool = False,
    path: str = "auto",
    buffers: Mapping[str, Tensor] | None = None,
) -> MetaLossResult:
    """The MAML objective over a meta-batch: mean query loss after adapting to each task.

    Args:
        model, params, loss_fn, inner_lr, steps, first_order, buffers: as in ``adapt``.
        batch: ``TaskBatch`` with a leading task dimension T.
        path: ``"vmap"`` (all tasks at once), ``"loop"`` (one task at a time with
            ``torch.autograd.grad``), ``"hybrid"`` (inner loop vmapped, query loss per
            task, tasks split across CPU threads) or ``"auto"`` (``choose_path``).

    Returns:
        ``MetaLossResult``; call ``.loss.backward()`` for the meta-gradient. With
        ``"hybrid"`` (and grad mode on) the meta-gradient is computed right here, task
        by task, and ``.loss`` carries it: it can be differentiated once, not twice.
    """
    check_inner_lr(inner_lr)
    check_steps(steps)
    _check_inner_lr_keys(inner_lr, params)
    if path not in PATHS:
        raise ValueError(f"path={path!r} is not one of {PATHS}")
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    loss_fn = shape_checked(loss_fn, "(y_support, y_query) of each task")
    params = dict(params)
    buffers = dict(buffers or {})
    device = next(iter(params.values())).device
    batch = batch.to(device)
    if path == "auto":
        path = choose_path(model, device)

    def task_objective(p, lr, xs, ys, xq, yq):
        adapted, support_losses = _adapt_func(
            model, p, xs, ys, loss_fn, lr, steps, first_order, buffers
        )
        return loss_fn(functional_call(model, (adapted, buffers), (xq,)), yq), support_losses

    data = (batch.x_support, batch.y_support, batch.x_query, batch.y_query)
    if path == "vmap":
        query, support = vmap(
            task_objective, in_dims=(None, None, 0, 0, 0, 0), randomness="different"
        )(params, inner_lr, *data)
    elif path == "hybrid":
        inputs = _differentiable_inputs(params, inner_lr)
        if not inputs:
            query, support = _hybrid(
                model, params, data, loss_fn, inner_lr, steps, first_order, buffers
            )
        else:
            workers = min(torch.get_num_threads(), batch.num_tasks) if device.type == "cpu" else 1
            query, support, grads = _hybrid_threaded(
                model, params, data, loss_fn, inner_lr, steps, first_order, buffers, inputs,
                workers,
            )  # fmt: skip
            loss = _PrecomputedGradient.apply(query.mean(), grads, *inputs)
            return MetaLossResult(loss=loss, query_losses=query, support_losses=support)
    else:
        query_list, support_list = [], []
        for xs, ys, xq, yq in zip(*data):
            adapted, sl = _adapt_autograd(
                model, params, xs, ys, loss_fn, inner_lr, steps, first_order, buffers
            )
            query_list.append(loss_fn(functional_call(model, (adapted, buffers), (xq,)), yq))
            support_list.append(sl)
        query, support = torch.stack(query_list), torch.stack(support_list)
    return MetaLossResult(loss=query.mean(), query_losses=query.detach(), support_losses=support)


def _adapt_all(
    model: nn.Module,
    params: Params,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
) -> tuple[Params, Tensor]:
    """Every task's θ'ᵢ (``[T, ...]`` per name) and support losses, the inner loop vmapped."""

    def adapt_one(xs, ys):
        return _adapt_func(model, params, xs, ys, loss_fn, inner_lr, steps, first_order, buffers)

    return vmap(adapt_one, randomness="different")(data[0], data[1])


def _hybrid(
    model: nn.Module,
    params: Params,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
) -> tuple[Tensor, Tensor]:
    """Query losses ``[T]`` and support losses ``[T, steps]``: the inner loop vmapped over
    the tasks, then each task's query loss with its own θ'ᵢ."""
    adapted, support = _adapt_all(
        model, params, data, loss_fn, inner_lr, steps, first_order, buffers
    )
    query = [
        loss_fn(functional_call(model, ({k: v[i] for k, v in adapted.items()}, buffers), (xq,)), yq)
        for i, (xq, yq) in enumerate(zip(data[2], data[3]))
    ]
    return torch.stack(query), support


def _hybrid_gradients(
    model: nn.Module,
    params: Params,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
    inputs: list[Tensor],
    scale: float,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """``_hybrid``'s losses and ``scale`` × the gradient of their sum w.r.t. ``inputs``.

    The chain rule in two parts, so that only one task's query graph is alive at a time:
    first each task's query gradient g'ᵢ = ∂L_query/∂θ'ᵢ (its graph freed right away),
    then one backward pass through the vmapped inner loop with the g'ᵢ as the incoming
    gradients. Keeping all the query graphs until the end instead took ~1.3 GB for the
    paper's 5-way 1-shot meta-batch and its page faults cost time.
    """
    adapted, support = _adapt_all(
        model, params, data, loss_fn, inner_lr, steps, first_order, buffers
    )
    names = list(adapted)
    query, query_grads = [], []
    for i, (xq, yq) in enumerate(zip(data[2], data[3])):
        theta_i = {k: adapted[k][i].detach().requires_grad_() for k in names}
        loss = loss_fn(functional_call(model, (theta_i, buffers), (xq,)), yq)
        query_grads.append(torch.autograd.grad(loss * scale, [theta_i[k] for k in names]))
        query.append(loss.detach())
    outputs = [adapted[k] for k in names]
    incoming = [torch.stack(g) for g in zip(*query_grads)]
    grads = torch.autograd.grad(outputs, inputs, incoming, allow_unused=True)
    grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs))
    return torch.stack(query), support, grads


def _differentiable_inputs(params: Params, inner_lr: InnerLR) -> list[Tensor]:
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


def _hybrid_threaded(
    model: nn.Module,
    params: Params,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    loss_fn: LossFn,
    inner_lr: InnerLR,
    steps: int,
    first_order: bool,
    buffers: Params,
    inputs: list[Tensor],
    workers: int,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """``_hybrid_gradients`` of the whole meta-batch, on ``workers`` shares of it at once.

    With several CPU threads each share runs in its own thread, single-threaded: torch
    releases the GIL inside its kernels, and one share per thread keeps every core busy
    with whole convolutions instead of splitting small ones between them. Each thread
    calls its own copy of the module, because ``functional_call`` swaps the parameters
    of the module it is given and two threads must not share one.
    """
    num_tasks = len(data[0])
    if workers == 1:
        return _hybrid_gradients(
            model, params, data, loss_fn, inner_lr, steps, first_order, buffers, inputs,
            1.0 / num_tasks,
        )  # fmt: skip

    def run(share: Tensor, module: nn.Module):
        torch.set_num_threads(1)  # this thread's intra-op pool only (OpenMP is per thread)
        with torch.enable_grad():
            return _hybrid_gradients(
                module, params, tuple(t[share] for t in data), loss_fn, inner_lr, steps,
                first_order, buffers, inputs, 1.0 / num_tasks,
            )  # fmt: skip

    shares = torch.arange(num_tasks).tensor_split(workers)
    futures = [_pool(workers).submit(run, share, copy.deepcopy(model)) for share in shares]
    results = [f.result() for f in futures]
    query = torch.cat([r[0] for r in results])
    support = torch.cat([r[1] for r in results])
    grads = tuple(torch.stack(gs).sum(0) for gs in zip(*(r[2] for r in results)))
    return query, support, grads


# ----------------------------------------------------------------------------- the learner


def _lr_key(name: str) -> str:
    return name.replace(".", "__")


class MAML(nn.Module):
    """A model plus what MAML learns besides its weights (Meta-SGD's α, if asked for).

    ``MAML(model, loss_fn, config)`` holds θ (the model's parameters), the optional
    learnable α, and knows how to adapt and compute the meta-objective. Its
    ``parameters()`` are exactly what the meta-optimiser updates.

    Example:
        >>> maml = MAML(MLP(), F.mse_loss, MAMLConfig(inner_lr=0.01))
        >>> opt = maml.make_optimizer()
        >>> result = meta_step(maml, opt, tasks.sample(25, 10, 10))
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, config: MAMLConfig = MAMLConfig()):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
        if not isinstance(config, MAMLConfig):
            raise TypeError(f"config must be a MAMLConfig, got {type(config).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.config = config
        self.inner_lrs = nn.ParameterDict(
            {
                _lr_key(name): nn.Parameter(torch.full_like(p.detach(), config.inner_lr))
                for name, p in model.named_parameters()
            }
            if config.learn_inner_lr
            else {}
        )

    @property
    def params(self) -> Params:
        """θ: the model's parameters by name."""
        return named_params(self.model)

    @property
    def buffer_dict(self) -> Params:
        """The model's buffers by name (passed along with θ to ``functional_call``)."""
        return named_buffers(self.model)

    @property
    def inner_lr(self) -> InnerLR:
        """α: the configured float, or the learned per-parameter tensors (Meta-SGD)."""
        if self.config.learn_inner_lr:
            return {name: self.inner_lrs[_lr_key(name)] for name in self.params}
        return self.config.inner_lr

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def make_optimizer(self) -> torch.optim.Adam:
        """Adam at the outer learning rate β over θ (and α for Meta-SGD)."""
        return torch.optim.Adam(self.parameters(), lr=self.config.outer_lr)

    def forward(self, x: Tensor, params: Mapping[str, Tensor] | None = None) -> Tensor:
        return predict(self.model, self.params if params is None else params, x, self.buffer_dict)

    def adapt(
        self,
        x_support: Tensor,
        y_support: Tensor,
        *,
        steps: int | None = None,
        inner_lr: InnerLR | None = None,
        first_order: bool | None = None,
        params: Mapping[str, Tensor] | None = None,
    ) -> tuple[Params, Tensor]:
        """``adapt`` with this learner's θ, α, steps and order unless overridden."""
        return adapt(
            self.model,
            self.params if params is None else params,
            x_support.to(self.device),
            y_support.to(self.device),
            self.loss_fn,
            inner_lr=self.inner_lr if inner_lr is None else inner_lr,
            steps=self.config.inner_steps if steps is None else steps,
            first_order=self.config.first_order if first_order is None else first_order,
            buffers=self.buffer_dict,
        )

    def meta_loss(self, batch: TaskBatch, *, path: str | None = None) -> MetaLossResult:
        return meta_loss(
            self.model,
            self.params,
            batch,
            self.loss_fn,
            inner_lr=self.inner_lr,
            steps=self.config.inner_steps,
            first_order=self.config.first_order,
            path=self.config.path if path is None else path,
            buffers=self.buffer_dict,
        )


def meta_step(maml: MAML, optimizer: torch.optim.Optimizer, batch: TaskBatch) -> MetaLossResult:
    """One meta-update: θ ← Adam(θ, ∇_θ Σᵢ L_query(θ'ᵢ)) at the outer rate β."""
    optimizer.zero_grad(set_to_none=True)
    result = maml.meta_loss(batch)
    result.loss.backward()
    optimizer.step()
    return result
