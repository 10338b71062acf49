"""2D navigation (the paper's Section 5.3): Table 4 and Figure 5, reproduced.

The shipped MAML, pre-trained, randomly initialised (and oracle) policies are evaluated on
the same 40 test goals: the return after 0..3 policy-gradient steps, 40 episodes per goal
and step. ``python -m mamllib.reproduce navigation`` writes the numbers to
``results/navigation.json``, the paper's Figure 5 to ``figures/navigation_returns.png``
and each policy's paths on one goal to ``figures/navigation_trajectories.png``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
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
from mamllib.rl.env import PointNavigation
from mamllib.rl.rollout import rollout
from mamllib.viz.figures import (
    figure_navigation_paths,
    figure_navigation_returns,
    figure_step_size_sweep,
)

# Table 4 of Finn et al. (2017): average return after 0, 1, 2, 3 gradient steps.
PAPER_TABLE4 = {
    "MAML": (-40.41, -11.68, -3.33, -3.23),
    "pre-trained": (-40.81, -19.73, -11.72, -8.47),
    "random": (-82.7, -58.0, -53.8, -46.8),  # read off the paper's Figure 5 ("about")
}


@dataclass(frozen=True)
class Protocol:
    """One way to measure Table 4: the test step sizes and the policies trained for them.

    Attributes:
        title: what the protocol follows, in a few words (figure and table titles).
        inner_lrs: α of the 1st, 2nd, 3rd test step.
        checkpoints: label ("MAML", "pre-trained") -> the shipped policy's file.
        sampler: how each test step's episodes are drawn (``adaptation_returns``):
            ``"episodes"``, 40 episodes per goal; ``"steps"``, rllab's sampler, 40
            environments per goal restarting until 4,000 steps of finished episodes.
    """

    title: str
    inner_lrs: tuple[float, ...]
    checkpoints: dict[str, Path]
    sampler: str = "episodes"


# The paper's text (Appendix A.2): α = 0.1 in training and for the first test step, then
# 0.05; 40 trajectories per test step; the pre-trained policy trained "on all of the
# tasks" (we use the same TRPO as MAML's, without the inner step).
# Its released code (cbfinn/maml_rl): the MAML policy meta-trained with α = 0.5 (100
# iterations, 20 goals per meta-batch, maml_trpo_point.py); the pre-trained policy by the
# same script with use_maml=False, which replaces TRPO by one Adam step (1e-3) per
# iteration (maml_npo.py); at test (test_maml_point.py), vanilla policy gradient with a
# first step of 0.5, then 0.25, on batches of 4,000 steps from rllab's VectorizedSampler
# (40 environments per goal that restart their episodes; the return is the mean over the
# finished episodes, so episodes that end early at the goal count more often).
PROTOCOLS = {
    "text": Protocol("the paper's text: α = 0.1, then 0.05", (0.1, 0.05, 0.05), {
        "MAML": FOLDER / "navigation_maml.pt",
        "pre-trained": FOLDER / "navigation_pretrain.pt",
    }),
    "code": Protocol("the paper's code: α = 0.5, then 0.25", (0.5, 0.25, 0.25), {
        "MAML": FOLDER / "navigation_maml_code.pt",
        "pre-trained": FOLDER / "navigation_pretrain_code.pt",
    }, sampler="steps"),
}  # fmt: skip
CHECKPOINTS = {**PROTOCOLS["text"].checkpoints, "oracle": FOLDER / "navigation_oracle.pt"}
TEST_SEED = 1  # the paper's code's test goals: numpy seed 1 (``test_goals``)
NOISE_SEED = 4  # action noise of the evaluation episodes
PLAIN_NOISE_SEED = 99  # action noise of ``sampler_bias``'s plain re-measurement
RANDOM_INIT_SEED = 1  # the randomly initialised policy of the baseline
PLOT_ORDER = ("MAML", "pre-trained", "random", "oracle")
# α of the single step in the step-size sweep (``step_size_sweep``).
SWEEP_ALPHAS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def test_goals(num_goals: int = 40, seed: int = TEST_SEED) -> Tensor:
    """The test goals of the paper's code, ``[num_goals, 2]``: ``np.random.seed(1)``, then
    ``np.random.uniform(-0.5, 0.5, size=(40, 2))`` (``maml_examples/test_maml_point.py``).

    Training and validation goals come from torch generators, a different stream.
    """
    rng = np.random.RandomState(seed)
    return torch.tensor(rng.uniform(-0.5, 0.5, size=(num_goals, 2)), dtype=torch.float32)


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


def random_policy(config: NavigationConfig, device: torch.device | str = "cpu") -> nn.Module:
    """The randomly initialised baseline: a fresh policy as the paper's code built it.

    rllab's default ``GaussianMLPPolicy`` (tanh hidden layers, Xavier-uniform weights,
    σ = 1), which ``test_maml_point.py`` creates for its random baseline, with the seed
    ``RANDOM_INIT_SEED``. (With ReLU layers, as the MAML policy has, the same steps gain
    about half as much: ``notebooks/03_rl_navigation.ipynb``, section 8.)
    """
    torch.manual_seed(RANDOM_INIT_SEED)
    fresh = replace(config, method="maml", oracle=False, activation="tanh")
    return build_navigation_policy(fresh, device).eval()


def load_learners(
    device: torch.device | str = "cpu", protocol: str = "text"
) -> dict[str, tuple[nn.Module, NavigationConfig]]:
    """One protocol's MAML and pre-trained policies, the random one (and the oracle).

    The random policy (``random_policy``) gets the MAML run's config, so it is adapted
    with the same steps.

    Returns:
        label -> ``(policy, config)``, in ``PLOT_ORDER``.

    Raises:
        ValueError: an unknown protocol.
        FileNotFoundError: the protocol's MAML policy is not shipped.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: valid are {sorted(PROTOCOLS)}")
    files = {**PROTOCOLS[protocol].checkpoints, "oracle": CHECKPOINTS["oracle"]}
    found = {}
    for label, path in files.items():
        if path.is_file():
            policy, config, _ = load_policy(path, device)
            found[label] = (policy, config)
    if "MAML" not in found:
        raise FileNotFoundError(f"no MAML navigation checkpoint at {files['MAML']}")
    config = found["MAML"][1]
    found["random"] = (random_policy(config, device), config)
    return dict(sorted(found.items(), key=lambda kv: list(PLOT_ORDER).index(kv[0])))


