"""Plain ``nn.Module``s. MAML needs nothing special from them: any module works."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Sequential):
    """A fully connected ReLU network; the paper's sinusoid regressor is ``MLP((1, 40, 40, 1))``.

    Args:
        sizes: layer widths, input first and output last.
    """

    def __init__(self, sizes: Sequence[int] = (1, 40, 40, 1)):
        sizes = tuple(sizes)
        if len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
        ):
            raise ValueError(
                f"sizes must be at least two positive ints (input, ..., output), got {sizes}"
            )
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)
        self.sizes = sizes

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)
