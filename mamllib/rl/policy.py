"""The paper's policy: a Gaussian whose mean is an MLP of the observation.

π_θ(a | s) = 𝒩(μ_θ(s), diag(σ²)), μ_θ a 2 × 100 ReLU network, log σ a learned vector
independent of s (rllab's ``GaussianMLPPolicy``, which the paper's code used; its default
hidden activation, tanh, is what the code's randomly initialised baseline had).

Actions live in the policy's own units; ``mamllib.rl.rollout`` maps [−1, 1] onto the
environment's action box, as rllab's ``normalize`` wrapper did in the paper's code, so
that σ = 1 at initialisation means a velocity noise of 0.1 per step, not 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Normal
from torch.func import functional_call, vmap

from mamllib.models import MLP

Params = dict[str, Tensor]


class GaussianMLPPolicy(nn.Module):
    """Mean μ_θ(s) from an MLP, state-independent learned log σ.

    Args:
        obs_dim: observation size (2: the position; 4 for the oracle, which also sees g).
        action_dim: action size (2: a velocity).
        hidden: hidden layer widths (the paper: (100, 100)).
        init_log_std: log σ at initialisation (rllab: 0, i.e. σ = 1).
        activation: of the hidden layers, ``"relu"`` (the paper's MAML policy) or ``"tanh"``.

    Shapes: ``obs [..., obs_dim]`` -> ``(mean [..., action_dim], log_std [..., action_dim])``.
    """

    def __init__(
        self,
        obs_dim: int = 2,
        action_dim: int = 2,
        hidden: Sequence[int] = (100, 100),
        init_log_std: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        self.mean_net = MLP((obs_dim, *hidden, action_dim), activation)
        # rllab initialised weights Xavier-uniform and biases at zero.
        for layer in self.mean_net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))
        self.obs_dim, self.action_dim = obs_dim, action_dim

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean_net(obs)
        return mean, self.log_std.expand_as(mean)


def policy_outputs(
    policy: nn.Module, params: Mapping[str, Tensor], obs: Tensor, batched: bool
) -> tuple[Tensor, Tensor]:
    """(μ, log σ) of the policy with parameters θ.

    Args:
        params: θ shared by all of ``obs``, or (``batched=True``) one θ'ᵢ per task,
            each tensor with a leading task dimension ``T``.
        obs: ``[..., obs_dim]``; with ``batched=True``, ``[T, ..., obs_dim]``.

    One θ'ᵢ per task runs as a single batched call (``torch.func.vmap`` over
    ``functional_call``), not a loop over tasks.
    """
    if not batched:
        return functional_call(policy, dict(params), (obs,))
    return vmap(lambda p, o: functional_call(policy, p, (o,)))(dict(params), obs)


def action_distribution(mean: Tensor, log_std: Tensor) -> Normal:
    """The diagonal Gaussian; sum ``log_prob`` over the last dimension for log π(a|s)."""
    return Normal(mean, log_std.exp())
