"""The Omniglot dashboard, driven the way a student drives it, on the real data and checkpoints.

The numbers it shows are checked against an independent reference: ``accuracy_curve``
(the evaluation path of the table) for the accuracy after each step.
"""

import shutil

import pytest
import torch

from mamllib.data import load_omniglot
from mamllib.experiments import load_learner
from mamllib.experiments.omniglot import OmniglotConfig, accuracy_curve
from mamllib.paper.omniglot import FIRST_ORDER, checkpoint_paths, load_learners
from mamllib.tasks.omniglot import split_characters
from mamllib.viz.omniglot import OmniglotDashboard, figure_query_batching

LEARNERS = {"MAML", "pre-trained", "scratch"}


@pytest.fixture(scope="module")
def data():
    return load_omniglot()


@pytest.fixture(scope="module")
def learners():
    return load_learners()[0]


@pytest.fixture
def dashboard(learners, data):
    without_fo = {k: v for k, v in learners.items() if k != FIRST_ORDER}
    return OmniglotDashboard(without_fo, seed=0, data=data)


def test_initial_view_has_maml_pretrained_and_scratch(dashboard):
    view = dashboard.view
    steps = OmniglotConfig().eval_inner_steps
    assert view.steps == steps and view.step == steps
    assert set(view.accuracy) == LEARNERS
    assert all(len(curve) == steps + 1 for curve in view.accuracy.values())
    n_query = 5 * dashboard.k_query
    for label in LEARNERS:
        assert view.predictions[label].shape == (n_query,)
        probs = view.probabilities[label]
        assert probs.shape == (n_query, 5)
        torch.testing.assert_close(probs.sum(-1), torch.ones(n_query))
    assert "MAML" in dashboard.status.value


def test_accuracies_equal_the_evaluation_path(dashboard):
    """Each curve equals ``accuracy_curve`` (the table's code) on the same task."""
    view = dashboard.view
    for label in LEARNERS:
        reference = accuracy_curve(
            dashboard.learners[label], dashboard.batch, view.steps, inner_lr=view.inner_lr
        )[0]
        assert view.accuracy[label] == pytest.approx(reference.tolist(), abs=1e-6), label
    # The pre-trained network's new head is zero: before adapting, every class is equally likely.
    assert view.accuracy["pre-trained"][0] == pytest.approx(1 / 5)
    uniform = torch.full((5 * dashboard.k_query, 5), 0.2)
    dashboard.step.value = 0
    torch.testing.assert_close(dashboard.view.probabilities["pre-trained"], uniform)


def test_maml_accuracy_after_its_test_steps_is_a_valid_fraction(dashboard):
    steps = OmniglotConfig().eval_inner_steps
    accuracies = []
    for index in range(5):
        dashboard.task.value = index
        accuracy = dashboard.view.accuracy["MAML"][steps]
        n_query = 5 * dashboard.k_query
        assert 0.0 <= accuracy <= 1.0
        assert accuracy * n_query == pytest.approx(round(accuracy * n_query), abs=1e-4)
        accuracies.append(accuracy)
    assert sum(accuracies) / len(accuracies) > 0.5  # far above chance (0.2) on new characters


def test_sliders_readapt(dashboard):
    before = {k: v.clone() for k, v in dashboard.view.probabilities.items()}
    dashboard.alpha.value = 0.05
    view = dashboard.view
    assert view.inner_lr == pytest.approx(0.05)
    for label in ("MAML", "scratch"):
        assert not torch.allclose(view.probabilities[label], before[label]), label
    dashboard.steps.value = 7
    view = dashboard.view
    assert view.steps == 7 and view.step == 7 and dashboard.step.max == 7
    assert all(len(curve) == 8 for curve in view.accuracy.values())
    dashboard.steps.value = 0
    view = dashboard.view
    assert view.step == 0 and all(len(curve) == 1 for curve in view.accuracy.values())


def test_one_step_is_singular_and_the_baselines_are_told_apart(dashboard):
    dashboard.steps.value = 1
    status = dashboard.status.value
    assert "<th>1 step</th>" in status and "1 steps" not in status
    curve = dashboard.figure().axes[3]
    looks = {line.get_label(): (line.get_color(), line.get_linestyle(), line.get_marker())
             for line in curve.lines if line.get_label() in LEARNERS}  # fmt: skip
    assert len(looks) == 3 and len({look[1:] for look in looks.values()}) == 3


def test_show_step_reuses_the_adaptation(dashboard, monkeypatch):
    """Moving the shown step only redraws: nothing is adapted again."""
    dashboard.steps.value = 5
    full = dashboard.view
    monkeypatch.setattr(dashboard, "_trajectory", lambda *a: pytest.fail("re-adapted"))
    dashboard.step.value = 2
    view = dashboard.view
    assert view.step == 2 and view.accuracy == full.accuracy
    assert torch.equal(view.predictions["MAML"], view.probabilities["MAML"].argmax(-1))
    reference = accuracy_curve(dashboard.learners["MAML"], dashboard.batch, 2)[0, 2].item()
    shown = (view.predictions["MAML"] == view.y_query).float().mean().item()
    assert shown == pytest.approx(reference)


