"""2D navigation (the paper's Section 5.3): Table 4 and Figure 5, reproduced.

The shipped MAML, pre-trained, randomly initialised (and oracle) policies are evaluated on
the same 40 test goals: the return after 0..3 policy-gradient steps, 40 episodes per goal
and step. ``python -m mamllib.reproduce navigation`` writes the numbers to
``results/navigation.json``, the paper's Figure 5 to ``figures/navigation_returns.png``
and each policy's paths on one goal to ``figures/navigation_trajectories.png``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from mamllib.checkpoints import hardware
from mamllib.checks import check_int
from mamllib.experiments.navigation import evaluate_policy, summarize_returns
from mamllib.paper.navigation_analysis import (
    PLAIN_NOISE_SEED,
    SWEEP_ALPHAS,
    sampler_bias,
    sampler_bias_table,
    step_size_sweep,
    step_size_table,
)
from mamllib.paper.navigation_setup import (
    CHECKPOINTS,
    NOISE_SEED,
    PAPER_TABLE4,
    PLOT_ORDER,
    PROTOCOLS,
    RANDOM_INIT_SEED,
    TEST_SEED,
    Protocol,
    checkpoint_summary,
    load_learners,
    load_policy,
    optimal_returns,
    random_policy,
    test_goals,
)
from mamllib.progress_bar import progress as progress_bar
from mamllib.viz.figures import (
    figure_navigation_paths,
    figure_navigation_returns,
    figure_step_size_sweep,
)

__all__ = [  # this module's own, and what it gathers from the two it builds on
    "CHECKPOINTS", "NOISE_SEED", "PAPER_TABLE4", "PLAIN_NOISE_SEED", "PLOT_ORDER", "PROTOCOLS",
    "RANDOM_INIT_SEED", "SWEEP_ALPHAS", "TEST_SEED", "Protocol", "checkpoint_summary",
    "evaluate", "figures", "load_learners", "load_policy", "navigation_paths",
    "optimal_returns", "random_policy", "sampler_bias", "sampler_bias_table", "step_size_sweep", "step_size_table",
    "table_markdown", "test_goals",
]  # fmt: skip


def evaluate(
    num_goals: int = 40,
    device: torch.device | str = "cpu",
    progress: bool = False,
    *,
    episodes: int = 40,
    protocols: Sequence[str] = tuple(PROTOCOLS),
    sweep: bool = True,
    bias: bool = True,
) -> dict[str, Any]:
    """Table 4 under each protocol: every policy's mean return after 0..3 steps.

    Under each protocol, its MAML, pre-trained and the random policy take its steps
    (``Protocol.inner_lrs``; ``episodes`` fresh episodes per goal and step, or with
    ``Protocol.sampler="steps"`` as many environments per goal) on the same test goals
    with the same action noise. A trained oracle (told the goal), if shipped,
    is not adapted; ``"optimal"`` is the best return possible on each goal
    (``optimal_returns``), the ceiling the paper's oracle line stands for. Then, with
    ``bias=True``, ``sampler_bias`` of the code protocol (about 15 s), and with
    ``sweep=True``, the step-size sweep (``step_size_sweep``, about 80 s on a 2-core
    CPU). ``progress=True`` shows a bar over the policies.

    Returns:
        ``results/navigation.json``: ``"protocols"``: name -> title, α per step, sampler,
        ``"returns"`` (label -> mean and 95% CI over the goals per step,
        ``summarize_returns``) and ``"checkpoints"`` (``checkpoint_summary``);
        ``"reference"``: the oracle's and the optimal return; ``"sampler_bias"`` (with the
        code protocol); ``"step_size_sweep"``; the goals' and noise's seeds, the hardware
        and the paper's Table 4.
    """
    check_int("num_goals", num_goals, 2)
    check_int("episodes", episodes, 1)
    for name in protocols:
        if name not in PROTOCOLS:
            raise ValueError(f"protocol={name!r}: valid are {sorted(PROTOCOLS)}")
    goals = test_goals(num_goals)
    results: dict[str, Any] = {
        "num_goals": num_goals,
        "episodes": episodes,
        "test_seed": TEST_SEED,
        "noise_seed": NOISE_SEED,
        "hardware": hardware(device),
        "torch": str(torch.__version__),
        "paper_table4": {k: list(v) for k, v in PAPER_TABLE4.items()},
        "protocols": {},
        "reference": {},
    }
    bar = progress_bar(total=3 * len(protocols) + 1, desc="policies", unit="policy",
                       enabled=progress)  # fmt: skip
    for name in protocols:
        protocol = PROTOCOLS[name]
        policies = load_learners(device, name)
        returns = {}
        for label in ("MAML", "pre-trained", "random"):
            if label in policies:
                policy, config = policies[label]
                out = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                                      inner_lrs=protocol.inner_lrs, sampler=protocol.sampler)  # fmt: skip
                returns[label] = summarize_returns(out.returns)
            bar.update()
        results["protocols"][name] = {
            "title": protocol.title,
            "inner_lrs": list(protocol.inner_lrs),
            "sampler": protocol.sampler,
            "returns": returns,
            "checkpoints": {label: checkpoint_summary(path)
                            for label, path in protocol.checkpoints.items() if path.is_file()},
        }  # fmt: skip
    if CHECKPOINTS["oracle"].is_file():
        policy, config, _ = load_policy(CHECKPOINTS["oracle"], device)
        out = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                              inner_lrs=())  # fmt: skip
        results["reference"]["oracle"] = summarize_returns(out.returns)
        results["reference"]["oracle"]["checkpoint"] = checkpoint_summary(CHECKPOINTS["oracle"])
    bar.update()
    bar.close()
    results["reference"]["optimal"] = summarize_returns(optimal_returns(goals, 100).unsqueeze(1))
    if bias and "code" in protocols:
        results["sampler_bias"] = sampler_bias(num_goals, episodes, "code", device)
    if sweep:
        results["step_size_sweep"] = step_size_sweep(num_goals, episodes, device=device)
    return results


def navigation_paths(
    goal_index: int = 0, steps: int = 3, episodes: int = 10, protocol: str = "code"
) -> dict[str, Any]:
    """What the paths figure shows (``viz.figures.figure_navigation_paths``): one
    protocol's MAML, pre-trained and random policies on one test goal, after 0..steps
    policy-gradient steps of that protocol's α (and sampler).

    Args:
        goal_index: which of the test goals (``test_goals``).
        steps: the most inner steps.
        episodes: episodes per policy and step.
        protocol: a key of ``PROTOCOLS``.

    Returns:
        ``{"goal": [2]``, ``"positions"``: label -> ``steps + 1`` tensors ``[E_k, H + 1, 2]``
        (the paths after each step: ``episodes`` of them, or with the code protocol's
        sampler every episode it finished, at least ``episodes``), ``"returns"``: label -> ``[steps + 1]`` average return,
        ``"inner_lrs"``: α of each step}.
    """
    policies = {k: v for k, v in load_learners(protocol=protocol).items() if k != "oracle"}
    goal = test_goals()[goal_index : goal_index + 1]
    lrs = PROTOCOLS[protocol].inner_lrs[:steps]
    sampler = PROTOCOLS[protocol].sampler
    outs = {label: evaluate_policy(policy, config, goal, seed=NOISE_SEED, episodes=episodes,
                                   inner_lrs=lrs, keep_trajectories=True, sampler=sampler)
            for label, (policy, config) in policies.items()}  # fmt: skip
    return {
        "goal": goal[0],
        "positions": {  # every finished episode (rllab's sampler may finish more)
            label: [traj.positions[0][traj.episode_mask[0] > 0] for traj in out.trajectories]
            for label, out in outs.items()
        },  # fmt: skip
        "returns": {label: out.returns[0] for label, out in outs.items()},
        "inner_lrs": list(lrs),
    }


def figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """The paper's Figure 5 under each protocol, the step-size sweep and the policies'
    paths on the first test goal (the code's protocol), by the file name ``reproduce``
    gives them.

    Args:
        results: ``evaluate``'s output (``results/navigation.json``).

    Returns:
        file name -> figure, each figure's ``dpi`` the one it is saved with.
    """
    returns = figure_navigation_returns(results)
    returns.set_dpi(120)
    sweep = figure_step_size_sweep(results["step_size_sweep"])
    sweep.set_dpi(120)
    paths = figure_navigation_paths(navigation_paths())
    paths.set_dpi(110)
    return {"navigation_returns.png": returns, "navigation_step_size.png": sweep,
            "navigation_trajectories.png": paths}  # fmt: skip


def table_markdown(results: Mapping[str, Any]) -> str:
    """Table 4 of the paper beside ours under each protocol: mean return ± 95% CI (over
    goals) per step."""
    first = next(iter(results["protocols"].values()))
    steps = range(len(first["returns"]["MAML"]["mean"]))
    header = "| 2D navigation, average return | " + " | ".join(
        f"{s} step{'s' if s != 1 else ''}" for s in steps
    )
    lines = [header + " |", "|---" * (len(steps) + 1) + "|"]
    for label in ("MAML", "pre-trained", "random"):
        paper = PAPER_TABLE4[label]
        about = "about " if label == "random" else ""
        lines.append(f"| {label}, paper | " + " | ".join(f"{about}{v:.2f}" for v in paper) + " |")
        for name, protocol in results["protocols"].items():
            if label not in protocol["returns"]:
                continue
            r = protocol["returns"][label]
            alphas = ", ".join(f"{a:g}" for a in protocol["inner_lrs"])
            if protocol.get("sampler", "episodes") == "steps":
                alphas += f"; {results['episodes'] * 100:,}-step batches"
            lines.append(
                f"| {label}, mamllib, {name} protocol (α {alphas}) | "
                + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(r["mean"], r["ci95"]))
                + " |"
            )
    for label, name in (("oracle", "oracle (told the goal, not adapted)"),
                        ("optimal", "optimal return (knows the goal)")):  # fmt: skip
        if label in results["reference"]:
            r = results["reference"][label]
            lines.append(f"| {name}, mamllib | {r['mean'][0]:.2f} ± {r['ci95'][0]:.2f} |"
                         + " |" * (len(steps) - 1))  # fmt: skip
    return "\n".join(lines)
