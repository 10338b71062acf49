"""Argument checks shared by the package: fail before any work, naming the bad value."""

from __future__ import annotations

import math

import torch


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
