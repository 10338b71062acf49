"""The paper's 2D point navigation, batched in torch (a ``gymnasium.vector.VectorEnv``).

A task 𝒯 is a goal g drawn uniformly from [−0.5, 0.5]². The agent starts at the origin,
observes its position, and moves by a velocity clipped to [−0.1, 0.1] per coordinate.
The reward is the negative distance to the goal after the move; the episode ends
(``terminated``) when the agent is within 0.01 of the goal in both coordinates, or is
cut off (``truncated``) after H = 100 steps.

This follows the paper's code (``maml_rl/rllab/envs/point_env_rand_goal.py``): its reward
is the distance −‖s − g‖, where the paper's text says the *squared* distance, and its
"within 0.01" is per coordinate (|x − g_x| < 0.01 and |y − g_y| < 0.01).

Every episode of the batch steps at once, so hundreds of them cost one tensor
operation per time step, on CPU or GPU. Observations, actions and rewards are torch
tensors; the spaces are gymnasium ``Box``es, so code written against gymnasium's vector
API (``reset``/``step``, ``single_observation_space``, ...) can drive this environment
and others can be plugged into ``mamllib.rl.rollout``.

References:
    Finn, Abbeel, Levine (2017), Section 5.3 and Appendix A.2;
    https://github.com/cbfinn/maml_rl (``point_env_rand_goal.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from mamllib.checks import check_int, check_positive_float

GOAL_LOW, GOAL_HIGH = -0.5, 0.5


def sample_goals(num_goals: int, generator: torch.Generator | None = None) -> Tensor:
    """``[num_goals, 2]`` goals, uniform on [−0.5, 0.5]² (the paper's task distribution)."""
    check_int("num_goals", num_goals, 1)
    device = generator.device if generator is not None else "cpu"
    u = torch.rand(num_goals, 2, generator=generator, device=device)
    return GOAL_LOW + (GOAL_HIGH - GOAL_LOW) * u


class PointNavigation(VectorEnv):
    """``num_envs`` point-navigation episodes stepping together; one goal per episode.

    Args:
        goals: ``[num_envs, 2]`` the goal of each episode (its task).
        horizon: H, the episode is truncated after this many steps.
        max_speed: actions are clipped to [−max_speed, max_speed] per coordinate.
        goal_tolerance: the episode terminates when |s − g| < tolerance per coordinate.

    An episode that has ended stays where it is and gets reward 0 until ``reset``
    (autoreset is disabled: a batch of episodes is collected from one reset).
    ``reset(options={"reset_mask": mask})`` restarts only the episodes where ``mask``
    is true (gymnasium's convention for vector environments without autoreset); each
    episode counts its own steps towards the horizon (``elapsed``).

    Shapes: ``reset() -> obs [num_envs, 2]``; ``step(action [num_envs, 2])`` ->
    ``obs [num_envs, 2], reward [num_envs], terminated [num_envs], truncated [num_envs],
    info`` (``info["distance"]``, ``info["active"]``: the episodes this step moved).
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED, "render_modes": []}

    def __init__(
        self,
        goals: Tensor,
        horizon: int = 100,
        max_speed: float = 0.1,
        goal_tolerance: float = 0.01,
    ):
        if not isinstance(goals, Tensor) or goals.dim() != 2 or goals.shape[1] != 2:
            got = tuple(goals.shape) if isinstance(goals, Tensor) else type(goals).__name__
            raise ValueError(f"goals must be a tensor of shape [num_envs, 2], got {got}")
        if not torch.isfinite(goals).all():
            raise ValueError("goals contain NaN or inf")
        check_int("horizon", horizon, 1)
        check_positive_float("max_speed", max_speed)
        check_positive_float("goal_tolerance", goal_tolerance)
        self.goals = goals
        self.num_envs = goals.shape[0]
        self.horizon = horizon
        self.max_speed = float(max_speed)
        self.goal_tolerance = float(goal_tolerance)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.single_action_space = spaces.Box(-self.max_speed, self.max_speed, (2,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.position = torch.zeros_like(goals)
        flags = torch.ones(self.num_envs, dtype=torch.bool, device=goals.device)
        # Until the first reset every episode counts as over (gymnasium: reset before step).
        self.terminated, self.truncated = flags, flags.clone()
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.long, device=goals.device)

    @property
    def done(self) -> Tensor:
        return self.terminated | self.truncated

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """Every episode back at the origin; ``options={"goals": tensor}`` sets new goals,
        ``options={"reset_mask": bool tensor [num_envs]}`` restarts only those episodes
        (the others keep their state; the observation is every episode's position).

        The dynamics are deterministic, so ``seed`` only seeds the action space's
        sampler (as in gymnasium).
        """
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        options = options or {}
        unknown = set(options) - {"goals", "reset_mask"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}: valid are goals, reset_mask"
            )
        if "goals" in options:
            goals = options["goals"]
            if not isinstance(goals, Tensor) or tuple(goals.shape) != (self.num_envs, 2):
                raise ValueError(
                    f"options['goals'] must have shape ({self.num_envs}, 2), got "
                    f"{tuple(goals.shape) if isinstance(goals, Tensor) else goals!r}"
                )
            self.goals = goals
        if "reset_mask" in options:
            mask = options["reset_mask"]
            if (
                not isinstance(mask, Tensor)
                or mask.dtype != torch.bool
                or tuple(mask.shape) != (self.num_envs,)
            ):
                got = (f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor)
                       else type(mask).__name__)  # fmt: skip
                raise ValueError(
                    f"options['reset_mask'] must be a bool tensor of shape ({self.num_envs},), "
                    f"got {got}"
                )
            if "goals" in options:
                raise ValueError("reset_mask restarts some episodes: pass goals without it")
        else:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.goals.device)
        keep = ~mask
        origin = torch.zeros_like(self.goals)
        self.position = torch.where(keep.unsqueeze(-1), self.position.to(origin), origin)
        self.terminated = self.terminated & keep
        self.truncated = self.truncated & keep
        self.elapsed = self.elapsed * keep
        return self.position.clone(), {}

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        if not isinstance(action, Tensor) or tuple(action.shape) != (self.num_envs, 2):
            got = tuple(action.shape) if isinstance(action, Tensor) else type(action).__name__
            raise ValueError(f"action must be a tensor of shape ({self.num_envs}, 2), got {got}")
        active = ~self.done
        velocity = action.to(self.position.dtype).clamp(-self.max_speed, self.max_speed)
        self.position = self.position + velocity * active.unsqueeze(-1)
        offset = self.position - self.goals
        distance = offset.norm(dim=-1)
        reward = -distance * active
        self.elapsed = self.elapsed + active
        reached = active & (offset.abs() < self.goal_tolerance).all(dim=-1)
        self.terminated = self.terminated | reached
        self.truncated = self.truncated | (active & ~reached & (self.elapsed >= self.horizon))
        info = {"distance": distance, "active": active}
        return self.position.clone(), reward, self.terminated.clone(), self.truncated.clone(), info