def checkpoint_summary(path: Path) -> dict[str, Any]:
    """File, iterations, training time, hardware and commands of one shipped policy."""
    ckpt = load_checkpoint(path)
    return {
        "file": path.name,
        "iteration": ckpt["iteration"],
        "iterations_planned": ckpt["config"]["iterations"],
        "inner_lr": ckpt["config"]["inner_lr"],
        "fvp_fraction": ckpt["config"]["fvp_fraction"],
        "wall_time_s": ckpt["wall_time_s"],
        "trained_on": ckpt["provenance"]["hardware"],
        "commands": [s["command"] for s in ckpt.get("sessions", [])],
    }


def evaluate(
    num_goals: int = 40,
    device: torch.device | str = "cpu",
    progress: bool = False,
    *,
    episodes: int = 40,
    protocols: Sequence[str] = tuple(PROTOCOLS),
    sweep: bool = True,
) -> dict[str, Any]:
    """Table 4 under each protocol: every policy's mean return after 0..3 steps.

    Under each protocol, its MAML, pre-trained and the random policy take its steps
    (``Protocol.inner_lrs``; ``episodes`` fresh episodes per goal and step, or with
    ``Protocol.sampler="steps"`` as many environments per goal) on the same test goals
    with the same action noise. A trained oracle (told the goal), if shipped,
    is not adapted; ``"optimal"`` is the best return possible on each goal
    (``optimal_returns``), the ceiling the paper's oracle line stands for. Then, with
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
    if "code" in protocols:
        results["sampler_bias"] = sampler_bias(num_goals, episodes, "code", device)
    if sweep:
        results["step_size_sweep"] = step_size_sweep(num_goals, episodes, device=device)
    return results


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
