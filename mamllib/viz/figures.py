"""The figures of several panels: the paper's, as ``python -m mamllib.reproduce`` writes them
to ``figures/``, and what a meta-iteration costs (``python -m mamllib.tools.cost``).

Each draws plain data (the results JSON, ``fits_data`` and ``navigation_paths`` of
``mamllib.paper``, a cost report) with the panels, axes helper and colours of
``mamllib.viz.plots``, where the course's figures live. A ``figure_*`` function lays out a
whole figure (a title over its panels, one legend for all) and returns it; it draws into
``axes`` if given, else into a new figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mamllib.cost import increments, series
from mamllib.i18n import tr, tr_label
from mamllib.viz.plots import (
    axes_or_new,
    color_for,
    legend_below,
    path_limit,
    plot_curves,
    plot_fit,
    plot_paths,
    plot_returns,
    plural,
    style_for,
)


def _grid(axes, rows: int, cols: int, **subplots) -> tuple[Figure, np.ndarray]:
    """The figure and a ``[rows, cols]`` array of ``axes`` (a new figure if None)."""
    if axes is None:
        _, axes = plt.subplots(rows, cols, squeeze=False, **subplots)
    axes = np.asarray(axes).reshape(rows, cols)
    return axes[0, 0].figure, axes


# ----------------------------------------------------------------------------- sinusoid


def figure_sinusoid_fits(fits: Mapping[int, Mapping[str, Any]], axes=None) -> Figure:
    """The paper's Figure 2: fits after 0, 1 and 10 steps, a column per K, a row per learner.

    Each learner's curves share its colour and differ in line style (0 steps dashed,
    1 step dotted, the most steps solid); one legend per row, beside the panels.

    Args:
        fits: K -> one task and the learners' predictions, as ``paper.sinusoid.fits_data``
            returns them: ``"x"`` ``[G, 1]``, ``"y"`` ``[G, 1]``, ``"x_support"``,
            ``"y_support"`` ``[K, 1]``, ``"predictions"``: label -> {steps: ``[G, 1]``}.
        axes: a ``[learners, K values]`` grid of axes (default: a new figure).

    Returns:
        The figure.
    """
    ks = list(fits)
    labels = list(fits[ks[0]]["predictions"])
    fig, axes = _grid(axes, len(labels), len(ks), sharex=True, sharey=True,
                      figsize=(6.25 * len(ks), 3.5 * len(labels)))  # fmt: skip
    for col, k in enumerate(ks):
        task = fits[k]
        for row, label in enumerate(labels):
            preds = {
                f"{label}, {plural(s, 'step')}": y for s, y in task["predictions"][label].items()
            }
            plot_fit(task["x"], task["y"], preds, task["x_support"], task["y_support"], legend=False,
                     title=tr("{label}, K = {k} support points", label=tr_label(label), k=k),
                     ax=axes[row, col])  # fmt: skip
    for ax in axes.flat:
        ax.label_outer()  # the axes are shared
    for row in axes:
        handles, labels = row[-1].get_legend_handles_labels()
        labels = [tr("support points") if label.startswith(("support", tr("support set")))
                  else label for label in labels]  # fmt: skip
        row[-1].legend(handles, labels, fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1),
                       borderaxespad=0)  # fmt: skip
    steps = sorted({s for task in fits.values() for p in task["predictions"].values() for s in p})
    shown = tr(" and ").join(filter(None, [", ".join(map(str, steps[:-1])), str(steps[-1])]))
    fig.suptitle(
        tr(
            "Few-shot adaptation to a new sine wave after {steps} gradient steps "
            "(cf. Finn et al. 2017, Figure 2)",
            steps=shown,
        )
    )
    fig.tight_layout()
    return fig


def figure_sinusoid_curves(results: Mapping[str, Any], axes=None) -> Figure:
    """The paper's Figure 3: query MSE against the gradient steps, one panel per K.

    Where fixed-α SGD diverged on some tasks, the mean is over the other tasks and the
    point is marked with a cross. When the pre-trained net's best α on validation tasks is
    the α it is shown with, its two curves are one, drawn once. The paper's Table 2 (K = 5)
    is drawn as hollow squares.

    Args:
        results: ``results/sinusoid.json`` (``paper.sinusoid.evaluate``).
        axes: one axes per K (default: a new figure).

    Returns:
        The figure.
    """
    ks = list(results["curves"])
    best = results["pretrained_best_inner_lr"]
    paper_table2 = {label: {int(s): v for s, v in points.items()}
                    for label, points in results["paper_table2"].items()}  # fmt: skip
    fig, axes = _grid(axes, 1, len(ks), figsize=(4.6 * len(ks), 4.6), sharey=True)
    for ax, k in zip(axes[0], ks):
        runs = dict(results["curves"][k])
        if runs.get("pre-trained (best α)") == runs.get("pre-trained"):
            alpha = results["inner_lr"]["pre-trained"]
            runs[f"pre-trained (α = {alpha:g}, also the best α)"] = runs.pop("pre-trained")
            del runs["pre-trained (best α)"]
        elif "pre-trained (best α)" in runs:
            runs[f"pre-trained (best α): α = {best:g}"] = runs.pop("pre-trained (best α)")
        curves = {label: (c["mean_not_diverged"], None if any(c["diverged"]) else c["ci95"])
                  for label, c in runs.items()}  # fmt: skip
        flagged = {
            label: [s for s, n in enumerate(c["diverged"]) if n] for label, c in runs.items()
        }
        paper = paper_table2 if k == "5" else None
        plot_curves(curves, paper=paper, title=tr("K = {k} support points", k=k), log=True,
                    flagged=flagged, legend=False, ax=ax)  # fmt: skip
        ax.set_ylabel(tr("query MSE (log scale)"))
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    title = tr(
        "Query MSE after fine-tuning on K points, {tasks} fresh tasks per K (cf. "
        "Figure 3; ×: some tasks diverged, mean over the others)",
        tasks=results["num_tasks"],
    )
    return legend_below(axes[0][0], title, bottom=0.12, ncol=4)


# ----------------------------------------------------------------------------- Omniglot


def figure_omniglot_curves(results: Mapping[str, Any], axes=None) -> Figure:
    """Accuracy against the inner steps at test time, one panel per evaluated setting (the
    paper's order: 5-way before 20-way, 1-shot before 5-shot), on one accuracy axis
    (0–100%), chance (1/N) dotted.

    Args:
        results: ``results/omniglot.json`` (``paper.omniglot.evaluate``).
        axes: one axes per setting (default: a new figure).

    Returns:
        The figure.
    """
    settings = sorted(
        results["settings"].items(), key=lambda item: (item[1]["n_way"], item[1]["k_shot"])
    )
    n = max(1, len(settings))
    fig, axes = _grid(axes, 1, n, figsize=(5 * n, 4.4), sharey=True)
    for ax, (setting, r) in zip(axes[0], settings):
        curves = {
            name: ([100 * v for v in c["mean"]], [100 * v for v in c["ci95"]])
            for name, c in r["curves"].items()
        }
        plot_curves(curves, ylabel=tr("query accuracy (%)"), title=f"Omniglot {setting}",
                    legend=False, ax=ax)  # fmt: skip
        ax.axhline(100 / r["n_way"], color="0.4", ls=":", lw=1.2, label=tr("chance (1/N)"))
        ax.set_ylim(0, 101)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    title = tr(
        "Accuracy after fine-tuning on the support set, {tasks} test tasks\n(batch "
        "norm on each query batch's statistics, as in the paper: transductive)",
        tasks=results["num_tasks"],
    )
    return legend_below(axes[0][0], title, bottom=0.07, title_size=11)


# ----------------------------------------------------------------------------- navigation


def figure_navigation_returns(results: Mapping[str, Any], axes=None) -> Figure:
    """The paper's Figure 5 under each protocol: average return against the gradient
    steps on the test goals, a panel per protocol, with the paper's returns and the
    optimal one.

    Args:
        results: ``results/navigation.json`` (``paper.navigation.evaluate``).
        axes: a row of one axes per protocol (default: a new figure).

    Returns:
        The figure.
    """
    protocols = results["protocols"]
    fig, axes = _grid(axes, 1, len(protocols), figsize=(5.2 * len(protocols) + 2.2, 4.4),
                      sharey=True)  # fmt: skip
    oracle = results["reference"]["optimal"]["mean"][0]
    for k, (name, protocol) in enumerate(protocols.items()):
        curves = {label: (r["mean"], r["ci95"]) for label, r in protocol["returns"].items()}
        paper = {label: results["paper_table4"][label] for label in curves}
        alphas = ", ".join(f"{a:g}" for a in protocol["inner_lrs"])
        plot_returns(curves, paper=paper, oracle=oracle,
                     legend="outside" if k == len(protocols) - 1 else None, ax=axes[0, k],
                     title=tr("{name} protocol: α = {alphas}", name=name, alphas=alphas))  # fmt: skip
    axes[0, 0].set_ylabel(tr("average return (− summed distance)"))
    for ax in axes[0, 1:]:
        ax.set_ylabel("")
    fig.suptitle(
        tr(
            "2D navigation, {goals} test goals (cf. the paper's Figure 5)",
            goals=results["num_goals"],
        )
    )
    fig.tight_layout()
    return fig


def figure_step_size_sweep(sweep: Mapping[str, Any], axes=None) -> Figure:
    """Return after one policy-gradient step against its size, per shipped policy
    (``paper.navigation.step_size_sweep``): against α (left) and against α/σ², the size
    of the step measured in the policy's own action noise (right); each policy's return
    before the step dotted.

    Args:
        sweep: ``results["step_size_sweep"]``.
        axes: two axes side by side (default: a new figure).

    Returns:
        The figure.
    """
    fig, axes = _grid(axes, 1, 2, figsize=(12, 4.4), sharey=True)
    alphas = np.asarray(sweep["alphas"], dtype=float)
    for key, entry in sweep["policies"].items():
        label, protocol = key.split(", ")
        style = dict(style_for(label))
        style["linestyle"] = "-" if protocol == "text" else "--"
        mean = np.asarray(entry["after_one_step"], dtype=float)
        for ax, x in zip(axes[0], (alphas, alphas / entry["sigma"] ** 2)):
            ax.plot(x, mean, ms=4, label=f"{tr_label(key)} (σ = {entry['sigma']:.2f})", **style)
            ax.axhline(entry["before"], color=style["color"], ls=":", lw=1)
    for ax, xlabel in zip(axes[0], (tr("α (log scale)"), tr("α / σ² (log scale)"))):
        ax.set_xscale("log")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], -150))
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(tr("average return after one step"))
    axes[0, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.suptitle(tr("One policy-gradient step of every size (dotted: the return before it)"))
    fig.tight_layout()
    return fig


def figure_navigation_paths(paths: Mapping[str, Any], axes=None) -> Figure:
    """Paths of each policy to one goal after 0..S steps, a row per policy, every panel on
    the same scale (random walks that leave it are cut and counted).

    Args:
        paths: as ``paper.navigation.navigation_paths`` returns them: ``"goal"`` ``[2]``,
            ``"positions"``: label -> S + 1 tensors ``[E, H + 1, 2]``, ``"returns"``:
            label -> ``[S + 1]`` average return after each step (in the panel titles).
        axes: a ``[policies, S + 1]`` grid of axes (default: a new figure).

    Returns:
        The figure.
    """
    positions, returns, goal = paths["positions"], paths["returns"], paths["goal"]
    steps = len(next(iter(positions.values()))) - 1
    lim = path_limit(pos for label_positions in positions.values() for pos in label_positions)
    fig, axes = _grid(axes, len(positions), steps + 1,
                      figsize=(2.6 * (steps + 1), 2.6 * len(positions)))  # fmt: skip
    for row, (label, label_positions) in enumerate(positions.items()):
        for k, pos in enumerate(label_positions):
            ax = axes[row, k]
            name = tr_label(f"{label}, {plural(k, 'step')}")
            plot_paths(pos, goal, color=color_for(label), lim=lim, ax=ax,
                       title=f"{name}: {returns[label][k]:.1f}")  # fmt: skip
            if k == 0:
                ax.set_ylabel("y")
            if row == len(positions) - 1:
                ax.set_xlabel("x")
    alphas = paths.get("inner_lrs")
    steps_text = tr("0–{steps} policy-gradient steps", steps=steps) + (
        f" (α = {', '.join(f'{a:g}' for a in alphas)})" if alphas else ""
    )
    fig.suptitle(tr("Paths to the goal ★ {goal} after {steps}\npanel title: average return; the "
                    "goal square dotted", goal=tuple(round(v, 2) for v in goal.tolist()),
                    steps=steps_text))  # fmt: skip
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- cost


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
    ax = axes_or_new(ax)
    learners = {"second-order": "MAML", "first-order": "MAML (first-order)"}
    for label, (steps, values) in curves.items():
        style = style_for(learners.get(label, label))
        ax.plot(list(steps), list(values), ms=4, label=tr(label), **style)
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(list(steps), low, high, color=style["color"], alpha=0.15, lw=0)
    ax.set(xlabel=tr("inner steps"), ylabel=ylabel)
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
        tr("time per meta-iteration (ms)"),
        bands={order: (low[order][1], high[order][1]) for order in low},
        ax=axes[0],
    )
    saved = series(report, "saved_mb")
    plot_cost_vs_steps(saved, tr("memory saved for the backward (MB)"), ax=axes[1])
    so = saved["second-order"][1]
    if len(so) > 1:
        slope = statistics.median(increments(so))
        axes[1].set_title(tr("second-order: +{slope:.2f} MB per step", slope=slope), fontsize=10)
    axes[0].set_title(report["hardware"], fontsize=9)
    fig = axes[0].figure
    fig.suptitle(
        tr(
            "What a MAML meta-iteration costs — {workload}: {description}\nper-task "
            "{path!r} path; time: the median, shaded from the fastest to the slowest of "
            "{repeats} meta-iterations",
            workload=report["workload"],
            description=report["description"],
            path=report["path"],
            repeats=report["settings"]["repeats"],
        ),
        fontsize=10,
    )
    fig.tight_layout()
    return axes
