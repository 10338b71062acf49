"""The sinusoid dashboard of chapter 1.

``SinusoidDashboard``: draw a task, adapt the shipped MAML (second- or first-order) and
pre-trained networks to its K support points with α and a number of steps, and watch
the predictions and the query MSE step by step; or meta-train a new MAML live with the
chosen α, β, steps and order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from mamllib.evaluate import adaptation_path
from mamllib.experiments.sinusoid import SinusoidConfig
from mamllib.i18n import tr, tr_count, tr_label
from mamllib.maml import MAML
from mamllib.tasks.sinusoid import DIVERGED_MSE, QUERY_POINTS, SinusoidTasks
from mamllib.train import fit
from mamllib.viz.dashboard import FIRST_ORDER, Dashboard, diverged_text, group, status_table
from mamllib.viz.plots import plot_curves, plot_fit, plural


def diverged(mse: float) -> bool:
    """SGD with a fixed α diverged: an MSE of inf or NaN, or one beyond any sine's reach."""
    return not math.isfinite(mse) or mse > DIVERGED_MSE


def _fmt(mse: float) -> str:
    return diverged_text(mse) if diverged(mse) else f"{mse:.3f}"


@dataclass
class SinusoidView:
    """What the dashboard computed for the current settings (tests read this)."""

    amplitude: float
    phase: float
    k_shot: int
    inner_lr: float
    steps: int
    mse: dict[str, list[float]] = field(default_factory=dict)  # label -> query MSE after 0..steps
    predictions: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> y on the grid


