"""Figure functions. Each takes ``ax=None`` (a new figure if omitted) and returns the axes."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from mamllib.cost import increments, series

# One colour per learner across every figure of the course.
COLORS = {
    "MAML": "tab:red",
    "MAML (first-order)": "tab:orange",
    "MAML (α = 0.001)": "tab:brown",
    "pre-trained": "tab:blue",
    "pre-trained (best α)": "tab:cyan",
    "MAML (your run)": "tab:green",
    "scratch": "tab:gray",
    "random": "tab:gray",
    "truth": "black",
    "support": "tab:purple",
}
# And one line style and marker per learner, so that curves stay apart in greyscale and
# for colour-blind readers (red, orange and brown differ mostly in hue). Hollow squares
# are kept for the paper's numbers and crosses for flagged points.
STYLES = {
    "MAML": ("-", "o"),
    "MAML (first-order)": ("--", "v"),
    "MAML (α = 0.001)": ("-.", "^"),
    "MAML (your run)": ((0, (6, 2)), "P"),
    "pre-trained": (":", "D"),
    "pre-trained (best α)": ((0, (3, 1, 1, 1, 1, 1)), "<"),
    "scratch": ("-.", "p"),
    "random": ("-.", "p"),
}


def _longest_prefix(label: str, table: Mapping[str, object]) -> str | None:
    keys = [key for key in table if label.startswith(key)]
    return max(keys, key=len) if keys else None


def color_for(label: str) -> str | None:
    """The colour of the longest ``COLORS`` key that ``label`` starts with."""
    key = _longest_prefix(label, COLORS)
    return COLORS[key] if key else None


def style_for(label: str) -> dict:
    """Colour, line style and marker of a learner's curve (keywords for ``ax.plot``)."""
    key = _longest_prefix(label, STYLES)
    linestyle, marker = STYLES[key] if key else ("-", "o")
    return {"color": color_for(label), "linestyle": linestyle, "marker": marker}


