"""The course's figures read as a student reads them: curves that must be told apart differ
in line style or marker as well as colour, legends sit beside the data, panels that are
compared share their axes, and a diverged learner cannot flatten the others' curves."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mamllib.plots import COLORS, STYLES, plot_cost, plot_curves, plot_fit, plural, style_for
from mamllib.reproduce import (
    DIVERGED_MSE,
    ROOT,
    figure_curves,
    figure_fits,
    figure_navigation_paths,
    figure_navigation_returns,
    figure_omniglot,
    load_sinusoid_learners,
)
from mamllib.rl.plots import GOAL_SQUARE, MAX_LIMIT, path_limit, plot_paths


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _results(name):
    return json.loads((ROOT / "results" / f"{name}.json").read_text())


def _curves(ax):
    """label -> Line2D of the labelled curves of ``ax`` (not the markers of the paper)."""
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def _look(line):
    return (str(line.get_color()), str(line.get_linestyle()), str(line.get_marker()))


def _overlaps(fig, artist, ax):
    """Whether ``artist``'s box overlaps the data area of ``ax`` (in display units)."""
    fig.canvas.draw()
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return box.overlaps(ax.get_window_extent())


def test_plural():
    assert plural(1, "step") == "1 step" and plural(0, "step") == "0 steps"
    assert plural(10, "step") == "10 steps"


def test_every_learner_has_its_own_colour_line_style_and_marker():
    # Learners shown together differ in style and marker, not only in hue: red, orange and
    # brown are nearly one grey.
    together = [key for key in STYLES if key != "random"]  # random stands in for scratch
    looks = [(str(STYLES[k][0]), STYLES[k][1]) for k in together]
    assert len(set(m for _, m in looks)) == len(looks)  # one marker each
    assert all(key in COLORS for key in STYLES)
    assert style_for("MAML (first-order), 3 steps") == {
        "color": COLORS["MAML (first-order)"], "linestyle": "--", "marker": "v"
    }  # fmt: skip
    assert style_for("MAML") != style_for("pre-trained")
    assert style_for("random")["color"] == style_for("scratch")["color"] == "tab:gray"


def test_figure_2_tells_the_steps_apart():
    """The paper's Figure 2: 0, 1 and 10 steps of one learner share its colour, so their
    line styles differ; the legend sits beside the panels, not over the curves."""
    fig = figure_fits(load_sinusoid_learners())
    axes = fig.axes[:4]
    for ax in axes:
        label = ax.get_title().split(",")[0]
        curves = _curves(ax)
        steps = [curves[f"{label}, {n}"] for n in ("0 steps", "1 step", "10 steps")]
        assert f"{label}, 1 steps" not in curves
        assert len({line.get_linestyle() for line in steps}) == 3
        assert steps[-1].get_linestyle() == "-"  # the adapted fit solid
        assert {line.get_color() for line in steps} == {COLORS[label]}
    legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None]
    assert len(legends) == 2  # one per row
    for legend in legends:
        assert not any(_overlaps(fig, legend, ax) for ax in axes)
        texts = [t.get_text() for t in legend.get_texts()]
        assert "support points" in texts and "ground truth" in texts
    assert axes[0].get_ylim() == axes[3].get_ylim()  # shared axes


def test_plot_fit_styles_steps_per_learner():
    x = torch.linspace(-5, 5, 50)
    preds = {"MAML, 0 steps": x, "MAML, 1 step": x, "MAML, 5 steps": x, "MAML, 10 steps": x,
             "pre-trained, 10 steps": x}  # fmt: skip
    ax = plot_fit(x, x, preds)
    curves = _curves(ax)
    styles = [curves[label].get_linestyle() for label in preds]
    assert styles == ["--", ":", ":", "-", "-"]
    # One curve of a learner: solid, or dashed when it is the unadapted one.
    ax = plot_fit(x, x, {"pre-trained, 0 steps": x, "MAML, 1 step (diverged)": x})
    assert [line.get_linestyle() for line in _curves(ax).values()][1:] == ["--", "-"]
    assert ax.get_legend() is not None


