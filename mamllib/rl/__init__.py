"""Reinforcement learning with MAML: the paper's 2D navigation (Section 5.3, Table 4).

- ``env``: ``PointNavigation``, a batched torch ``gymnasium.vector.VectorEnv``.
- ``policy``: ``GaussianMLPPolicy`` and its batched evaluation with one θ'ᵢ per task.
- ``rollout``: sampling every task's episodes at once (``rollout``, and rllab's restarting
  sampler ``rollout_steps``), returns, the linear baseline.
- ``pg``: the inner REINFORCE step, differentiable (second- or first-order).
- ``trpo``: conjugate gradient and the TRPO step (the outer optimiser).
- ``meta``: the meta-batch, the meta-objective through the inner step, evaluation.
"""

from mamllib.rl.env import PointNavigation, sample_goals
from mamllib.rl.meta import (
    AdaptationResult,
    MetaBatch,
    adaptation_returns,
    meta_objective,
    sample_meta_batch,
)
from mamllib.rl.pg import policy_gradient_step, reinforce_loss
from mamllib.rl.policy import GaussianMLPPolicy, action_distribution, policy_outputs
from mamllib.rl.rollout import (
    Trajectories,
    advantages,
    discounted_returns,
    linear_feature_baseline,
    rollout,
    rollout_steps,
)
from mamllib.rl.trpo import conjugate_gradient, trpo_step

__all__ = [
    "AdaptationResult",
    "GaussianMLPPolicy",
    "MetaBatch",
    "PointNavigation",
    "Trajectories",
    "action_distribution",
    "adaptation_returns",
    "advantages",
    "conjugate_gradient",
    "discounted_returns",
    "linear_feature_baseline",
    "meta_objective",
    "policy_gradient_step",
    "policy_outputs",
    "reinforce_loss",
    "rollout",
    "rollout_steps",
    "sample_goals",
    "sample_meta_batch",
    "trpo_step",
]