def plural(n: int, word: str) -> str:
    """``"1 step"``, ``"3 steps"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ax(ax: Axes | None, figsize: tuple[float, float] = (5, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_sinusoid_tasks(
    amplitude, phase, x_range: tuple[float, float] = (-5, 5), ax: Axes | None = None
) -> Axes:
    """Several tasks of the sinusoid distribution, and their mean."""
    ax = _ax(ax)
    x = np.linspace(*x_range, 300)
    curves = _np(amplitude)[:, None] * np.sin(x[None, :] + _np(phase)[:, None])
    for y in curves:
        ax.plot(x, y, lw=1, alpha=0.7)
    ax.plot(x, curves.mean(0), color="black", lw=2.5, label="mean over these tasks")
    ax.set(xlabel="x", ylabel="y", title=f"{plural(len(curves), 'task')}: y = A sin(x + φ)")
    ax.legend(loc="upper right")
    return ax


_STEPS = re.compile(r", (\d+) steps?\b")
# Before adapting, after the first steps, after the last one: told apart by the line style
# too, since one learner's curves share its colour.
_STEP_STYLES = {"first": ("--", 1.5), "middle": (":", 2.2), "last": ("-", 2.0)}


def _step_styles(labels: Sequence[str]) -> dict[str, tuple[str, float]]:
    """label -> (line style, width): a learner's fewest steps dashed, its most solid, and
    those in between dotted. A learner with one curve gets a solid line, or a dashed one
    at 0 steps."""
    steps = {label: int(m.group(1)) for label in labels if (m := _STEPS.search(label))}
    styles = {}
    for label in labels:
        if label not in steps:
            styles[label] = _STEP_STYLES["last"]
            continue
        learner = label[: _STEPS.search(label).start()]
        same = sorted(n for other, n in steps.items() if other.startswith(learner + ","))
        if steps[label] == same[-1] and (len(same) > 1 or steps[label] > 0):
            styles[label] = _STEP_STYLES["last"]
        elif steps[label] == same[0]:
            styles[label] = _STEP_STYLES["first"]
        else:
            styles[label] = _STEP_STYLES["middle"]
    return styles


def plot_fit(
    x_grid,
    y_true,
    predictions: Mapping[str, object],
    x_support=None,
    y_support=None,
    x_query=None,
    y_query=None,
    title: str | None = None,
    truth_label: str = "ground truth",
    legend: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """One task: the true function, its support (and query) points, and predictions.

    Args:
        predictions: label -> predicted y on ``x_grid``; colours come from ``color_for``.
            Labels ending in ", S steps" are styled by S within one learner: the fewest
            steps (0: before adapting) dashed, the most solid, any in between dotted.
        legend: draw the legend, outside the axes on the right (it would hide the curve).
    """
    ax = _ax(ax)
    x_grid = _np(x_grid).ravel()
    ax.plot(x_grid, _np(y_true).ravel(), color=COLORS["truth"], lw=2, label=truth_label)
    styles = _step_styles(list(predictions))
    for label, y in predictions.items():
        style, width = styles[label]
        ax.plot(x_grid, _np(y).ravel(), linestyle=style, color=color_for(label), lw=width,
                label=label)  # fmt: skip
    if x_query is not None:
        ax.scatter(_np(x_query), _np(y_query), s=12, color="0.6", marker="x", label="query points")
    if x_support is not None:
        ax.scatter(_np(x_support), _np(y_support), s=45, color=COLORS["support"], zorder=5,
                   edgecolor="white", label=f"support (K={len(_np(x_support).ravel())})")  # fmt: skip
    ax.set(xlabel="x", ylabel="y")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    paper: Mapping[str, Mapping[int, float]] | None = None,
    ylabel: str = "query MSE",
    title: str | None = None,
    log: bool = False,
    flagged: Mapping[str, Sequence[int]] | None = None,
    diverged_above: float | None = None,
    legend: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """A metric against the number of inner gradient steps (the paper's Figure 3).

    Args:
        curves: label -> (mean per step 0..S, 95% CI half-width per step or None).
        paper: label -> {steps: value} reported in the paper, drawn as hollow squares.
        flagged: label -> steps to mark with a cross (e.g. where some tasks diverged).
        diverged_above: values above it (or inf/NaN) count as diverged: the y-axis stops
            at this value, so that one diverged learner (up to 1e25, then inf) cannot
            flatten the others, and diverged values are drawn on that top edge as ▲ with
            the word "diverged".
        legend: draw the legend (a figure of several panels may draw one for all).
    """
    ax = _ax(ax)
    top = diverged_above
    first_diverged = []
    for label, (mean, ci) in curves.items():
        mean = _np(mean).astype(float)
        steps = np.arange(len(mean))
        style = style_for(label)
        color = style["color"]
        if top is not None:
            diverged = ~np.isfinite(mean) | (mean > top)
            mean = np.where(diverged, top, mean)
        ax.plot(steps, mean, ms=4, label=label, **style)
        if ci is not None:
            ci = _np(ci)
            ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
        marks = list((flagged or {}).get(label, []))
        if marks:
            ax.plot(marks, mean[marks], "x", ms=10, mew=2, color=color)
        if top is not None and diverged.any():
            ax.plot(steps[diverged], mean[diverged], "^", ms=9, color=color, mec="black",
                    mew=0.6, clip_on=False, zorder=5)  # fmt: skip
            first_diverged.append((int(steps[diverged][0]), label, color))
    last = max(len(mean) for mean, _ in curves.values()) - 1
    for i, (step, label, color) in enumerate(first_diverged):
        right = step > last / 2  # keep the words inside the axes
        ax.annotate(f"{label} diverged", (step, top), xytext=(-6 if right else 6, -6 - 11 * i),
                    textcoords="offset points", fontsize=8, color=color, va="top",
                    ha="right" if right else "left")  # fmt: skip
    for label, points in (paper or {}).items():
        ax.plot(list(points), list(points.values()), "s", mfc="none", ms=9, mew=1.5,
                color=color_for(label), label=f"{label} (paper)")  # fmt: skip
    ax.set(xlabel="number of gradient steps", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if log:
        ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    return ax


def plot_training(
    history: Sequence[Mapping], label: str, key: str = "train_loss", ax: Axes | None = None
) -> Axes:
    """A logged quantity against the meta-iteration, from a checkpoint's history."""
    ax = _ax(ax)
    its = [h["iteration"] for h in history]
    values = [h[key][-1] if isinstance(h[key], list) else h[key] for h in history]
    ax.plot(its, values, color=color_for(label), label=label)
    ax.set(
        xlabel="meta-iteration",
        ylabel={"train_loss": "training loss", "val_mse": "validation MSE"}.get(key, key),
    )
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_cost_vs_steps(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    ylabel: str,
    bands: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A cost of one meta-iteration against the number of inner steps.

    Args:
        curves: ``"second-order"`` / ``"first-order"`` -> (steps, values), as
            ``mamllib.cost.series`` returns them.
        ylabel: what the values are (e.g. "time per meta-iteration (ms)").
        bands: label -> (low, high) per step, shaded (e.g. the fastest and slowest sample).
    """
    ax = _ax(ax)
    learners = {"second-order": "MAML", "first-order": "MAML (first-order)"}
    for label, (steps, values) in curves.items():
        style = style_for(learners.get(label, label))
        ax.plot(list(steps), list(values), ms=4, label=label, **style)
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(list(steps), low, high, color=style["color"], alpha=0.15, lw=0)
    ax.set(xlabel="inner steps", ylabel=ylabel)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_cost(report: Mapping[str, Any], axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Two panels: time and saved memory per meta-iteration against the inner steps.

    Args:
        report: what ``mamllib.cost.measure`` returns (or its JSON, ``results/cost.json``).
        axes: the two axes to draw on (a new 11 × 3.8 in figure if omitted).

    Returns:
        The two axes: time on the left, saved memory on the right.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    low, high = series(report, "ms_min"), series(report, "ms_max")
    plot_cost_vs_steps(
        series(report, "ms_per_iter"),
        "time per meta-iteration (ms)",
        bands={order: (low[order][1], high[order][1]) for order in low},
        ax=axes[0],
    )
    saved = series(report, "saved_mb")
    plot_cost_vs_steps(saved, "memory saved for the backward (MB)", ax=axes[1])
    so = saved["second-order"][1]
    if len(so) > 1:
        slope = statistics.median(increments(so))
        axes[1].set_title(f"second-order: +{slope:.2f} MB per step", fontsize=10)
    axes[0].set_title(report["hardware"], fontsize=9)
    fig = axes[0].figure
    fig.suptitle(
        f"What a MAML meta-iteration costs — {report['workload']}: {report['description']}"
        f"\nper-task {report['path']!r} path; time: the median, shaded from the fastest to the slowest"
        f" of {report['settings']['repeats']} meta-iterations",
        fontsize=10,
    )
    fig.tight_layout()
    return axes
