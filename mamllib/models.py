"""Plain ``nn.Module``s. MAML needs nothing special from them: any module works."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """A fully connected network; the paper's sinusoid regressor is ``MLP((1, 40, 40, 1))``.

    Args:
        sizes: layer widths, input first and output last.
        activation: between the layers, ``"relu"`` (the paper's networks) or ``"tanh"``
            (rllab's default policy, which the paper's code used for its random baseline).
    """

    def __init__(self, sizes: Sequence[int] = (1, 40, 40, 1), activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: valid are {sorted(ACTIVATIONS)}")
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
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        self.sizes = sizes

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)


class BatchNorm(nn.Module):
    """Batch normalisation on the statistics of the batch it sees, no running statistics.

    This is how the paper's code normalises (statistics of the current batch, at meta-test
    time too), which makes the prediction for one query image depend on the others in
    its batch: transductive. It is written with plain tensor operations because, under
    ``vmap``, torch's native batch norm gave a wrong *second-order* meta-gradient
    (pytorch/functorch#534, "batch_norm backward batching rule is incorrect for
    grad_input"); this version is exact (tests/test_omniglot_model.py).

    Args:
        num_features: channels C of the input ``[B, C, ...]``.
        eps: added to the variance for numerical stability.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # Statistics over (batch, *spatial) in two stages, spatial (contiguous) first, and
        # the variance in a second pass over the centred input, which is needed anyway:
        # torch.var_mean over the non-contiguous dims (0, 2, 3) was 7x slower forward and
        # 1.5x slower in the double backward on the CPU (all plain ops, exact under vmap).
        spatial = tuple(range(2, x.dim()))
        n = x.numel() // x.shape[1]
        mean = x.sum(spatial, keepdim=True).sum(0, keepdim=True) / n
        centred = x - mean
        var = (centred * centred).sum(spatial, keepdim=True).sum(0, keepdim=True) / n
        shape = (1, -1) + (1,) * (x.dim() - 2)
        # Folding the weight into the scale first keeps full-size operations few, which
        # matters twice over in second-order MAML.
        scale = torch.rsqrt(var + self.eps) * self.weight.view(shape)
        return centred * scale + self.bias.view(shape)


class Conv4(nn.Module):
    """The paper's Omniglot network: 4 × [3×3 conv, stride 2, BatchNorm, ReLU], then linear.

    Stride-2 convolutions replace pooling on 28×28 inputs (28 → 14 → 7 → 4 → 2); as in
    the paper's code, the last feature map is averaged over space before the linear
    layer to the N classes.

    Args:
        n_way: N, the number of output classes.
        in_channels: 1 for Omniglot.
        hidden: filters per convolution (64 in the paper).
    Shapes: ``[B, in_channels, H, W]`` -> ``[B, n_way]``.
    """

    def __init__(self, n_way: int = 5, in_channels: int = 1, hidden: int = 64):
        for name, value in (("n_way", n_way), ("in_channels", in_channels), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                # No conv bias: the batch norm right after it would cancel it (its gradient is 0).
                nn.Conv2d(
                    in_channels if i == 0 else hidden, hidden, 3, stride=2, padding=1, bias=False
                ),
                BatchNorm(hidden),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, n_way)
        self.n_way = n_way

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1)))
