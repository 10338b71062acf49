"""The 2D-navigation dashboard of chapter 3: set a goal, adapt each policy, watch its paths.

``NavigationDashboard``: goal sliders (or a random goal), α for the first and the later
steps, the number of steps; shows the episodes of the MAML, pre-trained and randomly
initialised policies after 0, 1, ..., S policy-gradient steps on that goal, and the
average return per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from mamllib.checks import check_int
from mamllib.experiments.navigation import NavigationConfig, evaluate_policy
from mamllib.i18n import tr, tr_count, tr_label
from mamllib.rl.env import sample_goals
from mamllib.viz.dashboard import Dashboard, group
from mamllib.viz.plots import color_for, path_limit, plot_paths, plot_returns, plural

SHOWN = ("MAML", "pre-trained", "random")


@dataclass
class NavigationView:
    """What the dashboard computed for the current settings (tests and exercises read it)."""

    goal: tuple[float, float]
    inner_lrs: tuple[float, ...]
    episodes: int
    returns: dict[str, list[float]] = field(default_factory=dict)  # label -> return per step
    paths: dict[str, list[torch.Tensor]] = field(
        default_factory=dict
    )  # label -> [E, H+1, 2] per step


class NavigationDashboard(Dashboard):
    """Goal sliders, "random goal", α sliders and steps; paths and returns per step.

    Args:
        policies: label -> (policy, config), as ``paper.navigation.load_learners()`` returns them;
            needs "MAML", "pre-trained" and "random".
        seed: seeds the random goals the button draws.
        noise_seed: the action noise of the episodes; the same for every policy and
            setting, so differences come from the policies, not from luck.
        episodes: episodes per step, 2 to 40 (the slider's range; the paper's evaluation: 40).

    Raises:
        ValueError: a policy is missing or not a (policy, NavigationConfig) pair; a seed
            is negative; ``episodes`` is outside [2, 40].
        TypeError: a seed or ``episodes`` is not an int.
    """

    def __init__(self, policies: dict[str, tuple[nn.Module, NavigationConfig]], seed: int = 0,
                 noise_seed: int = 0, episodes: int = 20):  # fmt: skip
        missing = set(SHOWN) - set(policies)
        if missing:
            raise ValueError(
                f"the dashboard needs policies {sorted(missing)}; got {sorted(policies)}"
            )
        for label in SHOWN:
            entry = policies[label]
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], nn.Module)
                    and isinstance(entry[1], NavigationConfig)):  # fmt: skip
                raise ValueError(
                    f"policies[{label!r}] must be a (policy, NavigationConfig) pair, as "
                    "mamllib.paper.navigation.load_learners() returns them; got "
                    f"{type(entry).__name__}"
                )
        check_int("seed", seed, 0)
        check_int("noise_seed", noise_seed, 0)
        check_int("episodes", episodes, 2)
        if episodes > 40:  # the slider would silently clamp it
            raise ValueError(f"episodes must be in [2, 40], got {episodes}")
        super().__init__()
        self.policies = {label: policies[label] for label in SHOWN}
        self.generator = torch.Generator().manual_seed(seed)
        self.noise_seed = noise_seed
        self.goal_x = W.FloatSlider(
            value=0.3, min=-0.5, max=0.5, step=0.01, description=tr("goal x")
        )
        self.goal_y = W.FloatSlider(
            value=-0.2, min=-0.5, max=0.5, step=0.01, description=tr("goal y")
        )
        self.random_goal = W.Button(description=tr("random goal"), icon="refresh")
        self.alpha = W.FloatLogSlider(value=0.1, base=10, min=-3, max=0, step=0.05,
                                      description=tr("α step 1"), readout_format=".3f")  # fmt: skip
        self.alpha_later = W.FloatLogSlider(value=0.05, base=10, min=-3, max=0, step=0.05,
                                            description=tr("α later"), readout_format=".3f")  # fmt: skip
        self.steps = W.IntSlider(value=3, min=0, max=5, description=tr("steps"))
        self.episodes = W.IntSlider(value=episodes, min=2, max=40, description=tr("episodes"))
        # The gradient steps refuse α = 0: to see θ without adapting, look at 0 steps.
        smallest, largest = (self.alpha.base**e for e in (self.alpha.min, self.alpha.max))
        self.alpha_note = W.HTML(
            tr(
                "<small>α from {smallest:.3g} (the smallest: θ barely moves) to {largest:.3g}; "
                "θ before adapting: the 0-step panels</small>",
                smallest=smallest,
                largest=largest,
            )
        )
        self.random_goal.on_click(lambda _: self.draw_goal())
        # Adapt when a slider is let go (or moved with a key), not at every position of a
        # drag: each value adapts every policy. A continuous slider would also send back the
        # browser's rounding of its value as soon as it is drawn (0.05 on α's log grid
        # became 0.0501, 0.3 became 0.30000000000000004) and adapt again for nothing.
        sliders = (self.goal_x, self.goal_y, self.alpha, self.alpha_later, self.steps,
                   self.episodes)  # fmt: skip
        for slider in sliders:
            slider.continuous_update = False
        self.watch(*sliders)
        self.update()

    def draw_goal(self) -> None:
        """A goal from the task distribution; moving both sliders re-adapts once."""
        x, y = sample_goals(1, self.generator)[0].tolist()
        with self.hold():
            self.goal_x.value, self.goal_y.value = round(x, 2), round(y, 2)

    @property
    def inner_lrs(self) -> tuple[float, ...]:
        """α of each step: "α step 1", then "α later"."""
        later = [self.alpha_later.value] * max(0, self.steps.value - 1)
        return tuple([self.alpha.value, *later][: self.steps.value])

    def compute(self) -> NavigationView:
        """Adapt every policy to the current goal; no drawing."""
        goal = torch.tensor([[self.goal_x.value, self.goal_y.value]])
        view = NavigationView((self.goal_x.value, self.goal_y.value), self.inner_lrs,
                              self.episodes.value)  # fmt: skip
        for label, (policy, config) in self.policies.items():
            out = evaluate_policy(policy, config, goal, seed=self.noise_seed,
                                  episodes=self.episodes.value, inner_lrs=self.inner_lrs,
                                  keep_trajectories=True)  # fmt: skip
            view.returns[label] = out.returns[0].tolist()
            view.paths[label] = [traj.positions[0] for traj in out.trajectories]
        return view

    # ----------------------------------------------------------------- drawing

    def figure(self, view: NavigationView | None = None) -> Figure:
        """A row of path panels per policy (after 0..S steps), the returns on the right."""
        view = view or self.view
        steps = len(view.inner_lrs)
        # One scale for every panel, so that paths compare by eye across steps and policies.
        lim = path_limit(p for paths in view.paths.values() for p in paths)
        fig = plt.figure(figsize=(2.4 * (steps + 1) + 4.2, 2.4 * len(view.paths)))
        grid = fig.add_gridspec(len(view.paths), steps + 2, width_ratios=[1] * (steps + 1) + [1.8])
        for row, (label, paths) in enumerate(view.paths.items()):
            for k, positions in enumerate(paths):
                ax = fig.add_subplot(grid[row, k])
                name = tr_label(f"{label}, {plural(k, 'step')}")
                plot_paths(positions, view.goal, color=color_for(label), lim=lim,
                           title=f"{name}: {view.returns[label][k]:.1f}", ax=ax)  # fmt: skip
                if k == 0:
                    ax.set_ylabel("y")
                if row == len(view.paths) - 1:
                    ax.set_xlabel("x")
        ax = fig.add_subplot(grid[:, -1])
        plot_returns({label: (r, None) for label, r in view.returns.items()}, ax=ax,
                     title=f"α = {', '.join(f'{a:.3g}' for a in view.inner_lrs) or '—'}")  # fmt: skip
        fig.tight_layout()
        return fig

    def status_text(self, view: NavigationView) -> str:
        """Each policy's average return after the last step."""
        after = tr_count(len(view.inner_lrs), "step")
        return tr("average return after {after}: ", after=after) + ", ".join(
            f"<b>{tr_label(label)}</b> {r[-1]:.1f}" for label, r in view.returns.items()
        )

    # ----------------------------------------------------------------- layout

    def controls(self) -> list[W.Widget]:
        goal = group(tr("task: the goal"), self.goal_x, self.goal_y, self.random_goal)
        adapt = group(tr("adaptation"), self.alpha, self.alpha_later, self.steps, self.episodes,
                      self.alpha_note)  # fmt: skip
        return [goal, adapt]
