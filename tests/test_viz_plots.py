"""The course's panels read as a student reads them: curves that must be told apart differ
in line style or marker as well as colour, a diverged learner cannot flatten the others'
curves, and panels that are compared share one scale."""

import math

import pytest
import torch
from figure_checks import labelled_curves

from mamllib.tasks.sinusoid import DIVERGED_MSE
from mamllib.viz.plots import (
    COLORS,
    GOAL_SQUARE,
    MAX_LIMIT,
    STYLES,
    path_limit,
    plot_curves,
    plot_fit,
    plot_paths,
    plural,
    style_for,
)


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


def test_plot_fit_styles_steps_per_learner():
    x = torch.linspace(-5, 5, 50)
    preds = {"MAML, 0 steps": x, "MAML, 1 step": x, "MAML, 5 steps": x, "MAML, 10 steps": x,
             "pre-trained, 10 steps": x}  # fmt: skip
    ax = plot_fit(x, x, preds)
    curves = labelled_curves(ax)
    styles = [curves[label].get_linestyle() for label in preds]
    assert styles == ["--", ":", ":", "-", "-"]
    # One curve of a learner: solid, or dashed when it is the unadapted one.
    ax = plot_fit(x, x, {"pre-trained, 0 steps": x, "MAML, 1 step (diverged)": x})
    assert [line.get_linestyle() for line in labelled_curves(ax).values()][1:] == ["--", "-"]
    assert ax.get_legend() is not None


def test_plot_curves_caps_a_diverged_learner():
    ok = [3.0, 0.5, 0.3, 0.2]
    gone = [3.0, 40.0, 2e5, math.inf]
    ax = plot_curves({"pre-trained": (ok, None), "MAML": (gone, None)}, log=True,
                     diverged_above=DIVERGED_MSE)  # fmt: skip
    assert ax.get_ylim()[1] == pytest.approx(DIVERGED_MSE)
    maml = labelled_curves(ax)["MAML"]
    assert list(maml.get_ydata()) == pytest.approx([3.0, 40.0, DIVERGED_MSE, DIVERGED_MSE])
    assert list(labelled_curves(ax)["pre-trained"].get_ydata()) == pytest.approx(ok)
    tops = [line for line in ax.lines if line.get_marker() == "^"]
    assert len(tops) == 1 and list(tops[0].get_xdata()) == [2, 3]
    assert [t.get_text() for t in ax.texts] == ["MAML diverged"]
    # Nothing diverged: no marks, and the axis still stops at the threshold.
    ax = plot_curves({"MAML": (ok, None)}, log=True, diverged_above=DIVERGED_MSE)
    assert not ax.texts and ax.get_ylim()[1] == pytest.approx(DIVERGED_MSE)


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
