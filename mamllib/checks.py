"""Argument checks shared by the package: fail before any work, naming the bad value."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_positive_float(name: str, value: object) -> None:
    """Raise unless ``value`` is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive finite number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def check_count(name: str, shape: torch.Size | tuple[int, ...], what: str = "examples") -> None:
    """Raise unless ``shape`` has a leading dimension of at least one (``what`` to count)."""
    if len(shape) < 1:
        raise ValueError(f"{name} must have shape [{what}, ...], got a scalar")
    if shape[0] < 1:
        raise ValueError(f"{name} has no {what} (shape {list(shape)}); give at least one")


def check_prediction_shape(prediction: torch.Tensor, target: torch.Tensor, targets: str) -> None:
    """Raise unless an elementwise loss gets ``target`` of ``prediction``'s shape (shapes only).

    ``F.mse_loss`` quietly broadcasts targets ``[K]`` against predictions ``[K, 1]`` to
    ``[K, K]`` and averages K² wrong differences (with only a warning).
    """
    if prediction.shape == target.shape:
        return
    try:
        broadcast = torch.broadcast_shapes(prediction.shape, target.shape)
        effect = f"the loss would broadcast them to {list(broadcast)}"
    except RuntimeError:
        effect = "the loss cannot compare them"
    fix = (
        f"reshape the targets to {list(prediction.shape)}"
        if prediction.numel() == target.numel()
        else f"give targets of shape {list(prediction.shape)}, or a model that predicts "
        f"{list(target.shape)}"
    )
    raise ValueError(
        f"targets {targets} have shape {list(target.shape)} but the model predicts "
        f"{list(prediction.shape)}: {effect}; {fix}"
    )


def check_inner_lr(inner_lr: object) -> None:
    """Raise unless α is a positive finite number, or a mapping of finite tensors (Meta-SGD)."""
    if isinstance(inner_lr, Mapping):
        for name, value in inner_lr.items():
            if not isinstance(value, Tensor):
                raise TypeError(f"inner_lr[{name!r}] must be a tensor, got {type(value).__name__}")
            if not torch.isfinite(value.detach()).all():
                raise ValueError(f"inner_lr[{name!r}] contains NaN or inf")
        return
    check_positive_float("inner_lr (α)", inner_lr)


def check_steps(steps: object, name: str = "inner_steps") -> None:
    """Raise unless a number of inner steps is an int >= 0."""
    check_int(name, steps, 0)


def check_hyperparameters(
    inner_lr: object, inner_steps: object, outer_lr: object, **flags: object
) -> None:
    """Raise unless α, the number of inner steps and β are valid and every flag is a bool."""
    check_inner_loop(inner_lr, inner_steps)
    check_positive_float("outer_lr", outer_lr)
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")


def check_inner_loop(
    inner_lr: object, steps: object, params: Mapping[str, Tensor] | None = None
) -> None:
    """Raise unless α and ``steps`` are valid and, for Meta-SGD (α a mapping), α has exactly
    one tensor per parameter of θ (``params``, when given)."""
    check_inner_lr(inner_lr)
    check_steps(steps)
    if params is not None and isinstance(inner_lr, Mapping) and set(inner_lr) != set(params):
        missing = sorted(set(params) - set(inner_lr))
        extra = sorted(set(inner_lr) - set(params))
        raise ValueError(
            f"inner_lr tensors must match the parameters: missing {missing}, unexpected {extra}"
        )


def check_support(x_support: object, y_support: object) -> None:
    """Raise unless one task's support set is two tensors with as many inputs as targets (>= 1)."""
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


# Elementwise losses that broadcast targets of another shape than the prediction (torch
# only warns): their targets are checked against the prediction's shape.
ELEMENTWISE_LOSSES = (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss)
ELEMENTWISE_LOSS_MODULES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)

Loss = Callable[[Tensor, Tensor], Tensor]


def shape_checked(loss_fn: Loss, targets: str) -> Loss:
    """``loss_fn``, raising when an elementwise loss gets targets shaped unlike the prediction.

    The check compares shapes only, inside the call that computes the loss anyway (under
    ``vmap`` the per-task shapes), so it costs no extra forward pass.

    Args:
        loss_fn: ``loss_fn(prediction, target) -> scalar``.
        targets: how the error message names the targets (e.g. ``"y_support"``).

    Returns:
        ``loss_fn`` itself unless it is one of ``ELEMENTWISE_LOSSES`` /
        ``ELEMENTWISE_LOSS_MODULES``; then the same loss with the shape check in front.
    """
    if not (loss_fn in ELEMENTWISE_LOSSES or isinstance(loss_fn, ELEMENTWISE_LOSS_MODULES)):
        return loss_fn

    def checked(prediction: Tensor, target: Tensor) -> Tensor:
        check_prediction_shape(prediction, target, targets)
        return loss_fn(prediction, target)

    return checked
