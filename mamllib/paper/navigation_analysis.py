"""2D navigation: why the numbers of Table 4 are what they are.

- ``sampler_bias``: how much of the code protocol's return is rllab's way of counting
  episodes, not the policy (the same adapted policies, measured plainly).
- ``step_size_sweep`` and ``step_size_table``: why a baseline can get worse after one
  step (the step measured against the policy's action noise, α/σ²).

``python -m mamllib.reproduce navigation`` records both in ``results/navigation.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mamllib.checks import check_int
from mamllib.experiments.navigation import evaluate_policy, summarize_returns
from mamllib.paper.navigation_setup import (
    NOISE_SEED,
    PROTOCOLS,
    load_learners,
    load_policy,
    test_goals,
)
from mamllib.rl.rollout import rollout

PLAIN_NOISE_SEED = 99  # action noise of ``sampler_bias``'s plain re-measurement
# α of the single step in the step-size sweep (``step_size_sweep``).
SWEEP_ALPHAS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def sampler_bias(
    num_goals: int = 40,
    episodes: int = 40,
    protocol: str = "code",
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """How much of a protocol's return is rllab's way of counting, not the policy.

    The MAML and pre-trained policies are adapted exactly as in ``evaluate`` (the same
    goals, noise and sampler); then each adapted policy θ_k is also measured plainly:
    ``episodes`` fresh episodes per goal from the origin (noise seed
    ``PLAIN_NOISE_SEED``). rllab's sampler averages over every episode its environments
    *finished* within the step budget, and an environment finishes several short episodes
    (ones that reached the goal quickly) in the time of one long one, so its average leans
    towards the good episodes once many reach the goal.

    Returns:
        ``{"protocol", "sampler", "plain_noise_seed", "policies": {label: {"protocol":
        [mean return per step, as in Table 4], "plain": [the same θ_k, 40 fresh
        episodes], "episodes_sampler": [the protocol's steps with 40 episodes per goal and
        step instead of the sampler's batches], "episodes_per_goal": [mean episodes the
        sampler finished]}}}``.
    """
    check_int("num_goals", num_goals, 2)
    check_int("episodes", episodes, 1)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: valid are {sorted(PROTOCOLS)}")
    spec = PROTOCOLS[protocol]
    goals = test_goals(num_goals)
    policies = load_learners(device, protocol)
    out: dict[str, Any] = {"protocol": protocol, "sampler": spec.sampler,
                           "plain_noise_seed": PLAIN_NOISE_SEED, "policies": {}}  # fmt: skip
    for label in ("MAML", "pre-trained"):
        if label not in policies:
            continue
        policy, config = policies[label]
        run = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                              inner_lrs=spec.inner_lrs, sampler=spec.sampler,
                              keep_trajectories=True, keep_params=True)  # fmt: skip
        plain = []
        for theta, batched in zip(run.params, run.batched):
            traj = rollout(policy, theta, goals.to(next(policy.parameters()).device), episodes,
                           generator=torch.Generator(device).manual_seed(PLAIN_NOISE_SEED),
                           horizon=config.horizon, batched=batched)  # fmt: skip
            plain.append(traj.mean_returns().mean().item())
        fixed = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                                inner_lrs=spec.inner_lrs, sampler="episodes")  # fmt: skip
        out["policies"][label] = {
            "protocol": run.returns.mean(0).tolist(),
            "plain": plain,
            "episodes_sampler": fixed.returns.mean(0).tolist(),
            "episodes_per_goal": [t.episode_mask.sum(1).mean().item() for t in run.trajectories],
        }
    return out


def step_size_sweep(
    num_goals: int = 40,
    episodes: int = 40,
    alphas: Sequence[float] = SWEEP_ALPHAS,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Why a baseline can get worse after a step: the return after ONE step against α.

    For every shipped MAML and pre-trained policy (both protocols), on the test goals:
    the return after one policy-gradient step of each α, and the policy's action noise σ
    (every policy with ``episodes`` episodes per goal, so that the curves compare).
    The REINFORCE step moves the mean by about α/σ² times what it moves a σ = 1 policy
    (∇_μ log π = (a − μ)/σ²), so a policy whose σ shrank in training needs a smaller α.

    Returns:
        ``{"alphas": [...], "policies": {"<label>, <protocol>": {"sigma", "before",
        "after_one_step": [mean per α], "ci95": [...]}}}``.
    """
    goals = test_goals(num_goals)
    out: dict[str, Any] = {"alphas": list(alphas), "policies": {}}
    for name, protocol in PROTOCOLS.items():
        for label, path in protocol.checkpoints.items():
            if not path.is_file():
                continue
            policy, config, _ = load_policy(path, device)
            after, ci, before = [], [], None
            for alpha in alphas:
                r = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                                    inner_lrs=(alpha,))  # fmt: skip
                summary = summarize_returns(r.returns)
                before = summary["mean"][0]
                after.append(summary["mean"][1])
                ci.append(summary["ci95"][1])
            out["policies"][f"{label}, {name}"] = {
                "sigma": policy.log_std.exp().mean().item(),
                "before": before,
                "after_one_step": after,
                "ci95": ci,
            }
    return out


def step_size_table(sweep: Mapping[str, Any]) -> str:
    """The sweep as a markdown table: per policy its σ, the return before the step, after
    one step of its protocol's α, and the best α of the sweep with its return.

    Args:
        sweep: ``step_size_sweep``'s output (``results/navigation.json``'s
            ``"step_size_sweep"``).
    """
    rows = [
        "| policy | σ | before | after one step with the protocol's α | best α "
        "| after one step with the best α |",
        "|---|---|---|---|---|---|",
    ]
    for key, entry in sweep["policies"].items():
        name = key.rsplit(", ", 1)[1]
        alpha = PROTOCOLS[name].inner_lrs[0]
        after = dict(zip(sweep["alphas"], entry["after_one_step"]))
        best = max(after, key=after.get)
        rows.append(
            f"| {key} | {entry['sigma']:.2f} | {entry['before']:.1f} "
            f"| {after[alpha]:.1f} (α = {alpha:g}) | {best:g} | {after[best]:.1f} |"
        )
    return "\n".join(rows)


def sampler_bias_table(bias: Mapping[str, Any]) -> str:
    """``sampler_bias``'s output as a markdown table: per policy, the returns after each
    step as rllab counts them and counted plainly, and the episodes per goal rllab finished.
    """

    def arrow(values, fmt):
        return " → ".join(format(v, fmt) for v in values)

    rows = [
        f"| {bias['protocol']} protocol | as rllab counts (Table 4) | the same policies, each "
        "episode counted once | episodes per goal (rllab) |",
        "|---|---|---|---|",
    ]
    for label, entry in bias["policies"].items():
        rows.append(
            f"| {label} | {arrow(entry['protocol'], '.2f')} | {arrow(entry['plain'], '.2f')} "
            f"| {arrow(entry['episodes_per_goal'], '.0f')} |"
        )
    return "\n".join(rows)
