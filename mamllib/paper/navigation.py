"""2D navigation (the paper's Section 5.3): Table 4 and Figure 5, reproduced.

The shipped MAML, pre-trained, randomly initialised (and oracle) policies are evaluated on
the same 40 test goals: the return after 0..3 policy-gradient steps, 40 episodes per goal
and step. ``python -m mamllib.reproduce navigation`` writes the numbers to
``results/navigation.json``, the paper's Figure 5 to ``figures/navigation_returns.png``
and each policy's paths on one goal to ``figures/navigation_trajectories.png``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from mamllib.checkpoints import hardware, load_checkpoint
from mamllib.checks import check_int
from mamllib.experiments import NavigationExperiment, load_learner, saved_config
from mamllib.experiments.navigation import (
    NavigationConfig,
    build_navigation_policy,
    evaluate_policy,
    summarize_returns,
)
from mamllib.paths import CHECKPOINTS as FOLDER
from mamllib.progress_bar import progress as progress_bar
from mamllib.rl.env import PointNavigation, sample_goals
from mamllib.viz.figures import figure_navigation_paths, figure_navigation_returns

# Table 4 of Finn et al. (2017): average return after 0, 1, 2, 3 gradient steps.
PAPER_TABLE4 = {
    "MAML": (-40.41, -11.68, -3.33, -3.23),
    "pre-trained": (-40.81, -19.73, -11.72, -8.47),
    "random": (-82.7, -58.0, -53.8, -46.8),  # read off the paper's Figure 5 ("about")
}
CHECKPOINTS = {
    "MAML": FOLDER / "navigation_maml.pt",
    "pre-trained": FOLDER / "navigation_pretrain.pt",
    "oracle": FOLDER / "navigation_oracle.pt",
}
TEST_SEED = 2017  # the 40 test goals; training and validation goals come from other seeds
NOISE_SEED = 4  # action noise of the evaluation episodes
RANDOM_INIT_SEED = 1  # the randomly initialised policy of the baseline
PLOT_ORDER = ("MAML", "pre-trained", "random", "oracle")


def test_goals(num_goals: int = 40, seed: int = TEST_SEED) -> Tensor:
    """The fixed test goals of Table 4's reproduction, ``[num_goals, 2]``."""
    return sample_goals(num_goals, torch.Generator().manual_seed(seed))


def optimal_returns(goals: Tensor, horizon: int = 100) -> Tensor:
    """``[G]`` the best return any policy can reach on each goal (an exact oracle).

    The controller that knows the goal and moves each coordinate towards it at full
    speed: velocities are clipped per coordinate, so after t steps no policy can be
    closer than max(0, |g| − 0.1·t) in either coordinate, and this one is exactly that
    close in both. It minimises every step's distance, hence the return.
    """
    env = PointNavigation(goals, horizon=horizon)
    position, _ = env.reset()
    total = torch.zeros(goals.shape[0], dtype=goals.dtype, device=goals.device)
    for _ in range(horizon):
        position, reward, terminated, truncated, _ = env.step(goals - position)
        total += reward
        if bool((terminated | truncated).all()):
            break
    return total


def load_policy(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, NavigationConfig, dict[str, Any]]:
    """A trained policy, its config and the checkpoint dict.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: not a navigation checkpoint, or one this version cannot read
            (``mamllib.experiments.saved_config``).
    """
    policy, ckpt = load_learner(path, device, experiment="navigation")
    return policy, saved_config(NavigationExperiment, ckpt, path), ckpt


def load_learners(
    device: torch.device | str = "cpu",
) -> dict[str, tuple[nn.Module, NavigationConfig]]:
    """The shipped MAML, pre-trained (and oracle, if shipped) policies, and a random one.

    The random policy is a fresh initialisation (seed ``RANDOM_INIT_SEED``) with the
    MAML run's config, so it is adapted with the same steps.

    Returns:
        label -> ``(policy, config)``, in ``PLOT_ORDER``.

    Raises:
        FileNotFoundError: the MAML policy is not shipped.
    """
    found = {}
    for label, path in CHECKPOINTS.items():
        if path.is_file():
            policy, config, _ = load_policy(path, device)
            found[label] = (policy, config)
    if "MAML" not in found:
        raise FileNotFoundError(f"no MAML navigation checkpoint at {CHECKPOINTS['MAML']}")
    config = found["MAML"][1]
    torch.manual_seed(RANDOM_INIT_SEED)
    found["random"] = (build_navigation_policy(config, device).eval(), config)
    return dict(sorted(found.items(), key=lambda kv: list(PLOT_ORDER).index(kv[0])))