def test_new_task_changes_the_classes(dashboard, data):
    view = dashboard.view
    dashboard.new_task.click()
    new = dashboard.view
    assert new.task_index == dashboard.task.value != view.task_index
    assert new.classes != view.classes
    test = set(split_characters(data)["test"].tolist())
    assert set(view.classes) <= test and set(new.classes) <= test
    assert [data.alphabets[c] for c in new.classes] == new.alphabets
    # A task index always names the same task.
    again = dashboard.task_batch(view.task_index)
    assert again.info["classes"][0].tolist() == view.classes
    dashboard.task.value = view.task_index
    assert dashboard.view.classes == view.classes


def test_first_order_toggle_is_disabled_without_its_checkpoint(tmp_path, data):
    for label in ("MAML", "pre-trained"):
        shutil.copy(checkpoint_paths()[label], tmp_path / checkpoint_paths()[label].name)
    learners, checkpoints = load_learners(checkpoint_dir=tmp_path)
    assert set(learners) == LEARNERS and set(checkpoints) == {"MAML", "pre-trained"}
    # The evaluation path is chosen for this device, whatever the run trained with.
    assert all(learner.config.path == "auto" for learner in learners.values())
    board = OmniglotDashboard(learners, data=data)
    assert board.order.disabled
    assert "no checkpoint" in board.order_note.value
    board.order.value = "first-order"  # a frontend cannot, but code can: MAML stays shown
    assert board.view.maml == "MAML" and set(board.view.accuracy) == LEARNERS


def test_first_order_toggle_switches_checkpoint(learners, data):
    with_fo = dict(learners)
    with_fo[FIRST_ORDER] = learners.get(FIRST_ORDER, learners["MAML"])
    board = OmniglotDashboard(with_fo, data=data)
    assert not board.order.disabled and board.order_note.value == ""
    board.order.value = "first-order"
    assert board.view.maml == FIRST_ORDER
    assert set(board.view.accuracy) == {FIRST_ORDER, "pre-trained", "scratch"}


def test_missing_required_checkpoint_is_named(tmp_path):
    shutil.copy(checkpoint_paths()["MAML"], tmp_path / checkpoint_paths()["MAML"].name)
    with pytest.raises(FileNotFoundError, match="pretrain"):
        load_learners(checkpoint_dir=tmp_path)


def _bad_inputs(learners):
    raw_pretrained, _ = load_learner(checkpoint_paths()["pre-trained"])
    return [
        ({"MAML": learners["MAML"]}, {}, "pre-trained"),
        ({**learners, "pre-trained": raw_pretrained}, {}, "few_shot_head"),
        ({**learners, "scratch": "a net"}, {}, "must be a MAML"),
        (learners, {"k_query": 0}, "k_query"),
        (learners, {"k_query": 20}, "k_query"),
        (learners, {"max_steps": 0}, "max_steps"),
        (learners, {"seed": -1}, "seed"),
        (learners, {"num_tasks": 2.5}, "num_tasks"),
        (learners, {"config": "5-way 1-shot"}, "OmniglotConfig"),
        (learners, {"config": OmniglotConfig(n_way=20)}, "20-way"),
        ([learners["MAML"]], {}, "dict"),
    ]


def test_bad_constructor_input_raises_a_clear_value_error(learners, data):
    for given, kwargs, message in _bad_inputs(learners):
        with pytest.raises(ValueError, match=message):
            OmniglotDashboard(given, data=data, **kwargs)


def test_figures_draw(dashboard):
    fig = dashboard.figure()
    assert len(fig.axes) == 4
    assert "MAML" in fig.axes[1].get_title() and "pre-trained" in fig.axes[2].get_title()


def test_query_batching_figure_has_a_bar_per_learner_and_batching():
    """A panel per setting; in each, a bar (its height the accuracy) for every learner and
    way of batching the query images, and chance drawn."""
    import json

    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    from mamllib.paths import RESULTS

    results = json.loads((RESULTS / "omniglot.json").read_text())
    figure = figure_query_batching(results)
    axes = [ax for ax in figure.axes if ax.patches]
    settings = sorted((r for r in results["settings"].values() if "query_batching" in r),
                      key=lambda r: r["n_way"])  # fmt: skip
    assert len(axes) == len(settings) >= 1
    for ax, r in zip(axes, settings):
        bars = [bar for c in ax.containers if isinstance(c, BarContainer) for bar in c]
        heights = sorted(round(bar.get_height(), 6) for bar in bars)
        expected = sorted(round(100 * s["mean"], 6) for by in r["query_batching"].values()
                          for s in by.values())  # fmt: skip
        assert heights == expected
        assert any(line.get_ydata()[0] == 100 / r["n_way"] for line in ax.lines)
    plt.close(figure)
    with pytest.raises(ValueError, match="no setting"):
        figure_query_batching({"num_tasks": 1, "settings": {"5-way 1-shot": {"n_way": 5}}})
