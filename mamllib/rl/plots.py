"""Figures of the navigation chapter. Each takes ``ax=None`` and returns the axes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from torch import Tensor

from mamllib.plots import color_for, style_for


def _ax(ax: Axes | None, figsize=(4, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


GOAL_SQUARE = 0.5  # goals are drawn from [-0.5, 0.5]²
# The largest half-width of panels that are compared: room for the goal square and for the
# learned policies' paths around it. A random policy's walks reach ±2.5; a frame that held
# them would shrink the paths that matter to a few pixels, so they are cut at the frame.
MAX_LIMIT = 1.2


def path_limit(
    positions: Iterable[Tensor], max_paths: int = 10, cap: float | None = MAX_LIMIT
) -> float:
    """One half-width for panels that are compared: covers the goal square and the first
    ``max_paths`` paths of every ``[E, H + 1, 2]`` tensor (with a margin, rounded up to
    0.1), but at most ``cap``."""
    reach = GOAL_SQUARE
    for pos in positions:
        pos = pos[:max_paths]
        if pos.numel():
            reach = max(reach, float(pos.detach().abs().max()))
    lim = float(np.ceil((reach + 0.05) * 10 - 1e-9) / 10)
    return lim if cap is None else min(lim, cap)


def plot_paths(
    positions: Tensor,
    goal: Sequence[float] | Tensor,
    *,
    color: str | None = None,
    max_paths: int = 10,
    title: str | None = None,
    lim: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Episodes of one goal on the plane: start ●, goal ★, the goal square dotted.

    Args:
        positions: ``[E, H + 1, 2]`` paths from the origin (``Trajectories.positions[i]``).
        goal: ``(x, y)``.
        max_paths: draw at most this many episodes.
        lim: the axes show ``[-lim, lim]²``; give panels that are compared the same one
            (``path_limit``). Paths that leave it are cut, and counted in the corner.
            Default: this panel's own, to fit its paths.
    """
    ax = _ax(ax)
    pos = positions.detach().cpu().numpy()[:max_paths]
    for path in pos:
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1, alpha=0.6)
    gx, gy = (float(v) for v in goal)
    g = GOAL_SQUARE
    ax.plot([-g, g, g, -g, -g], [-g, -g, g, g, -g], ":", color="0.6", lw=1)
    ax.plot(0, 0, "o", color="black", ms=5)
    # Under the paths, so that the star does not hide the paths that reach it.
    ax.plot(gx, gy, "*", color="gold", mec="black", ms=13, zorder=1.5)
    if lim is None:
        lim = max(0.6, float(np.abs(pos).max()) + 0.05) if pos.size else 0.6
    outside = int((np.abs(pos) > lim).any(axis=(1, 2)).sum()) if pos.size else 0
    if outside:
        ax.text(0.03, 0.03, f"{outside} of {len(pos)} paths leave the frame", fontsize=7,
                transform=ax.transAxes, color="0.2", zorder=6,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})  # fmt: skip
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
    legend: str | None = "best",
    ax: Axes | None = None,
) -> Axes:
    """Average return against gradient steps (the paper's Figure 5).

    Args:
        curves: label -> (mean return per step 0..S, 95% CI half-width or None).
        paper: label -> the paper's returns per step, drawn as hollow squares.
        oracle: the best return possible (knowing the goal), a dashed line.
        legend: where the legend goes: a ``loc`` inside the axes, ``"outside"`` (to the
            right, hiding nothing), or None for none.
    """
    ax = _ax(ax, (5.5, 4))
    for label, (mean, ci) in curves.items():
        mean = np.asarray(mean, dtype=float)
        steps = np.arange(len(mean))
        style = style_for(label)
        color = style["color"]
        ax.plot(steps, mean, ms=4, label=label, **style)
        if ci is not None:
            ci = np.asarray(ci, dtype=float)
            ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
    for label, values in (paper or {}).items():
        ax.plot(range(len(values)), values, "s", mfc="none", ms=9, mew=1.5, color=color_for(label),
                label=f"{label} (paper)")  # fmt: skip
    if oracle is not None:
        ax.axhline(oracle, ls="--", color="black", lw=1, label="optimal (knows the goal)")
    ax.set(xlabel="number of gradient steps", ylabel="average return")
    ax.set_xticks(range(max(len(m) for m, _ in curves.values())))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend == "outside":
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    elif legend is not None:
        ax.legend(fontsize=8, loc=legend)
    return ax