def evaluate(
    num_goals: int = 40,
    device: torch.device | str = "cpu",
    progress: bool = False,
    *,
    episodes: int = 40,
) -> dict[str, Any]:
    """Table 4: every policy's mean return after 0..3 steps on the same test goals.

    MAML, pre-trained and random policies take the paper's steps (α = 0.1, then 0.05,
    ``episodes`` fresh episodes per goal and step); a trained oracle (told the goal), if
    shipped, is not adapted. ``"optimal"`` is the best return possible on each goal
    (``optimal_returns``): the ceiling the paper's oracle line stands for.
    ``progress=True`` shows a bar over the policies.

    Returns:
        ``results/navigation.json``: ``"returns"``: label -> mean and 95% CI over the
        goals per step (``summarize_returns``); ``"checkpoints"``: label -> file,
        iterations, training time, hardware and commands; the goals' and noise's seeds,
        the α per step, the hardware and the paper's Table 4.
    """
    check_int("num_goals", num_goals, 2)
    check_int("episodes", episodes, 1)
    policies = load_learners(device)
    goals = test_goals(num_goals)
    maml_config = policies["MAML"][1]
    results: dict[str, Any] = {
        "num_goals": num_goals,
        "episodes": episodes,
        "inner_lrs": list(maml_config.eval_inner_lrs),
        "test_seed": TEST_SEED,
        "noise_seed": NOISE_SEED,
        "hardware": hardware(device),
        "torch": str(torch.__version__),
        "paper_table4": {k: list(v) for k, v in PAPER_TABLE4.items()},
        "returns": {},
        "checkpoints": {},
    }
    for label in progress_bar(policies, desc="policies", unit="policy", enabled=progress):
        policy, config = policies[label]
        lrs = () if config.oracle else maml_config.eval_inner_lrs
        out = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=episodes,
                              inner_lrs=lrs)  # fmt: skip
        results["returns"][label] = summarize_returns(out.returns)
    results["returns"]["optimal"] = summarize_returns(
        optimal_returns(goals, maml_config.horizon).unsqueeze(1)
    )
    for label, path in CHECKPOINTS.items():
        if path.is_file():
            ckpt = load_checkpoint(path)
            results["checkpoints"][label] = {
                "file": path.name,
                "iteration": ckpt["iteration"],
                "iterations_planned": ckpt["config"]["iterations"],
                "wall_time_s": ckpt["wall_time_s"],
                "trained_on": ckpt["provenance"]["hardware"],
                "commands": [s["command"] for s in ckpt.get("sessions", [])],
            }
    return results


def navigation_paths(goal_index: int = 0, steps: int = 3, episodes: int = 10) -> dict[str, Any]:
    """What the paths figure shows (``viz.figures.figure_navigation_paths``): the MAML,
    pre-trained and random policies on one test goal, after 0..steps policy-gradient steps
    with MAML's α per step.

    Args:
        goal_index: which of the test goals (``test_goals``).
        steps: the most inner steps.
        episodes: episodes per policy and step.

    Returns:
        ``{"goal": [2]``, ``"positions"``: label -> ``steps + 1`` tensors ``[E, H + 1, 2]``
        (the paths after each step), ``"returns"``: label -> ``[steps + 1]`` average return}.
    """
    policies = {k: v for k, v in load_learners().items() if k != "oracle"}
    goal = test_goals()[goal_index : goal_index + 1]
    lrs = policies["MAML"][1].eval_inner_lrs[:steps]
    outs = {label: evaluate_policy(policy, config, goal, seed=NOISE_SEED, episodes=episodes,
                                   inner_lrs=lrs, keep_trajectories=True)
            for label, (policy, config) in policies.items()}  # fmt: skip
    return {
        "goal": goal[0],
        "positions": {
            label: [traj.positions[0] for traj in out.trajectories] for label, out in outs.items()
        },
        "returns": {label: out.returns[0] for label, out in outs.items()},
    }


def figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """The paper's Figure 5 and the policies' paths on the first test goal, by the file
    name ``reproduce`` gives them.

    Args:
        results: ``evaluate``'s output (``results/navigation.json``).

    Returns:
        ``{"navigation_returns.png": Figure 5, "navigation_trajectories.png": the paths}``,
        each figure's ``dpi`` the one it is saved with.
    """
    returns = figure_navigation_returns(results)
    returns.set_dpi(120)
    paths = figure_navigation_paths(navigation_paths())
    paths.set_dpi(110)
    return {"navigation_returns.png": returns, "navigation_trajectories.png": paths}


def table_markdown(results: Mapping[str, Any]) -> str:
    """Table 4 of the paper beside ours: mean return ± 95% CI (over goals) per step."""
    steps = range(len(results["returns"]["MAML"]["mean"]))
    header = "| 2D navigation, average return | " + " | ".join(
        f"{s} step{'s' if s != 1 else ''}" for s in steps
    )
    lines = [header + " |", "|---" * (len(steps) + 1) + "|"]
    for label in ("MAML", "pre-trained", "random"):
        if label not in results["returns"]:
            continue
        paper = PAPER_TABLE4[label]
        about = "about " if label == "random" else ""
        lines.append(f"| {label}, paper | " + " | ".join(f"{about}{v:.2f}" for v in paper) + " |")
        r = results["returns"][label]
        lines.append(
            f"| {label}, mamllib | "
            + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(r["mean"], r["ci95"]))
            + " |"
        )
    for label, name in (("oracle", "oracle (told the goal, not adapted)"),
                        ("optimal", "optimal return (knows the goal)")):  # fmt: skip
        if label in results["returns"]:
            r = results["returns"][label]
            lines.append(f"| {name}, mamllib | {r['mean'][0]:.2f} ± {r['ci95'][0]:.2f} |"
                         + " |" * (len(steps) - 1))  # fmt: skip
    return "\n".join(lines)
