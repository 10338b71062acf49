"""Where the course's figures live: one colour scheme (``COLORS``, ``STYLES``, ``color_for``,
``style_for``), one axes helper (``axes_or_new``) and the plots of curves and paths the three
chapters share. Each plot takes ``ax=None`` (a new figure if omitted) and returns the axes.

Two modules draw with these helpers and colours: ``mamllib.viz.figures``, the figures of
several panels (the paper's, and what a meta-iteration costs), and ``mamllib.viz.images``,
the Omniglot chapter's panels (image mosaics, one task's accuracy after each step).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from mamllib.i18n import tr, tr_count, tr_label

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
    """``"1 step"``, ``"3 steps"``: in labels, which stay English (``_step_styles`` reads
    them; ``tr_label`` translates them where they are drawn). Shown text: ``tr_count``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (5, 3.5)) -> Axes:
    """``ax``, or the axes of a new figure of ``figsize`` inches: every plot draws into the
    axes it is given, so that a notebook can lay several out side by side."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def legend_below(
    ax: Axes, title: str, bottom: float, ncol: int | None = None, title_size: float | None = None
):
    """Finish a figure of panels: ``ax``'s legend once, centred below all panels, a title
    above them, and the panels laid out in the rest (``bottom``: the legend's share of the
    height). Returns the figure."""
    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol or len(labels), fontsize=9,
               frameon=False)  # fmt: skip
    fig.suptitle(title, **({} if title_size is None else {"fontsize": title_size}))
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_sinusoid_tasks(
    amplitude, phase, x_range: tuple[float, float] = (-5, 5), ax: Axes | None = None
) -> Axes:
    """Several tasks of the sinusoid distribution, and their mean."""
    ax = axes_or_new(ax)
    x = np.linspace(*x_range, 300)
    curves = _np(amplitude)[:, None] * np.sin(x[None, :] + _np(phase)[:, None])
    for y in curves:
        ax.plot(x, y, lw=1, alpha=0.7)
    ax.plot(x, curves.mean(0), color="black", lw=2.5, label=tr("mean over these tasks"))
    title = tr("{tasks}: y = A sin(x + φ)", tasks=tr_count(len(curves), "task"))
    ax.set(xlabel="x", ylabel="y", title=title)
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
    truth_label: str | None = None,
    legend: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """One task: the true function, its support (and query) points, and predictions.

    Args:
        predictions: label -> predicted y on ``x_grid``; colours come from ``color_for``.
            Labels ending in ", S steps" are styled by S within one learner: the fewest
            steps (0: before adapting) dashed, the most solid, any in between dotted.
        truth_label: the true function's label (default "ground truth", translated).
        legend: draw the legend, outside the axes on the right (it would hide the curve).
    """
    truth_label = tr("ground truth") if truth_label is None else truth_label
    ax = axes_or_new(ax)
    x_grid = _np(x_grid).ravel()
    ax.plot(x_grid, _np(y_true).ravel(), color=COLORS["truth"], lw=2, label=truth_label)
    styles = _step_styles(list(predictions))
    for label, y in predictions.items():
        style, width = styles[label]
        ax.plot(x_grid, _np(y).ravel(), linestyle=style, color=color_for(label), lw=width,
                label=tr_label(label))  # fmt: skip
    if x_query is not None:
        ax.scatter(
            _np(x_query), _np(y_query), s=12, color="0.6", marker="x", label=tr("query points")
        )
    if x_support is not None:
        ax.scatter(_np(x_support), _np(y_support), s=45, color=COLORS["support"], zorder=5,
                   edgecolor="white",
                   label=tr("support (K={k})", k=len(_np(x_support).ravel())))  # fmt: skip
    ax.set(xlabel="x", ylabel="y")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    paper: Mapping[str, Mapping[int, float]] | None = None,
    ylabel: str | None = None,
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
        ylabel: default "query MSE" (translated).
        legend: draw the legend (a figure of several panels may draw one for all).
    """
    ax = axes_or_new(ax)
    ylabel = tr("query MSE") if ylabel is None else ylabel
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
        ax.plot(steps, mean, ms=4, label=tr_label(label), **style)
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
        ax.annotate(tr("{label} diverged", label=tr_label(label)), (step, top), xytext=(-6 if right else 6, -6 - 11 * i),
                    textcoords="offset points", fontsize=8, color=color, va="top",
                    ha="right" if right else "left")  # fmt: skip
    for label, points in (paper or {}).items():
        ax.plot(list(points), list(points.values()), "s", mfc="none", ms=9, mew=1.5,
                color=color_for(label), label=tr("{label} (paper)", label=tr_label(label)))  # fmt: skip
    ax.set(xlabel=tr("number of gradient steps"), ylabel=ylabel)
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
    ax = axes_or_new(ax)
    its = [h["iteration"] for h in history]
    values = [h[key][-1] if isinstance(h[key], list) else h[key] for h in history]
    ax.plot(its, values, color=color_for(label), label=tr_label(label))
    names = {"train_loss": "training loss", "val_mse": "validation MSE"}
    ax.set(xlabel=tr("meta-iteration"), ylabel=tr(names[key]) if key in names else key)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------------- navigation

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
    ax = axes_or_new(ax, (4, 4))
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
        ax.text(0.03, 0.03, tr("{outside} of {total} paths leave the frame", outside=outside,
                                 total=len(pos)), fontsize=7,
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
    ax = axes_or_new(ax, (5.5, 4))
    for label, (mean, ci) in curves.items():
        mean = np.asarray(mean, dtype=float)
        steps = np.arange(len(mean))
        style = style_for(label)
        color = style["color"]
        ax.plot(steps, mean, ms=4, label=tr_label(label), **style)
        if ci is not None:
            ci = np.asarray(ci, dtype=float)
            ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
    for label, values in (paper or {}).items():
        ax.plot(range(len(values)), values, "s", mfc="none", ms=9, mew=1.5, color=color_for(label),
                label=tr("{label} (paper)", label=tr_label(label)))  # fmt: skip
    if oracle is not None:
        ax.axhline(oracle, ls="--", color="black", lw=1, label=tr("optimal (knows the goal)"))
    ax.set(xlabel=tr("number of gradient steps"), ylabel=tr("average return"))
    ax.set_xticks(range(max(len(m) for m, _ in curves.values())))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend == "outside":
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    elif legend is not None:
        ax.legend(fontsize=8, loc=legend)
    return ax
