"""Sinusoid regression (the paper's Section 5.1).

A task is a sine wave y = A sin(x + φ) with amplitude A ~ U[0.1, 5] and phase
φ ~ U[0, π]; its data are points x ~ U[−5, 5]. K support points are what the learner
adapts on; the query points grade the adapted model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mamllib.batch import TaskBatch
from mamllib.checks import check_int

# The evaluation of a sinusoid task: its query MSE is measured on this many points, and a
# query MSE above DIVERGED_MSE (every task's function lies within ±5) means fixed-α SGD diverged.
QUERY_POINTS = 100
DIVERGED_MSE = 100.0


def _check_range(name: str, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be a finite range (low, high) with low < high, got {bounds}")


@dataclass(frozen=True)
class SinusoidTasks:
    """The distribution p(𝒯) of sinusoid regression tasks.

    Attributes:
        amplitude: range of A (paper: [0.1, 5.0]).
        phase: range of φ (paper: [0, π]).
        x_range: range of the inputs x (paper: [−5, 5]).
    """

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        _check_range("amplitude", self.amplitude)
        _check_range("phase", self.phase)
        _check_range("x_range", self.x_range)

    @staticmethod
    def function(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
        """y = A sin(x + φ); ``amplitude`` and ``phase`` broadcast against ``x``."""
        return amplitude * torch.sin(x + phase)

    def sample(
        self,
        num_tasks: int,
        k_support: int,
        k_query: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> TaskBatch:
        """Draw ``num_tasks`` sine waves and, for each, K support and Q query points.

        Support and query points are drawn independently (the paper's train/validation
        split within a task).

        Returns:
            ``TaskBatch`` with x, y of shape ``[T, K, 1]`` (support) and ``[T, Q, 1]``
            (query), and ``info`` with ``amplitude`` and ``phase`` of shape ``[T]``.
        """
        check_int("num_tasks", num_tasks, 1)
        check_int("k_support (K)", k_support, 1)
        check_int("k_query", k_query, 1)
        amplitude = self._uniform(self.amplitude, (num_tasks,), generator)
        phase = self._uniform(self.phase, (num_tasks,), generator)
        x = self._uniform(self.x_range, (num_tasks, k_support + k_query, 1), generator)
        y = self.function(x, amplitude[:, None, None], phase[:, None, None])
        batch = TaskBatch(
            x[:, :k_support],
            y[:, :k_support],
            x[:, k_support:],
            y[:, k_support:],
            {"amplitude": amplitude, "phase": phase},
        )
        return batch.to(device)

    def grid(self, n: int = 200) -> Tensor:
        """Evenly spaced inputs over ``x_range``, shape ``[n, 1]``, for plotting."""
        return torch.linspace(*self.x_range, n).unsqueeze(-1)

    @staticmethod
    def _uniform(bounds: tuple[float, float], shape: tuple[int, ...], generator) -> Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(shape, generator=generator)
