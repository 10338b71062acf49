"""The graders of chapter 3 (2D navigation); ``mamllib.exercises`` explains the rules.

The problems are random: Gaussian policies with random weights, made-up trajectories
with random episode lengths, random goals.
"""

from __future__ import annotations

import torch
from torch.distributions import Normal, kl_divergence

from mamllib.exercises import PROBLEMS, call, choice, compare, exercise, integer, uniform
from mamllib.experiments.navigation import NavigationConfig, evaluate_policy
from mamllib.rl.pg import policy_gradient_step
from mamllib.rl.policy import GaussianMLPPolicy
from mamllib.rl.rollout import Trajectories


@exercise("the KL between diagonal Gaussians")
def gaussian_kl(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        shape = (integer(1, 4, generator), integer(1, 3, generator))
        mu0, mu1 = (torch.randn(shape, generator=generator) for _ in range(2))
        log_std0, log_std1 = (0.5 * torch.randn(shape, generator=generator) for _ in range(2))
        mine = call(answer, mu0, log_std0, mu1, log_std1)

        def kl(m0, s0, m1, s1):
            return kl_divergence(Normal(m0, s0.exp()), Normal(m1, s1.exp())).sum(-1)

        known = {
            "the KL is not symmetric: this is KL(𝒩₁ ‖ 𝒩₀), the arguments swapped": kl(
                mu1, log_std1, mu0, log_std0
            ),
            "sum the KL over the action dimensions (the last one)": kl(
                mu0, log_std0, mu1, log_std1
            ).sum(),
        }
        compare(mine, kl(mu0, log_std0, mu1, log_std1), "the KL", known=known)
    return f"matches torch.distributions.kl_divergence on {PROBLEMS} random pairs"


def _trajectories(tasks: int, generator: torch.Generator) -> tuple[Trajectories, torch.Tensor]:
    episodes, horizon = integer(2, 4, generator), integer(3, 8, generator)
    lengths = torch.randint(1, horizon + 1, (tasks, episodes), generator=generator)
    mask = (torch.arange(horizon) < lengths[..., None]).float()
    observations = torch.rand(tasks, episodes, horizon, 2, generator=generator) - 0.5
    actions = torch.randn(tasks, episodes, horizon, 2, generator=generator)
    traj = Trajectories(
        observations=observations,
        actions=actions,
        rewards=torch.zeros(tasks, episodes, horizon),
        mask=mask,
        positions=torch.zeros(tasks, episodes, horizon + 1, 2),
        goals=torch.zeros(tasks, 2),
    )
    return traj, torch.randn(tasks, episodes, horizon, generator=generator) * mask


@exercise("one task's policy-gradient step by hand")
def adapt_one_task(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        hidden = integer(3, 8, generator)
        policy = GaussianMLPPolicy(2, 2, (hidden, hidden), init_log_std=uniform(-1, 0, generator))
        theta = dict(policy.named_parameters())
        tasks = integer(2, 4, generator)
        traj, adv = _trajectories(tasks, generator)
        task, alpha = integer(0, tasks - 1, generator), uniform(0.05, 0.5, generator)
        mine = call(answer, policy, theta, traj, adv, task, alpha)
        adapted = policy_gradient_step(policy, theta, traj, adv, alpha, differentiable=False)
        ascent = policy_gradient_step(policy, theta, traj, adv, -alpha, differentiable=False)
        known = {"θ' went the wrong way: the loss is −log π · Â, and θ' = θ − α∇L": {
            k: v[task] for k, v in ascent.items()}}  # fmt: skip
        compare(mine, {k: v[task] for k, v in adapted.items()}, f"θ'_{task}", known=known)
    return f"matches policy_gradient_step on {PROBLEMS} random policies and trajectories"


@exercise("what two steps gain on one goal")
def adaptation_gain(answer, generator: torch.Generator) -> str:
    config = NavigationConfig()
    policy = GaussianMLPPolicy(2, 2, (16, 16))
    goal = torch.rand(1, 2, generator=generator) - 0.5
    seed = integer(0, 10_000, generator)
    mine = call(answer, policy, config, goal, seed)
    out = evaluate_policy(policy, config, goal, seed=seed, episodes=20, inner_lrs=(0.1, 0.05))
    returns = out.returns[0]
    known = {"that is the gain of one step: measure after two": returns[1] - returns[0],
             "the gain is the return after two steps minus the return before any":
                 returns[0] - returns[2]}  # fmt: skip
    compare(mine, returns[2] - returns[0], "the gain", known=known, rtol=1e-5)
    return f"matches evaluate_policy on a random policy and goal {[round(g, 2) for g in goal[0].tolist()]}"


@exercise("why α must be positive")
def positive_alpha(answer, generator: torch.Generator) -> str:
    return choice(answer, "a", {
        "b": "nothing divides by α; think about what θ' = θ − α∇L is for α = 0 and for α < 0",
        "c": "TRPO is the outer loop; α is the inner step's size",
    })  # fmt: skip
