"""The sinusoid dashboard, driven the way a student drives it: set values, press buttons.

The MSEs it shows are checked against an independent reference: ``adaptation_curve`` (the
evaluation path of Table 2 and Figure 3) on the same task.
"""

import math

import pytest
import torch.nn.functional as F

from mamllib.batch import TaskBatch
from mamllib.evaluate import adaptation_curve
from mamllib.paper.sinusoid import load_learners
from mamllib.tasks.sinusoid import DIVERGED_MSE
from mamllib.viz.sinusoid import SinusoidDashboard


@pytest.fixture(scope="module")
def learners():
    return load_learners()


@pytest.fixture
def dashboard(learners, figures):
    return SinusoidDashboard(learners, seed=0, train_iterations=100)


def test_initial_view_shows_maml_and_pretrained(dashboard):
    view = dashboard.view
    assert set(view.mse) == {"MAML", "pre-trained"}
    assert all(len(curve) == dashboard.steps.value + 1 for curve in view.mse.values())
    assert view.predictions["MAML"].shape == (200, 1)
    assert "MAML" in dashboard.status.value


def test_mses_equal_the_evaluation_path(dashboard):
    dashboard.k_shot.value = 10
    view = dashboard.view
    task = TaskBatch(dashboard.x_pool[None, :10], dashboard.y_pool[None, :10],
                     dashboard.x_query[None], dashboard.y_query[None])  # fmt: skip
    for label, mse in view.mse.items():
        learner = dashboard.learners[label]
        reference = adaptation_curve(learner.model, learner.params, task, F.mse_loss,
                                     inner_lr=view.inner_lr, steps=view.steps, path="loop")[0]  # fmt: skip
        assert mse == pytest.approx(reference.tolist(), rel=1e-5), label


def test_sliders_readapt(dashboard):
    before = dashboard.view.mse["MAML"][-1]
    dashboard.alpha.value = 0.001
    assert dashboard.view.inner_lr == pytest.approx(0.001)
    assert dashboard.view.mse["MAML"][-1] != before
    dashboard.steps.value = 3
    assert len(dashboard.view.mse["MAML"]) == 4
    dashboard.k_shot.value = 20
    assert dashboard.view.k_shot == 20


def test_zero_steps_is_the_unadapted_model(dashboard):
    dashboard.steps.value = 0
    assert all(len(curve) == 1 for curve in dashboard.view.mse.values())


def test_order_toggle_switches_checkpoint(dashboard):
    dashboard.order.value = "first-order"
    assert set(dashboard.view.mse) == {"MAML (first-order)", "pre-trained"}


def test_new_task_draws_another_wave(dashboard):
    amplitude = dashboard.view.amplitude
    dashboard.new_task.click()
    assert dashboard.view.amplitude != amplitude


def test_huge_alpha_is_reported_as_diverged(dashboard):
    dashboard.alpha.value = 1.0
    assert not math.isfinite(dashboard.view.mse["MAML"][-1])
    assert "diverged" in dashboard.status.value


def test_a_diverged_learner_does_not_flatten_the_others(dashboard, figures):
    """At α = 0.03 MAML's SGD diverges within 10 steps (MSE up to 1e18, then inf/NaN): the
    MSE axis stops at the divergence threshold, the diverged steps sit on its top edge,
    and the other learner's curve keeps its values."""
    dashboard.alpha.value = 0.03
    view = dashboard.view
    maml, pre = view.mse["MAML"], view.mse["pre-trained"]
    assert max(m for m in maml if math.isfinite(m)) > 1e6 and not math.isfinite(maml[-1])
    assert all(m < DIVERGED_MSE for m in pre)
    curve = figures[-1].axes[1]
    assert curve.get_yscale() == "log"
    assert curve.get_ylim()[1] == pytest.approx(DIVERGED_MSE)
    lines = {line.get_label(): list(line.get_ydata()) for line in curve.lines}
    assert max(lines["MAML"]) == pytest.approx(DIVERGED_MSE)
    assert lines["pre-trained"] == pytest.approx(pre)
    assert "MAML diverged" in [t.get_text() for t in curve.texts]
    assert "diverged" in curve.get_title()
    assert "<b>diverged</b>" in dashboard.status.value and ": MAML;" in dashboard.status.value


def test_a_finite_but_huge_mse_is_reported_as_diverged(dashboard):
    """One step at α = 1: finite MSEs in the hundreds or thousands are divergence too."""
    dashboard.steps.value = 1
    dashboard.alpha.value = 1.0
    after = {label: mse[-1] for label, mse in dashboard.view.mse.items()}
    assert all(math.isfinite(m) and m > DIVERGED_MSE for m in after.values())
    status = dashboard.status.value
    assert "<b>diverged</b> (query MSE > 100): pre-trained, MAML;" in status
    assert f"diverged ({after['MAML']:,.0f}: α too large)" in status


def test_one_step_is_singular(dashboard, figures):
    dashboard.steps.value = 1
    status = dashboard.status.value
    assert "after 1 step<" in status and "1 steps" not in status
    fit = figures[-1].axes[0]
    labels = [t.get_text() for t in fit.get_legend().get_texts()]
    assert "MAML, 1 step" in labels and not any("1 steps" in label for label in labels)


def test_meta_train_button_adds_a_live_run(dashboard):
    dashboard.iterations.value = 100
    dashboard.steps.value = 2
    dashboard.train_button.click()
    assert "MAML (your run)" in dashboard.view.mse
    assert dashboard.progress.value == 100
    assert dashboard.live.config.inner_steps == 2