def test_figure_3_curves_are_told_apart_and_the_legend_hides_nothing():
    results = _results("sinusoid")
    fig = figure_curves(results)
    axes = fig.axes
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    assert not any(_overlaps(fig, fig.legends[0], ax) for ax in axes)
    for ax in axes:
        looks = [_look(line) for line in _curves(ax).values()]
        assert len(set(looks)) == len(looks)
        # Apart in greyscale too (the paper's hollow squares sit on their learner's curve).
        ours = [look for look, label in zip(looks, _curves(ax)) if "(paper)" not in label]
        assert len({(ls, m) for _, ls, m in ours}) == len(ours)
    # Identical pre-trained curves (its best α is the α it is shown with) are drawn once.
    if results["pretrained_best_inner_lr"] == results["inner_lr"]["pre-trained"]:
        labels = [label for label in _curves(axes[0]) if "(paper)" not in label]
        assert sum(label.startswith("pre-trained") for label in labels) == 1
        assert "also the best α" in " ".join(labels)


def test_plot_curves_caps_a_diverged_learner():
    ok = [3.0, 0.5, 0.3, 0.2]
    gone = [3.0, 40.0, 2e5, math.inf]
    ax = plot_curves({"pre-trained": (ok, None), "MAML": (gone, None)}, log=True,
                     diverged_above=DIVERGED_MSE)  # fmt: skip
    assert ax.get_ylim()[1] == pytest.approx(DIVERGED_MSE)
    maml = _curves(ax)["MAML"]
    assert list(maml.get_ydata()) == pytest.approx([3.0, 40.0, DIVERGED_MSE, DIVERGED_MSE])
    assert list(_curves(ax)["pre-trained"].get_ydata()) == pytest.approx(ok)
    tops = [line for line in ax.lines if line.get_marker() == "^"]
    assert len(tops) == 1 and list(tops[0].get_xdata()) == [2, 3]
    assert [t.get_text() for t in ax.texts] == ["MAML diverged"]
    # Nothing diverged: no marks, and the axis still stops at the threshold.
    ax = plot_curves({"MAML": (ok, None)}, log=True, diverged_above=DIVERGED_MSE)
    assert not ax.texts and ax.get_ylim()[1] == pytest.approx(DIVERGED_MSE)


def test_omniglot_figure_shares_one_accuracy_axis_with_chance():
    results = _results("omniglot")
    fig = figure_omniglot(results)
    axes = fig.axes
    assert all(ax.get_ylim() == (0, 101) for ax in axes)
    for ax, setting in zip(axes, sorted(results["settings"], key=lambda s: int(s.split("-")[0]))):
        n_way = results["settings"][setting]["n_way"]
        chance = [line for line in ax.lines if line.get_label() == "chance (1/N)"]
        assert chance and chance[0].get_ydata()[0] == pytest.approx(100 / n_way)
        looks = [_look(line) for line in _curves(ax).values()]
        assert len({(ls, m) for _, ls, m in looks}) == len(looks)
    assert len(fig.legends) == 1
    assert not any(_overlaps(fig, fig.legends[0], ax) for ax in axes)


def test_navigation_returns_legend_beside_the_curves():
    fig = figure_navigation_returns(_results("navigation"))
    (ax,) = fig.axes
    assert not _overlaps(fig, ax.get_legend(), ax)
    looks = [_look(line) for line in _curves(ax).values() if "paper" not in line.get_label()]
    assert len({(ls, m) for _, ls, m in looks}) == len(looks)


def test_path_panels_share_one_scale():
    near = torch.zeros(3, 5, 2)
    near[:, -1] = torch.tensor([0.3, -0.2])
    far = near.clone()
    far[0, -1] = torch.tensor([0.9, 0.0])
    wild = near.clone()
    wild[1, -1] = torch.tensor([-2.4, 0.0])
    assert path_limit([near]) == pytest.approx(0.6)  # the goal square and a margin
    assert path_limit([near, far]) == pytest.approx(1.0)
    assert path_limit([near, far, wild]) == MAX_LIMIT  # random walks are cut
    assert path_limit([wild], cap=None) == pytest.approx(2.5)
    ax = plot_paths(wild, (0.3, -0.2), lim=MAX_LIMIT)
    assert ax.get_xlim() == ax.get_ylim() == (-MAX_LIMIT, MAX_LIMIT)
    assert [t.get_text() for t in ax.texts] == ["1 of 3 paths leave the frame"]
    assert MAX_LIMIT > GOAL_SQUARE


def test_navigation_paths_figure_shares_its_axes():
    fig = figure_navigation_paths(episodes=4)
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
