"""The course's figures of several panels read as a student reads them: legends sit beside
the data, panels that are compared share their axes, and each learner's curves are told
apart. They are drawn from the data ``mamllib.reproduce`` computes and ships."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from figure_checks import labelled_curves, look, overlaps

from mamllib.paper.navigation import navigation_paths
from mamllib.paper.sinusoid import fits_data, load_learners
from mamllib.paths import ROOT
from mamllib.viz.figures import (
    figure_navigation_paths,
    figure_navigation_returns,
    figure_omniglot_curves,
    figure_sinusoid_curves,
    figure_sinusoid_fits,
    figure_step_size_sweep,
    plot_cost,
)
from mamllib.viz.plots import COLORS, GOAL_SQUARE, MAX_LIMIT


def _results(name):
    return json.loads((ROOT / "results" / f"{name}.json").read_text())


def test_figure_2_tells_the_steps_apart():
    """The paper's Figure 2: 0, 1 and 10 steps of one learner share its colour, so their
    line styles differ; the legend sits beside the panels, not over the curves."""
    fig = figure_sinusoid_fits(fits_data(load_learners()))
    axes = fig.axes[:4]
    for ax in axes:
        label = ax.get_title().split(",")[0]
        curves = labelled_curves(ax)
        steps = [curves[f"{label}, {n}"] for n in ("0 steps", "1 step", "10 steps")]
        assert f"{label}, 1 steps" not in curves
        assert len({line.get_linestyle() for line in steps}) == 3
        assert steps[-1].get_linestyle() == "-"  # the adapted fit solid
        assert {line.get_color() for line in steps} == {COLORS[label]}
    legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None]
    assert len(legends) == 2  # one per row
    for legend in legends:
        assert not any(overlaps(fig, legend, ax) for ax in axes)
        texts = [t.get_text() for t in legend.get_texts()]
        assert "support points" in texts and "ground truth" in texts
    assert axes[0].get_ylim() == axes[3].get_ylim()  # shared axes


def test_figure_3_curves_are_told_apart_and_the_legend_hides_nothing():
    results = _results("sinusoid")
    fig = figure_sinusoid_curves(results)
    axes = fig.axes
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    assert not any(overlaps(fig, fig.legends[0], ax) for ax in axes)
    for ax in axes:
        looks = [look(line) for line in labelled_curves(ax).values()]
        assert len(set(looks)) == len(looks)
        # Apart in greyscale too (the paper's hollow squares sit on their learner's curve).
        ours = [seen for seen, label in zip(looks, labelled_curves(ax)) if "(paper)" not in label]
        assert len({(ls, m) for _, ls, m in ours}) == len(ours)
    # Identical pre-trained curves (its best α is the α it is shown with) are drawn once.
    if results["pretrained_best_inner_lr"] == results["inner_lr"]["pre-trained"]:
        labels = [label for label in labelled_curves(axes[0]) if "(paper)" not in label]
        assert sum(label.startswith("pre-trained") for label in labels) == 1
        assert "also the best α" in " ".join(labels)


def test_omniglot_figure_shares_one_accuracy_axis_with_chance():
    results = _results("omniglot")
    fig = figure_omniglot_curves(results)
    axes = fig.axes
    assert all(ax.get_ylim() == (0, 101) for ax in axes)
    for ax, setting in zip(axes, sorted(results["settings"], key=lambda s: int(s.split("-")[0]))):
        n_way = results["settings"][setting]["n_way"]
        chance = [line for line in ax.lines if line.get_label() == "chance (1/N)"]
        assert chance and chance[0].get_ydata()[0] == pytest.approx(100 / n_way)
        looks = [look(line) for line in labelled_curves(ax).values()]
        assert len({(ls, m) for _, ls, m in looks}) == len(looks)
    assert len(fig.legends) == 1
    assert not any(overlaps(fig, fig.legends[0], ax) for ax in axes)


def test_navigation_returns_legend_beside_the_curves():
    """A panel per protocol, one legend beside the last, hiding no panel."""
    results = _results("navigation")
    fig = figure_navigation_returns(results)
    assert len(fig.axes) == len(results["protocols"])
    legend = fig.axes[-1].get_legend()
    assert not any(overlaps(fig, legend, ax) for ax in fig.axes)
    assert [ax.get_legend() for ax in fig.axes[:-1]] == [None] * (len(fig.axes) - 1)
    for ax in fig.axes:
        looks = [
            look(line) for line in labelled_curves(ax).values() if "paper" not in line.get_label()
        ]
        assert len({(ls, m) for _, ls, m in looks}) == len(looks) == 4  # and the optimum


def test_step_size_sweep_figure_draws_every_policy_twice():
    """Against α and against α/σ²: the same returns, x scaled by each policy's 1/σ²."""
    sweep = _results("navigation")["step_size_sweep"]
    fig = figure_step_size_sweep(sweep)
    by_alpha, by_scaled = (labelled_curves(ax) for ax in fig.axes[:2])
    assert (
        set(by_alpha)
        == set(by_scaled)
        == {f"{key} (σ = {entry['sigma']:.2f})" for key, entry in sweep["policies"].items()}
    )
    for key, entry in sweep["policies"].items():
        label = f"{key} (σ = {entry['sigma']:.2f})"
        np.testing.assert_allclose(by_alpha[label].get_xdata(), sweep["alphas"])
        np.testing.assert_allclose(
            by_scaled[label].get_xdata(), np.asarray(sweep["alphas"]) / entry["sigma"] ** 2
        )
        np.testing.assert_allclose(by_scaled[label].get_ydata(), entry["after_one_step"])


def test_navigation_paths_figure_shares_its_axes():
    fig = figure_navigation_paths(navigation_paths(episodes=4))
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes}
    assert len(limits) == 1
    ((xlim, ylim),) = limits
    assert xlim == ylim and GOAL_SQUARE < xlim[1] <= MAX_LIMIT
    titles = [ax.get_title() for ax in fig.axes]
    assert any(", 1 step:" in t for t in titles) and not any("1 steps" in t for t in titles)
    assert {ax.get_xlabel() for ax in fig.axes[-4:]} == {"x"}
    assert np.isfinite([float(t.split(": ")[-1]) for t in titles]).all()


def test_cost_figure_draws_both_orders_on_the_shipped_report():
    report = json.loads((ROOT / "results" / "cost.json").read_text())
    time_ax, memory_ax = plot_cost(report)
    for ax in (time_ax, memory_ax):
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "second-order",
            "first-order",
        ]
        assert ax.get_xlabel() == "inner steps"
    steps = report["settings"]["max_steps"]
    second, first = (line.get_ydata() for line in memory_ax.get_lines())
    assert len(second) == len(first) == steps
    assert second[-1] > second[0] and np.ptp(first) == 0  # second-order grows, first-order flat
    assert "MB per step" in memory_ax.get_title()
    assert time_ax.figure is memory_ax.figure


def test_figures_draw_into_the_axes_they_are_given():
    """A notebook can place a figure's panels in a figure of its own."""
    fig, given = plt.subplots(1, 3)
    assert figure_sinusoid_curves(_results("sinusoid"), axes=given) is fig
    assert all(ax.get_title().startswith("K = ") for ax in given)
    fig, axes = plt.subplots(1, 2)
    assert figure_navigation_returns(_results("navigation"), axes=axes) is fig
    assert all(ax.get_xlabel() == "number of gradient steps" for ax in axes)
