"""MAML, the algorithm (Finn, Abbeel & Levine, ICML 2017, Algorithm 2), on ``torch.func``:
θ is a dict (name -> tensor); any ``nn.Module`` runs as ``functional_call(model, (θ, buf), x)``.

One step:     θ' = θ − α ∇_θ L_support(θ)                 (``inner_step``)
One task 𝒯ᵢ:  that step, repeated ``steps`` times → θ'ᵢ   (``adapt``)
Meta-batch:   L(θ) = 1/T Σᵢ L_query(θ'ᵢ)                  (``meta_loss``: ``"vmap"`` runs all
              tasks at once, ``"loop"`` one after another; ``mamllib.fast`` adds faster paths)
Meta-update:  θ ← Adam(θ, ∇_θ L(θ), β)                    (``meta_step``)

Second-order MAML differentiates through the inner steps, which brings the Hessian term
(I − α∇²L_support) into ∇_θ L; first-order MAML treats the inner gradients as constants.

References: Finn, Abbeel & Levine, Model-Agnostic Meta-Learning for Fast Adaptation of Deep
Networks, ICML 2017 (https://arxiv.org/abs/1703.03400); Li et al., Meta-SGD, 2017 (1707.09835).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from mamllib.batch import TaskBatch
from mamllib.checks import check_hyperparameters, check_inner_loop, check_support, shape_checked

Params = dict[str, Tensor]
InnerLR = float | Mapping[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MAMLConfig:
    """Hyperparameters of the MAML algorithm itself (the domain supplies model and data).

    Attributes:
        inner_lr: α, the step size of the inner SGD updates on the support set.
        inner_steps: number of inner updates during meta-training.
        outer_lr: β, Adam's learning rate for the meta-update.
        first_order: drop the Hessian term (inner gradients treated as constants).
        learn_inner_lr: Meta-SGD: α (a tensor per parameter, from ``inner_lr``) learned with θ.
        path: ``"vmap"``, ``"loop"``, ``"hybrid"`` (``mamllib.fast``) or ``"auto"``.
    """

    inner_lr: float = 0.01
    inner_steps: int = 1
    outer_lr: float = 1e-3
    first_order: bool = False
    learn_inner_lr: bool = False
    path: str = "auto"

    def __post_init__(self) -> None:
        flags = {"first_order": self.first_order, "learn_inner_lr": self.learn_inner_lr}
        check_hyperparameters(self.inner_lr, self.inner_steps, self.outer_lr, **flags)
        check_path(self.path)


def predict(model: nn.Module, params: Mapping[str, Tensor], x: Tensor,
            buffers: Mapping[str, Tensor] | None = None) -> Tensor:  # fmt: skip
    """f_θ(x): the model called with the parameters θ instead of its own."""
    return functional_call(model, (dict(params), dict(buffers or {})), (x,))


def inner_step(params: Mapping[str, Tensor], loss_of_params: Callable[[Params], Tensor],
               inner_lr: InnerLR, *, first_order: bool = False, autograd: bool = False
               ) -> tuple[Params, Tensor]:  # fmt: skip
    """θ' = θ − α ∇_θ L(θ): one SGD step, for supervised tasks and policies alike. An outer
    autograd differentiates through it (second-order MAML).

    Args:
        params: θ, name -> tensor (with whatever leading shape ``loss_of_params`` expects).
        loss_of_params: θ -> L(θ), a scalar (e.g. one task's support loss).
        inner_lr: α, a float or (Meta-SGD) a dict of tensors shaped like ``params``.
        first_order: ∇_θ L is a constant: θ' depends on θ, minus the Hessian term.
        autograd: ∇_θ L by ``torch.autograd.grad`` (a plain graph, as ``mamllib.cost`` measures
            it) instead of ``torch.func.grad_and_value`` (which runs under ``vmap``).

    Returns:
        θ' and L(θ), the loss before the step.
    """
    if not autograd:
        at = {k: v.detach() for k, v in params.items()} if first_order else dict(params)
        grads, loss = grad_and_value(loss_of_params)(at)
    else:
        create_graph = torch.is_grad_enabled() and not first_order
        with torch.enable_grad():
            at = {k: v if create_graph and v.requires_grad else v.detach().requires_grad_()
                  for k, v in params.items()}  # fmt: skip
            loss = loss_of_params(at)
            grads = torch.autograd.grad(loss, list(at.values()), create_graph=create_graph)
        grads = dict(zip(at, grads))
    alpha = inner_lr if isinstance(inner_lr, Mapping) else dict.fromkeys(params, inner_lr)
    return {k: p - alpha[k] * grads[k] for k, p in params.items()}, loss


@dataclass(frozen=True)
class InnerLoop:
    """``adapt``'s arguments but θ and the data: one task's inner loop, for the speed paths."""

    model: nn.Module
    loss_fn: LossFn
    inner_lr: InnerLR
    steps: int
    first_order: bool
    buffers: Params
    autograd: bool = False

    def loss(self, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        """L(θ) on examples ``x [n, ...]``, targets ``y [n, ...]``."""
        return self.loss_fn(functional_call(self.model, (dict(params), self.buffers), (x,)), y)

    def adapt(self, params: Params, xs: Tensor, ys: Tensor) -> tuple[Params, Tensor]:
        """θ'ᵢ after ``steps`` inner steps on ``(xs, ys)``, and the losses ``[steps]`` before."""
        theta, losses = params, []
        for _ in range(self.steps):
            theta, loss = inner_step(theta, lambda p: self.loss(p, xs, ys), self.inner_lr,
                                     first_order=self.first_order,
                                     autograd=self.autograd)  # fmt: skip
            losses.append(loss.detach())
        return theta, torch.stack(losses) if losses else xs.new_zeros(0)


def adapt(model: nn.Module, params: Mapping[str, Tensor], x_support: Tensor, y_support: Tensor,
          loss_fn: LossFn, *, inner_lr: InnerLR, steps: int, first_order: bool = False,
          buffers: Mapping[str, Tensor] | None = None) -> tuple[Params, Tensor]:  # fmt: skip
    """Adapt θ to one task: ``steps`` inner steps on its support set.

    Args:
        model, params: any ``nn.Module`` (only its structure is used) and θ, name -> tensor.
        x_support, y_support: one task's support set ``[N·K, ...]``; for an elementwise loss
            (``F.mse_loss``, ...) the targets are shaped as the model's prediction.
        loss_fn: ``loss_fn(prediction, target) -> scalar``.
        inner_lr: α, a float or (Meta-SGD) a dict of tensors shaped like ``params``.
        steps: number of inner steps (0 returns θ unchanged).
        first_order: treat the inner gradients as constants (first-order MAML).
        buffers: the model's buffers, if any.

    Returns:
        θ', and the support losses ``[steps]`` before each step (L(θ₀), ..., L(θ_{steps−1})).

    Raises:
        TypeError, ValueError: a bad α or ``steps``, no support examples, not as many
            inputs as targets, or (elementwise losses) targets the loss would broadcast.
    """
    check_inner_loop(inner_lr, steps, params)
    check_support(x_support, y_support)
    loss_fn = shape_checked(loss_fn, "y_support")
    inner = InnerLoop(model, loss_fn, inner_lr, steps, first_order, dict(buffers or {}))
    return inner.adapt(dict(params), x_support, y_support)


@dataclass
class MetaLossResult:
    """What one evaluation of the meta-objective produced."""

    loss: Tensor  # the meta-objective 1/T Σᵢ L_query(θ'ᵢ), differentiable w.r.t. θ
    query_losses: Tensor  # [T]: each task's query loss after adaptation (detached)
    support_losses: Tensor  # [T, steps]: the support loss before each inner step (detached)


SpeedPath = Callable[[InnerLoop, Params, TaskBatch], MetaLossResult]
SPEED_PATHS: dict[str, SpeedPath] = {}  # mamllib.fast registers its paths: maml.py imports none
_choose: Callable[[nn.Module, torch.device], str] = lambda model, device: "vmap"  # noqa: E731


def register_path(name: str, run: SpeedPath, *, choose: Callable | None = None) -> None:
    """``meta_loss(path=name)`` returns ``run(inner, θ, batch)``; ``choose`` picks for "auto"."""
    global _choose
    SPEED_PATHS[name] = run
    _choose = choose or _choose


def check_path(path: object) -> None:
    """Raise unless ``path`` is ``"auto"``, ``"vmap"``, ``"loop"`` or a registered speed path."""
    if path not in (valid := ("auto", "vmap", "loop", *SPEED_PATHS)):
        raise ValueError(f"path={path!r} is not one of {valid}")


def resolve_path(path: str, model: nn.Module, device: torch.device | str) -> str:
    """``path``, with ``"auto"`` replaced by the registered choice for this model and device."""
    check_path(path)
    return _choose(model, torch.device(device)) if path == "auto" else path


def meta_loss(model: nn.Module, params: Mapping[str, Tensor], batch: TaskBatch, loss_fn: LossFn,
              *, inner_lr: InnerLR, steps: int, first_order: bool = False, path: str = "auto",
              buffers: Mapping[str, Tensor] | None = None) -> MetaLossResult:  # fmt: skip
    """The MAML objective over a meta-batch: mean query loss after adapting to each task.

    Args:
        model, params, loss_fn, inner_lr, steps, first_order, buffers: as in ``adapt``.
        batch: ``TaskBatch`` with a leading task dimension T.
        path: ``"vmap"``, ``"loop"``, a speed path or ``"auto"`` (``resolve_path``).

    Returns:
        ``MetaLossResult``; call ``.loss.backward()`` for the meta-gradient.

    Raises:
        TypeError, ValueError: a bad α, ``steps``, ``path`` or batch, before any work.
    """
    check_inner_loop(inner_lr, steps, params)
    params, device = dict(params), next(iter(params.values())).device
    path = resolve_path(path, model, device)
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    batch = batch.to(device)
    loss_fn = shape_checked(loss_fn, "(y_support, y_query) of each task")
    buffers = dict(buffers or {})  # the loop: one task at a time, by plain torch.autograd
    inner = InnerLoop(model, loss_fn, inner_lr, steps, first_order, buffers, path == "loop")
    if path in SPEED_PATHS:
        return SPEED_PATHS[path](inner, params, batch)

    def task(params: Params, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor):
        adapted, support_losses = inner.adapt(params, xs, ys)
        return inner.loss(adapted, xq, yq), support_losses

    data = (batch.x_support, batch.y_support, batch.x_query, batch.y_query)
    if path == "vmap":  # θ shared by all tasks (None), the data split by task (0)
        batched = vmap(task, in_dims=(None, 0, 0, 0, 0), randomness="different")
        query, support = batched(params, *data)
    else:
        per_task = [task(params, *one_task) for one_task in zip(*data)]
        query, support = (torch.stack(losses) for losses in zip(*per_task))
    return MetaLossResult(loss=query.mean(), query_losses=query.detach(), support_losses=support)


class MAML(nn.Module):
    """A model plus what MAML learns besides its weights: its ``parameters()`` are what the
    meta-optimiser updates, θ and, for Meta-SGD, α (``inner_lrs``, a tensor per parameter)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, config: MAMLConfig = MAMLConfig()):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
        if not isinstance(config, MAMLConfig):
            raise TypeError(f"config must be a MAMLConfig, got {type(config).__name__}")
        self.model, self.loss_fn, self.config = model, loss_fn, config
        # ParameterDict keys may not contain dots: α of "0.weight" is stored as "0__weight".
        lrs = {n.replace(".", "__"): nn.Parameter(torch.full_like(p.detach(), config.inner_lr))
               for n, p in model.named_parameters() if config.learn_inner_lr}  # fmt: skip
        self.inner_lrs = nn.ParameterDict(lrs)

    @property
    def params(self) -> Params:
        """θ: the model's parameters by name (the live tensors: gradients reach them)."""
        return dict(self.model.named_parameters())

    @property
    def buffer_dict(self) -> Params:
        """The model's buffers by name (passed along with θ to ``functional_call``)."""
        return dict(self.model.named_buffers())

    @property
    def inner_lr(self) -> InnerLR:
        """α: the configured float, or the learned per-parameter tensors (Meta-SGD)."""
        if self.config.learn_inner_lr:
            return {name: self.inner_lrs[name.replace(".", "__")] for name in self.params}
        return self.config.inner_lr

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def make_optimizer(self) -> torch.optim.Adam:
        """Adam at the outer learning rate β over θ (and α for Meta-SGD)."""
        return torch.optim.Adam(self.parameters(), lr=self.config.outer_lr)

    def forward(self, x: Tensor, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """f_θ(x) with this learner's θ, or with ``params`` (e.g. an adapted θ')."""
        return predict(self.model, self.params if params is None else params, x, self.buffer_dict)

    def adapt(self, x_support: Tensor, y_support: Tensor, *, steps: int | None = None,
              inner_lr: InnerLR | None = None, first_order: bool | None = None,
              params: Mapping[str, Tensor] | None = None) -> tuple[Params, Tensor]:  # fmt: skip
        """``adapt`` with this learner's θ, α, steps and order unless overridden."""
        c, params = self.config, self.params if params is None else params
        return adapt(self.model, params, x_support.to(self.device), y_support.to(self.device),
                     self.loss_fn, inner_lr=self.inner_lr if inner_lr is None else inner_lr,
                     steps=c.inner_steps if steps is None else steps, buffers=self.buffer_dict,
                     first_order=c.first_order if first_order is None else first_order)  # fmt: skip

    def meta_loss(self, batch: TaskBatch, *, path: str | None = None) -> MetaLossResult:
        """``meta_loss`` on ``batch`` with this learner's θ, α, steps, order and path."""
        c = self.config
        return meta_loss(self.model, self.params, batch, self.loss_fn, inner_lr=self.inner_lr,
                         steps=c.inner_steps, first_order=c.first_order, buffers=self.buffer_dict,
                         path=c.path if path is None else path)  # fmt: skip


def meta_step(maml: MAML, optimizer: torch.optim.Optimizer, batch: TaskBatch) -> MetaLossResult:
    """One meta-update: θ ← Adam(θ, ∇_θ 1/T Σᵢ L_query(θ'ᵢ)) at the outer rate β."""
    optimizer.zero_grad(set_to_none=True)
    result = maml.meta_loss(batch)
    result.loss.backward()
    optimizer.step()
    return result
