"""Figure functions. Each takes ``ax=None`` (a new figure if omitted) and returns the axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

# One colour per learner across every figure of the course.
COLORS = {
    "MAML": "tab:red",
    "MAML (first-order)": "tab:orange",
    "MAML (α = 0.001)": "tab:brown",
    "pre-trained": "tab:blue",
    "pre-trained (best α)": "tab:cyan",
    "MAML (your run)": "tab:green",
    "scratch": "tab:gray",
    "truth": "black",
    "support": "tab:purple",
}


def color_for(label: str) -> str | None:
    """The colour of the longest ``COLORS`` key that ``label`` starts with."""
    keys = [key for key in COLORS if label.startswith(key)]
    return COLORS[max(keys, key=len)] if keys else None


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
    ax.set(xlabel="x", ylabel="y", title=f"{len(curves)} tasks: y = A sin(x + φ)")
    ax.legend(loc="upper right")
    return ax


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
    ax: Axes | None = None,
) -> Axes:
    """One task: the true function, its support (and query) points, and predictions.

    Args:
        predictions: label -> predicted y on ``x_grid``; colours come from
            ``color_for``, and labels ending in ", 0 steps" are dashed.
    """
    ax = _ax(ax)
    x_grid = _np(x_grid).ravel()
    ax.plot(x_grid, _np(y_true).ravel(), color=COLORS["truth"], lw=2, label=truth_label)
    for label, y in predictions.items():
        style = "--" if label.endswith(", 0 steps") else "-"
        ax.plot(x_grid, _np(y).ravel(), style, color=color_for(label), lw=1.8, label=label)
    if x_query is not None:
        ax.scatter(_np(x_query), _np(y_query), s=12, color="0.6", marker="x", label="query points")
    if x_support is not None:
        ax.scatter(_np(x_support), _np(y_support), s=45, color=COLORS["support"], zorder=5,
                   edgecolor="white", label=f"support (K={len(_np(x_support).ravel())})")  # fmt: skip
    ax.set(xlabel="x", ylabel="y")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return ax


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    paper: Mapping[str, Mapping[int, float]] | None = None,
    ylabel: str = "query MSE",
    title: str | None = None,
    log: bool = False,
    flagged: Mapping[str, Sequence[int]] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A metric against the number of inner gradient steps (the paper's Figure 3).

    Args:
        curves: label -> (mean per step 0..S, 95% CI half-width per step or None).
        paper: label -> {steps: value} reported in the paper, drawn as hollow markers.
        flagged: label -> steps to mark with a cross (e.g. where some tasks diverged).
    """
    ax = _ax(ax)
    for label, (mean, ci) in curves.items():
        mean = _np(mean)
        steps = np.arange(len(mean))
        color = color_for(label)
        ax.plot(steps, mean, "o-", ms=4, color=color, label=label)
        if ci is not None:
            ci = _np(ci)
            ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
        marks = list((flagged or {}).get(label, []))
        if marks:
            ax.plot(marks, mean[marks], "x", ms=10, mew=2, color=color)
    for label, points in (paper or {}).items():
        ax.plot(list(points), list(points.values()), "s", mfc="none", ms=9, mew=1.5,
                color=color_for(label), label=f"{label} (paper)")  # fmt: skip
    ax.set(xlabel="number of gradient steps", ylabel=ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
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
    colors = {"second-order": COLORS["MAML"], "first-order": COLORS["MAML (first-order)"]}
    for label, (steps, values) in curves.items():
        ax.plot(list(steps), list(values), "o-", ms=4, color=colors.get(label), label=label)
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(list(steps), low, high, color=colors.get(label), alpha=0.15, lw=0)
    ax.set(xlabel="inner steps", ylabel=ylabel)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
