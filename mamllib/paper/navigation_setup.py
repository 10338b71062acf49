"""2D navigation (the paper's Section 5.3): what Table 4 is measured on.

The paper's numbers, the two protocols (its text's and its code's step sizes, samplers and
shipped policies), the test goals, the exact optimum and the policies themselves: the
MAML and pre-trained ones of each protocol, the randomly initialised one and the oracle.
``mamllib.paper.navigation`` evaluates them; ``mamllib.paper.navigation_analysis``
explains where the numbers come from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mamllib.checkpoints import load_checkpoint
from mamllib.experiments import NavigationExperiment, load_learner, saved_config
from mamllib.experiments.navigation import NavigationConfig, build_navigation_policy
from mamllib.paths import CHECKPOINTS as FOLDER
from mamllib.rl.env import PointNavigation

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
RANDOM_INIT_SEED = 1  # the randomly initialised policy of the baseline
PLOT_ORDER = ("MAML", "pre-trained", "random", "oracle")


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
