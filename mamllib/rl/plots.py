"""Figures of the navigation chapter. Each takes ``ax=None`` and returns the axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from torch import Tensor

from mamllib.plots import color_for


def _ax(ax: Axes | None, figsize=(4, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_paths(
    positions: Tensor,
    goal: Sequence[float] | Tensor,
    *,
    color: str | None = None,
    max_paths: int = 10,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Episodes of one goal on the plane: start ●, goal ★, the goal square dotted.

    Args:
        positions: ``[E, H + 1, 2]`` paths from the origin (``Trajectories.positions[i]``).
        goal: ``(x, y)``.
        max_paths: draw at most this many episodes.
    """
    ax = _ax(ax)
    pos = positions.detach().cpu().numpy()[:max_paths]
    for path in pos:
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1, alpha=0.6)
    gx, gy = (float(v) for v in goal)
    ax.plot([-0.5, 0.5, 0.5, -0.5, -0.5], [-0.5, -0.5, 0.5, 0.5, -0.5], ":", color="0.6", lw=1)
    ax.plot(0, 0, "o", color="black", ms=5)
    ax.plot(gx, gy, "*", color="gold", mec="black", ms=15, zorder=5)
    lim = max(0.6, float(np.abs(pos).max()) + 0.05) if pos.size else 0.6
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_returns(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    paper: Mapping[str, Sequence[float]] | None = None,
    oracle: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Average return against gradient steps (the paper's Figure 5).

    Args:
        curves: label -> (mean return per step 0..S, 95% CI half-width or None).
        paper: label -> the paper's returns per step, drawn as hollow squares.
        oracle: the best return possible (knowing the goal), a dashed line.
    """
    ax = _ax(ax, (5.5, 4))
    for label, (mean, ci) in curves.items():
        mean = np.asarray(mean, dtype=float)
        steps = np.arange(len(mean))
        color = color_for(label) or ("tab:gray" if label.startswith("random") else None)
        ax.plot(steps, mean, "o-", ms=4, color=color, label=label)
        if ci is not None:
            ci = np.asarray(ci, dtype=float)
            ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
    for label, values in (paper or {}).items():
        color = color_for(label) or ("tab:gray" if label.startswith("random") else None)
        ax.plot(range(len(values)), values, "s", mfc="none", ms=9, mew=1.5, color=color,
                label=f"{label} (paper)")  # fmt: skip
    if oracle is not None:
        ax.axhline(oracle, ls="--", color="black", lw=1, label="optimal (knows the goal)")
    ax.set(xlabel="number of gradient steps", ylabel="average return")
    ax.set_xticks(range(max(len(m) for m, _ in curves.values())))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