class SinusoidDashboard(Dashboard):
    """Sliders for α, β, inner steps and K; first-/second-order; new task; meta-train live.

    Args:
        learners: label -> trained learner. Needs ``"MAML"`` and ``"pre-trained"``;
            ``"MAML (first-order)"`` is used when the order toggle says first-order.
        seed: seeds the sequence of tasks the "new task" button draws.
        train_iterations: default length of a live meta-training run.

    Raises:
        ValueError: ``learners`` lacks "MAML" or "pre-trained".
    """

    def __init__(self, learners: dict[str, MAML], seed: int = 0, train_iterations: int = 3000):
        missing = {"MAML", "pre-trained"} - set(learners)
        if missing:
            raise ValueError(
                f"the dashboard needs learners {sorted(missing)}; got {sorted(learners)}"
            )
        super().__init__()
        self.learners = dict(learners)
        self.tasks = SinusoidTasks()
        self.generator = torch.Generator().manual_seed(seed)
        self.grid = self.tasks.grid(200)
        self.live: MAML | None = None
        self.alpha = W.FloatLogSlider(value=0.01, base=10, min=-4, max=0, step=0.1,
                                      description=tr("α (inner lr)"), readout_format=".4f")  # fmt: skip
        self.beta = W.FloatLogSlider(value=1e-3, base=10, min=-5, max=-1, step=0.1,
                                     description=tr("β (outer lr)"), readout_format=".5f")  # fmt: skip
        self.steps = W.IntSlider(value=10, min=0, max=20, description=tr("inner steps"))
        self.k_shot = W.IntSlider(value=5, min=1, max=40, description=tr("K (support)"))
        self.order = W.ToggleButtons(options=[(tr(o), o) for o in ("second-order", "first-order")],
                                     value="second-order", description=tr("MAML order"))  # fmt: skip
        self.new_task = W.Button(description=tr("new task"), icon="refresh")
        self.iterations = W.BoundedIntText(value=train_iterations, min=100, max=100_000, step=500,
                                           description=tr("iterations"))  # fmt: skip
        self.train_button = W.Button(
            description=tr("meta-train"), icon="play", button_style="warning"
        )
        self.progress = W.IntProgress(
            value=0, min=0, max=train_iterations, description=tr("training")
        )
        self._draw_task()
        self.watch(self.alpha, self.steps, self.k_shot, self.order)
        self.new_task.on_click(lambda _: self.resample())
        self.train_button.on_click(lambda _: self.meta_train())
        self.update()

    # ----------------------------------------------------------------- state

    def _draw_task(self) -> None:
        """A new sine wave, and a pool of 40 support and 100 query points on it."""
        batch = self.tasks.sample(1, 40, QUERY_POINTS, generator=self.generator)
        self.amplitude, self.phase = batch.info["amplitude"], batch.info["phase"]
        self.x_pool, self.y_pool = batch.x_support[0], batch.y_support[0]
        self.x_query, self.y_query = batch.x_query[0], batch.y_query[0]

    def resample(self) -> SinusoidView:
        """Draw a new task and adapt to it."""
        self._draw_task()
        return self.update()

    def _shown(self) -> dict[str, MAML]:
        maml_label = FIRST_ORDER if self.order.value == "first-order" else "MAML"
        shown = {"pre-trained": self.learners["pre-trained"]}
        if maml_label in self.learners:
            shown[maml_label] = self.learners[maml_label]
        if self.live is not None:
            shown["MAML (your run)"] = self.live
        return shown

    @torch.no_grad()
    def compute(self) -> SinusoidView:
        """Adapt every shown learner to the current task's first K support points; no drawing."""
        k, alpha, steps = self.k_shot.value, self.alpha.value, self.steps.value
        xs, ys = self.x_pool[:k], self.y_pool[:k]
        view = SinusoidView(float(self.amplitude), float(self.phase), k, alpha, steps)
        for label, learner in self._shown().items():
            thetas = adaptation_path(learner.model, learner.params, xs, ys, learner.loss_fn,
                                     inner_lr=alpha, steps=steps, buffers=learner.buffer_dict)  # fmt: skip
            view.mse[label] = [
                F.mse_loss(learner(self.x_query, theta), self.y_query).item() for theta in thetas
            ]
            view.predictions[label] = learner(self.grid, thetas[-1])
        return view

    # ----------------------------------------------------------------- drawing

    def figure(self, view: SinusoidView | None = None) -> Figure:
        """The fits after the last step (left) and the query MSE after each step (right)."""
        view = view or self.view
        k = view.k_shot
        after = plural(view.steps, "step")
        gone = _diverged_labels(view)
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
        truth = self.tasks.function(self.grid, view.amplitude, view.phase)
        preds = {f"{label}, {after}" + (" (diverged)" if label in gone else ""): y
                 for label, y in view.predictions.items()}  # fmt: skip
        plot_fit(self.grid, truth, preds, self.x_pool[:k], self.y_pool[:k],
                 title=f"A = {view.amplitude:.2f}, φ = {view.phase:.2f}; α = {view.inner_lr:.4f}",
                 ax=left)  # fmt: skip
        left.set_ylim(-6, 6)
        # A diverged learner's MSE (up to 1e25, then inf) would stretch a log axis
        # until every other curve is flat: the axis stops at DIVERGED_MSE.
        plot_curves({label: (mse, None) for label, mse in view.mse.items()}, log=True,
                    diverged_above=DIVERGED_MSE, ax=right,
                    title=tr("query MSE of this task; ▲ diverged (> {limit:g})",
                            limit=DIVERGED_MSE))  # fmt: skip
        fig.tight_layout()
        return fig

    def status_text(self, view: SinusoidView) -> str:
        """The query MSE before and after the steps, and which learners diverged."""
        after = tr_count(view.steps, "step")
        gone = _diverged_labels(view)
        rows = {label: [_fmt(mse[0]), _fmt(mse[-1])] for label, mse in view.mse.items()}
        note = (
            tr(
                "<br><b>diverged</b> (query MSE > {limit:g}): {labels}; α = {alpha:.4g} is too "
                "large for {after} of plain SGD",
                limit=DIVERGED_MSE,
                alpha=view.inner_lr,
                labels=", ".join(map(tr_label, gone)),
                after=after,
            )
            if gone
            else ""
        )
        header = [tr("learner"), tr("MSE before"), tr("after {after}", after=after)]
        return status_table(header, rows) + note

    # ----------------------------------------------------------------- live training

    def train_config(self) -> SinusoidConfig:
        """The live run's config: the dashboard's α, β, order; inner steps ≥ 1 for training."""
        n = self.iterations.value
        return SinusoidConfig(
            inner_lr=self.alpha.value,
            outer_lr=self.beta.value,
            inner_steps=max(1, min(self.steps.value, 5)),
            first_order=self.order.value == "first-order",
            iterations=n,
            eval_every=n,
            eval_tasks=50,
            eval_steps=1,
            checkpoint_every=n,
            device="cpu",
        )

    def meta_train(self, config: SinusoidConfig | None = None) -> MAML:
        """Meta-train a new MAML with the dashboard's settings; it joins the plots."""
        config = config or self.train_config()
        self.progress.max, self.progress.value = config.iterations, 0
        self.train_button.disabled = True
        self.progress.description = tr("training")
        step = max(1, config.iterations // 100)

        def tick(iteration: int, loss: float) -> None:
            if iteration % step == 0 or iteration == config.iterations:
                self.progress.value = iteration
                self.progress.description = tr("loss {loss:.2f}", loss=loss)

        try:
            result = fit("sinusoid", config, progress=False, callback=tick)
        finally:
            self.train_button.disabled = False
        self.live = result.experiment.learner.eval()
        self.update()
        return self.live

    # ----------------------------------------------------------------- layout

    def controls(self) -> list[W.Widget]:
        test_time = group(tr("Adapt at test time"), self.alpha, self.steps, self.k_shot, self.order,
                          self.new_task)  # fmt: skip
        training = group(tr("Meta-train a new MAML live"), self.beta, self.iterations,
                         self.train_button, self.progress, note=tr("(α, β, order, steps ≤ 5)"))  # fmt: skip
        return [test_time, training]


def _diverged_labels(view: SinusoidView) -> list[str]:
    return [label for label, mse in view.mse.items() if any(map(diverged, mse))]
