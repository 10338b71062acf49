"""``mamllib.paper.sinusoid``: the shipped checkpoints, re-evaluated: the paper's result holds."""

import json

import matplotlib.pyplot as plt
import pytest
import torch

from mamllib.checkpoints import load_checkpoint
from mamllib.experiments import load_learner
from mamllib.paper.sinusoid import (
    CHECKPOINTS,
    evaluate,
    figures,
    fits_data,
    fresh_tasks,
    load_learners,
    mse_curve,
    table_markdown,
)
from mamllib.paths import ROOT
from mamllib.tasks.sinusoid import SinusoidTasks


@pytest.fixture(scope="module")
def results():
    return evaluate(num_tasks=200, k_shots=(5,), lr_grid=(0.01, 0.1))


@pytest.mark.parametrize("label", sorted(CHECKPOINTS))
def test_shipped_checkpoints_are_complete_runs(label):
    ckpt = load_checkpoint(CHECKPOINTS[label])
    assert ckpt["iteration"] == ckpt["config"]["iterations"] == 70_000
    assert ckpt["provenance"]["command"].startswith("python -m mamllib.train sinusoid")
    assert ckpt["config"]["first_order"] == (label == "MAML (first-order)")
    assert ckpt["config"]["method"] == ("pretrain" if label == "pre-trained" else "maml")
    assert ckpt["config"]["inner_lr"] == (0.001 if label == "MAML (α = 0.001)" else 0.01)


def test_maml_beats_pretraining_at_k5(results):
    curves = results["curves"]["5"]
    pre = curves["pre-trained"]["mean"]
    assert pre[10] > 1.5, pre  # the paper: 2.19
    for label in ("MAML", "MAML (α = 0.001)", "MAML (first-order)"):
        assert all(curves[label]["mean"][s] < pre[s] for s in (1, 5)), label
        assert curves[label]["median"][10] < curves["pre-trained"]["median"][10] / 3, label
    # The paper's code setting reproduces its 10-step number (0.35) on average too.
    assert curves["MAML (α = 0.001)"]["mean"][10] <= 0.5
    # Tuning α for the pre-trained network does not close the gap.
    assert curves["pre-trained (best α)"]["mean"][10] > 3 * curves["MAML (α = 0.001)"]["mean"][10]


def test_recorded_results_reproduce():
    """results/sinusoid.json (600 tasks) agrees with a fresh evaluation of the same tasks."""
    recorded = json.loads((ROOT / "results" / "sinusoid.json").read_text())
    label = "MAML (α = 0.001)"
    learner, _ = load_learner(CHECKPOINTS[label])
    batch = fresh_tasks(5, recorded["num_tasks"])
    curve = mse_curve(learner, batch, inner_lr=recorded["inner_lr"][label], steps=recorded["steps"])
    torch.testing.assert_close(
        curve.mean(0), torch.tensor(recorded["curves"]["5"][label]["mean"]), rtol=1e-4, atol=1e-5,
        check_dtype=False,
    )  # fmt: skip


def test_fits_data_are_the_learners_after_0_1_and_the_last_step():
    """Figure 2's data: per K, the task drawn with seed + K, its function on the grid, and
    each learner's predictions after 0, 1 and ``steps`` steps, equal to one call of
    ``adapt`` with that many steps."""
    learners = load_learners()
    fits = fits_data(learners, seed=3, steps=4)
    assert list(fits) == [5, 10]
    for k, task in fits.items():
        batch = SinusoidTasks().sample(1, k, 1, generator=torch.Generator().manual_seed(3 + k))
        assert task["x"].shape == task["y"].shape == (200, 1)
        assert task["x_support"].shape == task["y_support"].shape == (k, 1)
        assert torch.equal(task["x_support"], batch.x_support[0])
        amplitude, phase = batch.info["amplitude"], batch.info["phase"]
        torch.testing.assert_close(task["y"], amplitude * torch.sin(task["x"] + phase))
        assert list(task["predictions"]) == ["MAML", "pre-trained"]
        for label, predictions in task["predictions"].items():
            learner = learners[label]
            assert list(predictions) == [0, 1, 4]
            for steps, y in predictions.items():
                theta, _ = learner.adapt(task["x_support"], task["y_support"], steps=steps,
                                         first_order=True)  # fmt: skip
                torch.testing.assert_close(y, learner(task["x"], params=theta).detach())


def test_table_puts_the_papers_numbers_beside_ours(results):
    table = table_markdown(results)
    lines = table.splitlines()
    assert len(lines) == 9 and len({line.count("|") for line in lines}) == 1
    assert "| MAML, paper | 0.67 | 0.38 | 0.35 |" in table
    assert "| pre-trained, paper | 2.41 | 2.23 | 2.19 |" in table
    ours = results["curves"]["5"]["MAML (α = 0.001)"]
    assert (
        f"| {ours['mean'][10]:.2f} ± {ours['ci95'][10]:.2f} ({ours['median'][10]:.2f}) |" in table
    )


def test_figures_are_figure_2_and_3_at_the_dpi_they_are_saved_with(results):
    drawn = figures(results)
    assert list(drawn) == ["sinusoid_fits.png", "sinusoid_mse_vs_steps.png"]
    assert all(figure.dpi == 120 for figure in drawn.values())
    fits, curves = drawn.values()
    assert len(curves.axes) == len(results["curves"])  # a panel per K
    assert len(fits.axes) >= 4  # a row per learner, a column per K (5 and 10)
    for figure in drawn.values():
        plt.close(figure)
