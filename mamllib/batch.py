"""A meta-batch of tasks: the one data structure every domain produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class TaskBatch:
    """T tasks, each with a support set (to adapt on) and a query set (to be graded on).

    Shapes (leading task dimension T):
        x_support ``[T, N·K, ...]``, y_support ``[T, N·K, ...]``,
        x_query ``[T, Q, ...]``, y_query ``[T, Q, ...]``.
    ``info`` holds per-task descriptions (e.g. a sinusoid's ``amplitude`` ``[T]``),
    which plots use and the algorithm ignores.
    """

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    info: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = {
            "x_support": self.x_support,
            "y_support": self.y_support,
            "x_query": self.x_query,
            "y_query": self.y_query,
        }
        for name, t in parts.items():
            if not isinstance(t, Tensor):
                raise TypeError(f"TaskBatch.{name} must be a tensor, got {type(t).__name__}")
            if t.dim() < 2:
                raise ValueError(
                    f"TaskBatch.{name} must have shape [T, examples, ...], got {tuple(t.shape)}"
                )
        shapes = {name: tuple(t.shape) for name, t in parts.items()}
        if len({s[0] for s in shapes.values()}) != 1:
            raise ValueError(f"TaskBatch parts disagree on the number of tasks T: {shapes}")
        for split in ("support", "query"):
            if shapes[f"x_{split}"][1] < 1:
                raise ValueError(
                    f"TaskBatch needs at least one {split} example per task, got "
                    f"x_{split} {shapes[f'x_{split}']}"
                )
        for split in ("support", "query"):
            x, y = shapes[f"x_{split}"], shapes[f"y_{split}"]
            if x[1] != y[1]:
                raise ValueError(
                    f"x_{split} and y_{split} disagree on the number of examples: {x} vs {y}"
                )
        if shapes["x_support"][2:] != shapes["x_query"][2:]:
            raise ValueError(
                "support and query inputs must have the same example shape: "
                f"x_support {shapes['x_support']} vs x_query {shapes['x_query']}"
            )
        if shapes["y_support"][2:] != shapes["y_query"][2:]:
            raise ValueError(
                "support and query targets must have the same example shape: "
                f"y_support {shapes['y_support']} vs y_query {shapes['y_query']}"
            )

    @property
    def num_tasks(self) -> int:
        return self.x_support.shape[0]

    def to(self, device: torch.device | str) -> TaskBatch:
        if self.x_support.device == torch.device(device):
            return self
        return TaskBatch(
            self.x_support.to(device),
            self.y_support.to(device),
            self.x_query.to(device),
            self.y_query.to(device),
            {k: v.to(device) for k, v in self.info.items()},
        )

    def __getitem__(self, index: int | slice) -> TaskBatch:
        """A sub-batch of tasks (an int keeps the task dimension, of size 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return TaskBatch(
            self.x_support[index],
            self.y_support[index],
            self.x_query[index],
            self.y_query[index],
            {k: v[index] for k, v in self.info.items()},
        )
