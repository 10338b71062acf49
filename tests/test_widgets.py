"""The sinusoid dashboard, driven the way a student drives it: set values, press buttons."""

import math

import pytest

from mamllib.reproduce import load_sinusoid_learners
from mamllib.widgets import SinusoidDashboard


@pytest.fixture(scope="module")
def learners():
    return load_sinusoid_learners()


@pytest.fixture
def dashboard(learners):
    return SinusoidDashboard(learners, seed=0, train_iterations=100)


def test_initial_view_shows_maml_and_pretrained(dashboard):
    view = dashboard.view
    assert set(view.mse) == {"MAML", "pre-trained"}
    assert all(len(curve) == dashboard.steps.value + 1 for curve in view.mse.values())
    assert view.predictions["MAML"].shape == (200, 1)
    assert "MAML" in dashboard.status.value


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


def test_meta_train_button_adds_a_live_run(dashboard):
    dashboard.iterations.value = 100
    dashboard.steps.value = 2
    dashboard.train_button.click()
    assert "MAML (your run)" in dashboard.view.mse
    assert dashboard.progress.value == 100
    assert dashboard.live.config.inner_steps == 2
