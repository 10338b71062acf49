"""The Omniglot dashboard of chapter 2.

``OmniglotDashboard``: pick or draw an N-way K-shot task of the meta-test characters,
adapt the shipped MAML (second- or first-order), the pre-trained network (with a new
N-way head) and a randomly initialised network to its support set with α and a number
of steps, and step through the adaptation: the query images with their predicted labels
and per-class probabilities after each step, and the query accuracy after 0..S steps.

Its panels are drawn by ``mamllib.viz.images``. ``figure_query_batching``: the accuracy
against how the query images pass through the network (batch norm makes it transductive).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from mamllib.batch import TaskBatch
from mamllib.checks import check_positive_float
from mamllib.data import OmniglotData, load_omniglot
from mamllib.evaluate import adaptation_path
from mamllib.experiments.omniglot import OmniglotConfig
from mamllib.i18n import tr, tr_count, tr_label
from mamllib.maml import MAML
from mamllib.tasks.omniglot import OmniglotTasks, split_characters
from mamllib.viz.dashboard import FIRST_ORDER, Dashboard, diverged_text, group, status_table
from mamllib.viz.images import plot_accuracy_steps, plot_adaptation, plot_support
from mamllib.viz.plots import color_for, legend_below

REQUIRED = ("MAML", "pre-trained", "scratch")


def _short(alphabet: str, width: int = 13) -> str:
    name = alphabet.split("_(")[0].replace("_", " ")
    return name if len(name) <= width else name[: width - 1] + "…"


def _fraction(value: float) -> str:
    return f"{100 * value:.0f}%" if math.isfinite(value) else diverged_text()


@dataclass
class OmniglotView:
    """What the dashboard computed for the current settings (tests read this).

    ``accuracy`` has ``steps + 1`` entries per learner (NaN after a step where SGD
    diverged); ``predictions`` ``[N·Q]`` and ``probabilities`` ``[N·Q, N]`` are those
    after ``step`` inner updates.
    """

    task_index: int
    classes: list[int]  # character indices of the N classes
    rotations: list[int]  # multiples of 90°
    alphabets: list[str]
    inner_lr: float
    steps: int
    step: int
    maml: str  # which MAML checkpoint is shown: "MAML" or "MAML (first-order)"
    y_query: Tensor
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    predictions: dict[str, Tensor] = field(default_factory=dict)
    probabilities: dict[str, Tensor] = field(default_factory=dict)


class OmniglotDashboard(Dashboard):
    """Step through MAML's adaptation to a new Omniglot task, beside the baselines.

    Controls: the test task (a slider over ``num_tasks`` seeded tasks of the meta-test
    characters, and a "new task" button that jumps to a random one), α (log slider),
    the inner steps S, the step whose predictions are shown (0..S, with a play button)
    and MAML's order (second-order, or first-order when its checkpoint exists).

    Args:
        learners: label -> learner with an N-way head. Needs ``"MAML"``, ``"pre-trained"``
            (use ``few_shot_head`` on the pre-training checkpoint) and ``"scratch"`` (a
            randomly initialised network, ``baselines.scratch_learner``); ``"MAML (first-order)"``
            enables the order toggle. ``paper.omniglot.load_learners()`` loads them all.
        config: the experiment (N, K, split, default α and test steps); default
            ``OmniglotConfig()``, the paper's 5-way 1-shot.
        seed: which sequence of test tasks the slider indexes.
        k_query: query images per class shown and graded (the table uses 15; 5 keeps
            the grid readable).
        max_steps: the largest S the steps slider offers.
        num_tasks: test tasks the task slider reaches.
        data: a loaded ``OmniglotData`` (default: ``load_omniglot()``).

    Raises:
        ValueError: a learner is missing, is not a ``MAML`` or has not N outputs; a
            setting is not an int in its range; ``config`` is not an ``OmniglotConfig``.
    """

    def __init__(
        self,
        learners: Mapping[str, MAML],
        config: OmniglotConfig | None = None,
        seed: int = 0,
        k_query: int = 5,
        max_steps: int = 10,
        num_tasks: int = 1000,
        data: OmniglotData | None = None,
    ):
        config = OmniglotConfig() if config is None else config
        if not isinstance(config, OmniglotConfig):
            raise ValueError(f"config must be an OmniglotConfig, got {type(config).__name__}")
        if not isinstance(learners, Mapping):
            raise ValueError(
                f"learners must be a dict label -> MAML, got {type(learners).__name__}"
            )
        missing = [label for label in REQUIRED if label not in learners]
        if missing:
            raise ValueError(
                f"the dashboard needs learners {missing}; got {sorted(learners)} "
                "(mamllib.paper.omniglot.load_learners() loads the shipped ones and the scratch "
                "network)"
            )
        for label, learner in learners.items():
            if not isinstance(learner, MAML):
                raise ValueError(
                    f"learners[{label!r}] must be a MAML, got {type(learner).__name__}"
                )
            outputs = getattr(learner.model, "n_way", None)
            if outputs != config.n_way:
                raise ValueError(
                    f"learners[{label!r}] has {outputs} outputs but the tasks are {config.n_way}-way; "
                    f"give a pre-trained classifier an N-way head with few_shot_head(learner, {config.n_way})"
                )
        for name, value, low, high in (
            ("seed", seed, 0, None),
            ("k_query", k_query, 1, 20 - config.k_shot),
            ("max_steps", max_steps, 1, 100),
            ("num_tasks", num_tasks, 1, None),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
            if value < low or (high is not None and value > high):
                raise ValueError(f"{name} must be in [{low}, {high if high else '∞'}), got {value}")
        super().__init__()
        self.config = config
        self.learners = dict(learners)
        self.device = self.learners["MAML"].device
        self.seed, self.k_query, self.num_tasks = seed, k_query, num_tasks
        data = load_omniglot() if data is None else data
        self.alphabets = data.alphabets
        splits = split_characters(data, config.split, seed=config.split_seed, n_val=config.n_val)
        self.tasks = OmniglotTasks(data.float_images(self.device), splits["test"])
        self.generator = torch.Generator().manual_seed(seed)
        self._computed: tuple | None = None
        self._trajectories: dict[str, Tensor] = {}

        steps = min(config.eval_inner_steps, max_steps)
        has_fo = FIRST_ORDER in self.learners
        self.task = W.IntSlider(value=0, min=0, max=num_tasks - 1, description=tr("test task"))
        self.new_task = W.Button(description=tr("new task"), icon="refresh")
        label = {"description_width": "100px"}  # wide enough for "inner steps S"
        self.alpha = W.FloatLogSlider(value=config.inner_lr, base=10, min=-2, max=0.5, step=0.05,
                                      description=tr("α (inner lr)"), readout_format=".3f", style=label)  # fmt: skip
        self.steps = W.IntSlider(
            value=steps, min=0, max=max_steps, description=tr("inner steps S"), style=label
        )
        self.step = W.IntSlider(
            value=steps, min=0, max=steps, description=tr("show step"), style=label
        )
        self.play = W.Play(value=steps, min=0, max=steps, interval=900, description=tr("play"))
        W.jslink((self.play, "value"), (self.step, "value"))
        self.order = W.ToggleButtons(options=[(tr(o), o) for o in ("second-order", "first-order")],
                                     value="second-order", description=tr("MAML order"),
                                     disabled=not has_fo)  # fmt: skip
        self.order_note = W.HTML(
            ""
            if has_fo
            else tr("<i>first-order: no checkpoint (no {label!r} learner)</i>", label=FIRST_ORDER)
        )
        # Adapt when a slider is let go (or moved with a key), not at every position of a
        # drag: each value adapts three networks. A continuous slider would also send back
        # the browser's rounding of its value as soon as it is drawn (α = 0.4 is not on the
        # log grid: it became 0.398) and adapt again for nothing.
        for slider in (self.task, self.alpha, self.steps):
            slider.continuous_update = False
        self.watch(self.task, self.alpha, self.order, self.step)
        self.steps.observe(lambda change: self._on_steps(change["new"]), names="value")
        self.new_task.on_click(lambda _: self.resample())
        self.update()

    # ----------------------------------------------------------------- state

    def _on_steps(self, steps: int) -> None:
        """S changed: show its last step, and adapt once."""
        with self.hold():
            self.step.max = self.play.max = max(steps, 0)
            self.step.value = steps

    def task_batch(self, index: int | None = None) -> TaskBatch:
        """Test task number ``index`` (default: the slider's): the same task every time."""
        index = self.task.value if index is None else index
        generator = torch.Generator(self.device).manual_seed(self.seed * self.num_tasks + index)
        c = self.config
        return self.tasks.sample(1, c.n_way, c.k_shot, self.k_query, generator=generator)

    def resample(self) -> OmniglotView:
        """Jump to another random test task."""
        index = self.task.value
        while index == self.task.value and self.num_tasks > 1:
            index = int(torch.randint(self.num_tasks, (1,), generator=self.generator))
        self.task.value = index  # the slider's observer recomputes
        return self.view

    def _shown(self) -> dict[str, MAML]:
        maml = FIRST_ORDER if self.order.value == "first-order" else "MAML"
        if maml not in self.learners:
            maml = "MAML"
        return {maml: self.learners[maml], "pre-trained": self.learners["pre-trained"],
                "scratch": self.learners["scratch"]}  # fmt: skip

    @torch.no_grad()
    def _trajectory(self, learner: MAML, batch: TaskBatch, alpha: float, steps: int) -> Tensor:
        """``[steps + 1, N·Q, N]`` query probabilities after 0..steps inner updates."""
        thetas = adaptation_path(learner.model, learner.params, batch.x_support[0],
                                 batch.y_support[0], learner.loss_fn, inner_lr=alpha,
                                 steps=steps, buffers=learner.buffer_dict)  # fmt: skip
        xq = batch.x_query[0]
        return torch.stack([learner(xq, theta).softmax(-1) for theta in thetas]).cpu()

    def compute(self) -> OmniglotView:
        """Adapt the shown learners to the current task (reusing the last adaptation when
        only the shown step changed); no drawing."""
        alpha, steps, index = float(self.alpha.value), int(self.steps.value), self.task.value
        check_positive_float("α", alpha)
        shown = self._shown()
        key = (index, alpha, steps, tuple(shown))
        if self._computed != key:
            self.batch = self.task_batch(index)
            self._trajectories = {
                label: self._trajectory(learner, self.batch, alpha, steps)
                for label, learner in shown.items()
            }
            self._computed = key
        step = min(int(self.step.value), steps)
        y = self.batch.y_query[0].cpu()
        classes = self.batch.info["classes"][0].tolist()
        view = OmniglotView(
            task_index=index,
            classes=classes,
            rotations=self.batch.info["rotations"][0].tolist(),
            alphabets=[self.alphabets[c] for c in classes],
            inner_lr=alpha,
            steps=steps,
            step=step,
            maml=next(iter(shown)),
            y_query=y,
        )
        for label, probs in self._trajectories.items():
            finite = torch.isfinite(probs).all(-1).all(-1).tolist()
            correct = (probs.argmax(-1) == y).float().mean(-1)
            view.accuracy[label] = [
                a if ok else math.nan for a, ok in zip(correct.tolist(), finite)
            ]
            view.probabilities[label] = probs[step]
            view.predictions[label] = probs[step].argmax(-1)
        return view

    # ----------------------------------------------------------------- drawing

    def figure(self, view: OmniglotView | None = None) -> Figure:
        """The dashboard's figure for ``view`` (default: the current one)."""
        view = view or self.view
        n = self.config.n_way
        fig = plt.figure(figsize=(14, 4.3))
        grid = fig.add_gridspec(1, 4, width_ratios=[1.0, 1.45, 1.45, 2.3], wspace=0.25)
        names = [f"{k}: {_short(a)}, {90 * r}°"
                 for k, (a, r) in enumerate(zip(view.alphabets, view.rotations))]  # fmt: skip
        support = fig.add_subplot(grid[0])
        plot_support(self.batch.x_support[0], self.batch.y_support[0], names,
                     title=tr("task {task}: support (K = {k})", task=view.task_index, k=self.config.k_shot),
                     ax=support)  # fmt: skip
        for i, label in enumerate((view.maml, "pre-trained")):
            acc = view.accuracy[label][view.step]
            plot_adaptation(self.batch.x_query[0], view.y_query, view.probabilities[label],
                            title=tr("{label}, after {steps}: {accuracy}", label=tr_label(label),
                                     steps=tr_count(view.step, "step"), accuracy=_fraction(acc)),
                            ax=fig.add_subplot(grid[1 + i]))  # fmt: skip
        curve = fig.add_subplot(grid[3])
        plot_accuracy_steps(view.accuracy, marked_step=view.step, chance=1 / n, ax=curve)
        curve.set_title(tr("this task, α = {alpha:.3g}", alpha=view.inner_lr), fontsize=10)
        fig.subplots_adjust(left=0.085, right=0.99, top=0.9, bottom=0.12)
        return fig

    def status_text(self, view: OmniglotView) -> str:
        """The query accuracy before adapting, at the shown step and after S steps."""
        rows = {
            label: [_fraction(acc[0]), _fraction(acc[view.step]), _fraction(acc[-1])]
            for label, acc in view.accuracy.items()
        }
        header = [
            tr("query accuracy"),
            tr_count(0, "step"),
            tr("shown: step {step}", step=view.step),
            tr_count(view.steps, "step"),
        ]
        return status_table(header, rows) + tr(
            "<small>{n}-way {k}-shot, {q} query images per class; chance = 1/N</small>",
            n=self.config.n_way,
            k=self.config.k_shot,
            q=self.k_query,
        )

    # ----------------------------------------------------------------- layout

    def controls(self) -> list[W.Widget]:
        return [
            group(tr("Test task"), self.task, self.new_task),
            group(tr("Adapt at test time"), self.alpha, self.steps, W.HBox([self.step, self.play])),
            group(tr("Checkpoint"), self.order, self.order_note),
        ]


def figure_query_batching(results: Mapping, axes=None) -> Figure:
    """Query accuracy against how a task's query images pass through the network: a panel
    per setting, a group of bars per way of batching them, a bar per learner (± 95% CI).

    The same adapted network and the same query images in every group: only the images
    each one is normalised with differ (batch norm on batch statistics).

    Args:
        results: ``results/omniglot.json`` (``paper.omniglot.evaluate``), or anything with
            its ``"settings"``: setting -> ``"n_way"``, ``"steps"`` and ``"query_batching"``
            (learner -> batching -> mean and ``ci95``), and ``"num_tasks"``.
        axes: one axes per setting (default: a new figure).

    Returns:
        The figure.
    """
    settings = sorted(
        ((name, r) for name, r in results["settings"].items() if "query_batching" in r),
        key=lambda item: (item[1]["n_way"], item[1]["k_shot"]),
    )
    if not settings:
        raise ValueError("no setting in results has query_batching numbers")
    if axes is None:
        _, axes = plt.subplots(
            1, len(settings), figsize=(max(8, 6.5 * len(settings)), 4.8), squeeze=False
        )
    axes = np.asarray(axes).reshape(-1)
    for ax, (setting, r) in zip(axes, settings):
        learners = list(r["query_batching"])
        batchings = list(r["query_batching"][learners[0]])
        width = 0.8 / len(learners)
        for i, label in enumerate(learners):
            means = [100 * r["query_batching"][label][b]["mean"] for b in batchings]
            cis = [100 * r["query_batching"][label][b]["ci95"] for b in batchings]
            x = np.arange(len(batchings)) + (i - (len(learners) - 1) / 2) * width
            ax.bar(
                x, means, width, yerr=cis, label=tr_label(label), color=color_for(label), capsize=2
            )
            if label == "MAML":
                for xi, mean, ci in zip(x, means, cis):
                    ax.annotate(f"{mean:.1f}", (xi, mean + ci), xytext=(0, 2), fontsize=7,
                                textcoords="offset points", ha="center", rotation=90)  # fmt: skip
        for i, b in enumerate(batchings):  # the paper's protocol grey, the honest one green
            if "paper" in b or "non-transductive" in b:
                ax.axvspan(i - 0.45, i + 0.45, color="0.9" if "paper" in b else "#e3f4e3", zorder=0)
        ax.axhline(100 / r["n_way"], color="0.4", ls=":", lw=1.2, label=tr("chance (1/N)"))
        ax.set_xticks(np.arange(len(batchings)), [textwrap.fill(b, 18, break_on_hyphens=False, break_long_words=False) for b in batchings],
                      fontsize=8)  # fmt: skip
        ax.set_ylim(0, 112)
        ax.set_ylabel(tr("query accuracy (%)"))
        ax.set_title(
            tr(
                "Omniglot {setting}, after {steps}",
                setting=setting,
                steps=tr_count(r["steps"], "step"),
            ),
            fontsize=10,
        )
    title = tr(
        "The same adapted networks on the same query images, {tasks} test tasks:\nonly the "
        "images each query image passes through batch norm with differ",
        tasks=results["num_tasks"],
    )
    return legend_below(axes[0], title, bottom=0.06, title_size=11)
