"""Sinusoid regression (the paper's Section 5.1): Table 2 and Figures 2 and 3, reproduced.

The meta-learned (MAML) and pre-trained networks are fine-tuned on fresh tasks at K = 5,
10 and 20 support points; the query MSE after 0..10 gradient steps, with 95% confidence
intervals, is what ``python -m mamllib.reproduce sinusoid`` writes to
``results/sinusoid.json``, beside the paper's Table 2, with Figure 2 (the fits) and
Figure 3 (MSE against the steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from mamllib.batch import TaskBatch
from mamllib.checkpoints import hardware
from mamllib.checks import check_inner_lr, check_steps
from mamllib.evaluate import adaptation_curve, adaptation_path, summarize_curve
from mamllib.experiments import load_learner
from mamllib.maml import MAML, InnerLR
from mamllib.paths import CHECKPOINTS as FOLDER
from mamllib.progress_bar import progress as progress_bar
from mamllib.tasks.sinusoid import DIVERGED_MSE, QUERY_POINTS, SinusoidTasks
from mamllib.viz.figures import figure_sinusoid_curves, figure_sinusoid_fits

# Appendix, Table 2 of Finn et al. (2017): K = 5 test MSE after 1, 5 and 10 gradient steps.
PAPER_TABLE2 = {
    "MAML": {1: 0.67, 5: 0.38, 10: 0.35},
    "pre-trained": {1: 2.41, 5: 2.23, 10: 2.19},
}
CHECKPOINTS = {
    "MAML": FOLDER / "sinusoid_maml.pt",
    "MAML (first-order)": FOLDER / "sinusoid_maml_fo.pt",
    "MAML (α = 0.001)": FOLDER / "sinusoid_maml_alpha0.001.pt",
    "pre-trained": FOLDER / "sinusoid_pretrain.pt",
}
TEST_SEED = 2017  # the test tasks; training used the seed in each checkpoint's config
VALIDATION_SEED = 7  # tasks for choosing the pre-trained net's best α, disjoint from test


def load_learners(device: str | torch.device = "cpu") -> dict[str, MAML]:
    """The shipped second- and first-order MAML and pre-trained networks, by label.

    The pre-trained network is the baseline; each learner keeps the α it was trained with
    (``learner.config.inner_lr``).
    """
    return {
        label: load_learner(path, map_location=device)[0] for label, path in CHECKPOINTS.items()
    }


def fresh_tasks(k_shot: int, num_tasks: int, seed: int = TEST_SEED) -> TaskBatch:
    """Fresh tasks: K support points to adapt on, 100 query points to measure the MSE.

    Returns:
        A ``TaskBatch`` with ``x_support [num_tasks, K, 1]`` and ``x_query [num_tasks, 100, 1]``,
        drawn with the seed ``seed + k_shot``.
    """
    return SinusoidTasks().sample(
        num_tasks, k_shot, QUERY_POINTS, generator=torch.Generator().manual_seed(seed + k_shot)
    )


def mse_curve(
    learner: MAML, batch: TaskBatch, *, inner_lr: InnerLR = 0.01, steps: int = 10
) -> torch.Tensor:
    """``[T, steps+1]`` query MSE of each task after 0..steps steps of SGD at α."""
    check_inner_lr(inner_lr)
    check_steps(steps, "steps")
    return adaptation_curve(
        learner.model, learner.params, batch, F.mse_loss, inner_lr=inner_lr, steps=steps
    )


def best_inner_lr(
    learner: MAML, k_shot: int, steps: int, candidates: Sequence[float], num_tasks: int
) -> float:
    """The α from ``candidates`` with the lowest mean MSE after ``steps`` on validation tasks.

    The paper fine-tuned its pre-trained baseline with "an automatically tuned step
    size"; this is that tuning, done on tasks disjoint from the test tasks.
    """
    batch = fresh_tasks(k_shot, num_tasks, seed=VALIDATION_SEED)
    scores = {
        lr: mse_curve(learner, batch, inner_lr=lr, steps=steps)[:, -1].mean().item()
        for lr in candidates
    }
    return min(scores, key=scores.get)


def evaluate(
    num_tasks: int = 600,
    device: str | torch.device = "cpu",
    progress: bool = False,
    *,
    k_shots: Sequence[int] = (5, 10, 20),
    steps: int = 10,
    lr_grid: Sequence[float] = (0.001, 0.003, 0.01, 0.03, 0.1),
) -> dict[str, Any]:
    """Every number of the sinusoid chapter, as a JSON-friendly dict.

    Each network is fine-tuned with the α it was trained with (0.01, the paper's text,
    except "MAML (α = 0.001)", the paper's code default); the pre-trained one also with
    the best α of ``lr_grid`` on validation tasks.

    Args:
        num_tasks: test tasks per K (and validation tasks for choosing α).
        device: where the networks run.
        progress: show a bar over the values of K.
        k_shots: the values of K.
        steps: the most gradient steps.
        lr_grid: the α tried for the pre-trained network.

    Returns:
        ``results/sinusoid.json``: ``"curves"``: K -> label -> ``summarize_curve`` of the
        query MSE after 0..steps steps, with ``"diverged"`` (tasks above ``DIVERGED_MSE``
        per step) and ``"mean_not_diverged"``; the α of each network, the test seed, the
        hardware and the paper's Table 2.
    """
    learners = load_learners(device)
    results: dict[str, Any] = {
        "num_tasks": num_tasks,
        "steps": steps,
        "inner_lr": {label: learner.config.inner_lr for label, learner in learners.items()},
        "test_seed": TEST_SEED,
        "query_points": QUERY_POINTS,
        "hardware": hardware(device),
        "torch": str(torch.__version__),
        "paper_table2": {k: {str(s): v for s, v in d.items()} for k, d in PAPER_TABLE2.items()},
        "curves": {},
    }
    best = best_inner_lr(learners["pre-trained"], 5, steps, lr_grid, num_tasks)
    results["pretrained_best_inner_lr"] = best
    for k in progress_bar(k_shots, desc="K", unit="K", enabled=progress):
        batch = fresh_tasks(k, num_tasks)
        runs = {label: (learner, learner.config.inner_lr) for label, learner in learners.items()}
        runs["pre-trained (best α)"] = (learners["pre-trained"], best)
        results["curves"][str(k)] = {}
        for label, (learner, lr) in runs.items():
            curve = mse_curve(learner, batch, inner_lr=lr, steps=steps)
            summary = summarize_curve(curve)
            finite = curve <= DIVERGED_MSE
            summary["diverged"] = (~finite).sum(0).tolist()
            summary["mean_not_diverged"] = (
                curve.double().where(finite, torch.nan).nanmean(0).tolist()
            )
            results["curves"][str(k)][label] = summary
    return results


@torch.no_grad()
def fits_data(
    learners: Mapping[str, MAML], seed: int = 3, steps: int = 10
) -> dict[int, dict[str, Any]]:
    """What the paper's Figure 2 shows (``viz.figures.figure_sinusoid_fits``): one fresh task
    for K = 5 and one for K = 10, and the MAML and pre-trained networks' predictions on a
    grid after 0, 1 and ``steps`` steps of SGD on its K support points (each with its own α).

    Args:
        learners: label -> learner, with ``"MAML"`` and ``"pre-trained"`` (``load_learners``).
        seed: the tasks (K's task is drawn with seed + K).
        steps: the most steps shown.

    Returns:
        K -> ``{"x": [G, 1]`` grid, ``"y": [G, 1]`` the task's function on it,
        ``"x_support", "y_support": [K, 1]``, ``"predictions"``: label -> {number of steps:
        ``[G, 1]`` prediction}}.
    """
    tasks = SinusoidTasks()
    grid = tasks.grid()
    fits: dict[int, dict[str, Any]] = {}
    for k in (5, 10):
        batch = tasks.sample(1, k, 1, generator=torch.Generator().manual_seed(seed + k))
        amp, phase = batch.info["amplitude"], batch.info["phase"]
        predictions = {}
        for label in ("MAML", "pre-trained"):
            learner = learners[label]
            thetas = adaptation_path(learner.model, learner.params, batch.x_support[0],
                                     batch.y_support[0], learner.loss_fn,
                                     inner_lr=learner.inner_lr, steps=steps,
                                     buffers=learner.buffer_dict)  # fmt: skip
            predictions[label] = {s: learner(grid, params=thetas[s]) for s in (0, 1, steps)}
        fits[k] = {"x": grid, "y": tasks.function(grid, amp, phase),
                   "x_support": batch.x_support[0], "y_support": batch.y_support[0],
                   "predictions": predictions}  # fmt: skip
    return fits


def figures(
    results: Mapping[str, Any], learners: Mapping[str, MAML] | None = None
) -> dict[str, Figure]:
    """The paper's Figures 2 and 3, by the file name ``reproduce`` gives them.

    Args:
        results: ``evaluate``'s output (``results/sinusoid.json``).
        learners: for Figure 2's fits (default: ``load_learners()``).

    Returns:
        ``{"sinusoid_fits.png": Figure 2, "sinusoid_mse_vs_steps.png": Figure 3}``, each
        figure's ``dpi`` the one it is saved with.
    """
    fits = figure_sinusoid_fits(fits_data(load_learners() if learners is None else learners))
    curves = figure_sinusoid_curves(results)
    for figure in (fits, curves):
        figure.set_dpi(120)
    return {"sinusoid_fits.png": fits, "sinusoid_mse_vs_steps.png": curves}


def table_markdown(results: Mapping[str, Any]) -> str:
    """The paper's Table 2 (K = 5) with our numbers beside it, as a Markdown table."""
    curves = results["curves"]["5"]
    steps = (1, 5, 10)

    def paper(label: str) -> str:
        return " | ".join(f"{PAPER_TABLE2[label][s]:.2f}" for s in steps)

    def ours(label: str) -> str:
        c = curves[label]
        cells = []
        for s in steps:
            if c["diverged"][s]:
                n = c["diverged"][s]
                cells.append(
                    f"diverged on {n} task{'s' if n > 1 else ''}; {c['mean_not_diverged'][s]:.2f} on "
                    f"the other {c['num_tasks'] - n} ({c['median'][s]:.2f})"
                )
            else:
                cells.append(f"{c['mean'][s]:.2f} ± {c['ci95'][s]:.2f} ({c['median'][s]:.2f})")
        return " | ".join(cells)

    best = results["pretrained_best_inner_lr"]
    return "\n".join(
        [
            f"| K = 5: query MSE, mean ± 95% CI (median); diverged: MSE > {DIVERGED_MSE:g} "
            "| 1 step | 5 steps | 10 steps |",
            "|---|---|---|---|",
            f"| MAML, paper | {paper('MAML')} |",
            f"| MAML, α = 0.01 (the paper's text) | {ours('MAML')} |",
            f"| MAML, α = 0.001 (the paper's code default) | {ours('MAML (α = 0.001)')} |",
            f"| first-order MAML, α = 0.01 | {ours('MAML (first-order)')} |",
            f"| pre-trained, paper | {paper('pre-trained')} |",
            f"| pre-trained, α = 0.01 | {ours('pre-trained')} |",
            f"| pre-trained, α = {best} (best on validation tasks) | {ours('pre-trained (best α)')} |",
        ]
    )
