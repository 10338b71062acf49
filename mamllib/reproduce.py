"""Reproduce the paper's results from the shipped checkpoints.

    python -m mamllib.reproduce sinusoid     # Table 2, Figures 2 and 3
    python -m mamllib.reproduce omniglot     # Table 1, with the pre-training and scratch baselines
    python -m mamllib.reproduce navigation   # Table 4 and Figure 5 (2D navigation, RL)

Sinusoid: evaluates the meta-learned (MAML) and pre-trained networks on fresh tasks at
K = 5, 10 and 20 (query MSE after 0..10 gradient steps, 95% confidence intervals), writes
the paper's Figure 2 (fits) and Figure 3 (MSE vs steps) and ``results/sinusoid.json``.

Omniglot: evaluates every shipped MAML checkpoint, and the pre-training and
training-from-scratch baselines, on the same 600 test-character tasks (15 query images
per class), writes ``results/omniglot.json`` and ``figures/omniglot_accuracy_vs_steps.png``.

Navigation: evaluates the MAML, pre-trained, randomly initialised (and oracle) policies
on the same 40 test goals (return after 0..3 policy-gradient steps, 40 episodes per goal
and step), writes ``results/navigation.json``, ``figures/navigation_returns.png`` (the
paper's Figure 5) and ``figures/navigation_trajectories.png``.

Each prints the paper's table beside ours.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import torch
import torch.nn.functional as F

from mamllib.checkpoints import atomic_write_text, hardware
from mamllib.evaluate import adaptation_curve, summarize_curve
from mamllib.maml import MAML, InnerLR, check_inner_lr, check_steps
from mamllib.paths import FIGURES, RESULTS, ROOT
from mamllib.tasks.sinusoid import SinusoidTasks
from mamllib.train import load_learner

CHECKPOINTS = {
    "MAML": ROOT / "checkpoints" / "sinusoid_maml.pt",
    "MAML (first-order)": ROOT / "checkpoints" / "sinusoid_maml_fo.pt",
    "MAML (α = 0.001)": ROOT / "checkpoints" / "sinusoid_maml_alpha0.001.pt",
    "pre-trained": ROOT / "checkpoints" / "sinusoid_pretrain.pt",
}
# Appendix, Table 2 of Finn et al. (2017): K = 5 test MSE after 1, 5 and 10 gradient steps.
PAPER_TABLE2 = {
    "MAML": {1: 0.67, 5: 0.38, 10: 0.35},
    "pre-trained": {1: 2.41, 5: 2.23, 10: 2.19},
}
TEST_SEED = 2017  # the test tasks; training used the seed in each checkpoint's config
VALIDATION_SEED = 7  # tasks for choosing the pre-trained net's best α, disjoint from test
QUERY_POINTS = 100
# A query MSE above this (every task's function lies within ±5) means fixed-α SGD diverged.
DIVERGED_MSE = 100.0


def load_sinusoid_learners(device: str | torch.device = "cpu") -> dict[str, MAML]:
    """The shipped second- and first-order MAML and pre-trained networks, by label."""
    return {
        label: load_learner(path, map_location=device)[0] for label, path in CHECKPOINTS.items()
    }


def fresh_tasks(k_shot: int, num_tasks: int, seed: int = TEST_SEED):
    """Fresh tasks: K support points to adapt on, 100 query points to measure the MSE."""
    return SinusoidTasks().sample(
        num_tasks, k_shot, QUERY_POINTS, generator=torch.Generator().manual_seed(seed + k_shot)
    )


def mse_curve(learner: MAML, batch, *, inner_lr: InnerLR = 0.01, steps: int = 10) -> torch.Tensor:
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


def evaluate_sinusoid(
    num_tasks: int = 600,
    k_shots: Sequence[int] = (5, 10, 20),
    steps: int = 10,
    lr_grid: Sequence[float] = (0.001, 0.003, 0.01, 0.03, 0.1),
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Every number of the sinusoid chapter, as a JSON-friendly dict.

    Each network is fine-tuned with the α it was trained with (0.01, the paper's text,
    except "MAML (α = 0.001)", the paper's code default); the pre-trained one also with
    the best α of ``lr_grid`` on validation tasks.
    """
    learners = load_sinusoid_learners(device)
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
    for k in k_shots:
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


def table2_markdown(results: dict[str, Any]) -> str:
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


@torch.no_grad()
def figure_fits(learners: dict[str, MAML], seed: int = 3, steps: int = 10):
    """The paper's Figure 2: fits after 1 and 10 steps at K = 5 and K = 10, one task each.

    Each learner's curves share its colour and differ in line style (0 steps dashed,
    1 step dotted, ``steps`` solid); one legend per row, beside the panels.
    """
    import matplotlib.pyplot as plt

    from mamllib.plots import plot_fit, plural

    fig, axes = plt.subplots(2, 2, figsize=(12.5, 7), sharex=True, sharey=True)
    tasks = SinusoidTasks()
    grid = tasks.grid()
    for col, k in enumerate((5, 10)):
        batch = tasks.sample(1, k, 1, generator=torch.Generator().manual_seed(seed + k))
        amp, phase = batch.info["amplitude"], batch.info["phase"]
        for row, label in enumerate(("MAML", "pre-trained")):
            learner = learners[label]
            preds = {f"{label}, 0 steps": learner(grid)}
            theta = learner.params
            for s in range(1, steps + 1):
                theta, _ = learner.adapt(
                    batch.x_support[0], batch.y_support[0], steps=1, params=theta, first_order=True
                )
                if s in (1, steps):
                    preds[f"{label}, {plural(s, 'step')}"] = learner(grid, params=theta)
            plot_fit(grid, tasks.function(grid, amp, phase), {k_: v.detach() for k_, v in preds.items()},
                     batch.x_support[0], batch.y_support[0], legend=False,
                     title=f"{label}, K = {k} support points", ax=axes[row, col])  # fmt: skip
    for ax in axes.flat:
        ax.label_outer()  # the axes are shared
    for row in axes:
        handles, labels = row[-1].get_legend_handles_labels()
        labels = [label.split(" (K=")[0] + " points" if label.startswith("support") else label
                  for label in labels]  # fmt: skip
        row[-1].legend(handles, labels, fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1),
                       borderaxespad=0)  # fmt: skip
    fig.suptitle(
        "Few-shot adaptation to a new sine wave after 0, 1 and 10 gradient steps "
        "(cf. Finn et al. 2017, Figure 2)"
    )
    fig.tight_layout()
    return fig


def figure_curves(results: dict[str, Any]):
    """The paper's Figure 3: query MSE vs gradient steps, one panel per K.

    Where fixed-α SGD diverged on some tasks (MSE > ``DIVERGED_MSE``), the mean is over
    the other tasks and the point is marked with a cross. When the pre-trained net's best
    α on validation tasks is the α it is shown with, its two curves are one, drawn once.
    """
    import matplotlib.pyplot as plt

    from mamllib.plots import plot_curves

    ks = list(results["curves"])
    best = results["pretrained_best_inner_lr"]
    fig, axes = plt.subplots(1, len(ks), figsize=(4.6 * len(ks), 4.6), sharey=True, squeeze=False)
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
        paper = PAPER_TABLE2 if k == "5" else None
        plot_curves(curves, paper=paper, title=f"K = {k} support points", log=True,
                    flagged=flagged, legend=False, ax=ax)  # fmt: skip
        ax.set_ylabel("query MSE (log scale)")
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(
        f"Query MSE after fine-tuning on K points, {results['num_tasks']} fresh tasks per K "
        "(cf. Figure 3; ×: some tasks diverged, mean over the others)"
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


# ----------------------------------------------------------------------------- Omniglot

OMNIGLOT_CHECKPOINTS = ROOT / "checkpoints"


def omniglot_checkpoints() -> dict[str, dict[str, Path]]:
    """Shipped Omniglot checkpoints: setting (``"5-way 1-shot"``) -> learner label -> path.

    A setting without a pre-trained network of its own gets the shared one.
    """
    from mamllib.experiments.omniglot import SHARED_PRETRAIN

    found: dict[str, dict[str, Path]] = {}
    for path in sorted(OMNIGLOT_CHECKPOINTS.glob("omniglot_*way*shot_*.pt")):
        config = load_learner(path)[1]["config"]
        setting = f"{config['n_way']}-way {config['k_shot']}-shot"
        if config["method"] == "pretrain":
            label = "pre-trained"
        else:
            label = "MAML (first-order)" if config["first_order"] else "MAML"
        found.setdefault(setting, {})[label] = path
    shared = OMNIGLOT_CHECKPOINTS / SHARED_PRETRAIN
    for paths in found.values():
        if shared.is_file():
            paths.setdefault("pre-trained", shared)  # N- and K-independent (see checkpoint_paths)
    return found


def evaluable_omniglot_settings(
    settings: Sequence[str] | None = None,
) -> dict[str, dict[str, Path]]:
    """The shipped settings that have a second-order MAML checkpoint (all, or ``settings``),
    each with its checkpoints as in ``omniglot_checkpoints``.

    Raises:
        ValueError: a name in ``settings`` is not one of them (the message lists them).
    """
    shipped = {s: paths for s, paths in omniglot_checkpoints().items() if "MAML" in paths}
    if settings is None:
        return shipped
    unknown = [s for s in settings if s not in shipped]
    if unknown:
        raise ValueError(
            f"no shipped second-order MAML checkpoint for setting(s) {unknown}; "
            f"valid: {sorted(shipped)}"
        )
    return {s: shipped[s] for s in settings}


def evaluate_omniglot(
    num_tasks: int = 600,
    device: str | torch.device = "cpu",
    settings: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Every shipped Omniglot network and the scratch baseline, on the same test tasks per setting.

    MAML networks are fine-tuned with their own α and test-time steps; the baselines with
    those of the second-order MAML network of the setting. ``settings`` (e.g.
    ``["5-way 1-shot"]``) evaluates only those; the test tasks of a setting depend on the
    setting and ``num_tasks`` only, so its numbers are the same as in a full run.
    ``progress=True`` shows a bar per learner.
    """
    from mamllib.experiments.omniglot import (
        OmniglotConfig,
        evaluate_learners,
        few_shot_head,
        meta_test_episodes,
        scratch_learner,
    )

    shipped = evaluable_omniglot_settings(settings)
    results: dict[str, Any] = {"num_tasks": num_tasks, "hardware": hardware(device),
                               "torch": str(torch.__version__), "settings": {}}  # fmt: skip
    for setting, paths in shipped.items():
        loaded = {label: load_learner(path, map_location=device) for label, path in paths.items()}
        config = OmniglotConfig(**loaded["MAML"][1]["config"])
        learners = {label: learner for label, (learner, _) in loaded.items()}
        if "pre-trained" in learners:
            learners["pre-trained"] = few_shot_head(learners["pre-trained"], config.n_way)
        learners["scratch"] = scratch_learner(config, device=device)
        batch = meta_test_episodes(config, num_tasks, device)
        results["settings"][setting] = {
            "n_way": config.n_way,
            "k_shot": config.k_shot,
            "steps": config.eval_inner_steps,
            "inner_lr": config.inner_lr,
            "curves": evaluate_learners(
                learners, batch, config.eval_inner_steps, config.inner_lr, progress=progress
            ),
            "checkpoints": {
                label: {
                    "file": paths[label].name,
                    "iteration": ckpt["iteration"],
                    "iterations_planned": ckpt["config"]["iterations"],
                    "wall_time_s": ckpt["wall_time_s"],
                    "trained_on": ckpt["provenance"]["hardware"],
                }
                for label, (_, ckpt) in loaded.items()
            },
        }
    return results


def omniglot_settings(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The evaluated settings in the paper's order: 5-way before 20-way, 1-shot before 5-shot."""
    return sorted(
        results["settings"].items(), key=lambda item: (item[1]["n_way"], item[1]["k_shot"])
    )


def merge_omniglot_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the settings evaluated in ``new`` replaced (a partial re-evaluation).

    Both must count the same test tasks, or the table would mix estimates of different
    precision; the hardware of each setting's evaluation is kept with it.
    """
    if old["num_tasks"] != new["num_tasks"]:
        raise ValueError(
            f"cannot merge an evaluation on {new['num_tasks']} test tasks into one on "
            f"{old['num_tasks']}; rerun with --tasks {old['num_tasks']} or without --setting"
        )
    settings = {s: {"evaluated_on": old["hardware"], **r} for s, r in old["settings"].items()}
    settings.update({s: {**r, "evaluated_on": new["hardware"]} for s, r in new["settings"].items()})
    return {**new, "settings": settings}


def omniglot_summary(results: dict[str, Any]) -> str:
    """Per setting: accuracy after 1 and after all test-time steps for each learner, how far
    each checkpoint was trained, and MAML's lead over the pre-trained network."""
    lines = []
    for setting, r in omniglot_settings(results):
        s, curves = r["steps"], r["curves"]
        on = r.get("evaluated_on", results["hardware"])
        lines.append(
            f"{setting}, α = {r['inner_lr']}, {results['num_tasks']} test tasks, evaluated on {on}:"
        )
        for label, c in curves.items():
            line = (
                f"  {label:19s} 1 step {100 * c['mean'][1]:5.1f}%, "
                f"{s} steps {100 * c['mean'][s]:5.1f} ± {100 * c['ci95'][s]:.1f}%"
            )
            ckpt = r["checkpoints"].get(label)
            if ckpt:
                line += (
                    f"; {ckpt['iteration']:,} of {ckpt['iterations_planned']:,} iterations, "
                    f"{ckpt['wall_time_s'] / 3600:.1f} h on {ckpt['trained_on']}"
                )
            lines.append(line)
        if "MAML" in curves and "pre-trained" in curves:
            lead = curves["MAML"]["mean"][s] - curves["pre-trained"]["mean"][s]
            lines.append(f"  MAML minus pre-trained after {s} steps: {100 * lead:+.1f} points")
    return "\n".join(lines)


def table1_markdown(results: dict[str, Any]) -> str:
    """The paper's Table 1 beside ours: accuracy % ± 95% CI after the test-time steps."""
    from mamllib.experiments.omniglot import PAPER_FIRST_ORDER, PAPER_TABLE1

    lines = [
        "| Omniglot | MAML, paper | first-order MAML, Nichol et al. | MAML, mamllib "
        "| first-order MAML, mamllib | pre-trained, mamllib | scratch, mamllib |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, r in omniglot_settings(results):
        key = (r["n_way"], r["k_shot"])
        paper, paper_ci = PAPER_TABLE1[key]
        cells = []
        for label in ("MAML", "MAML (first-order)", "pre-trained", "scratch"):
            c = r["curves"].get(label)
            if c is None:
                cells.append("—")
                continue
            cell = f"{100 * c['mean'][-1]:.1f} ± {100 * c['ci95'][-1]:.1f}"
            ckpt = r["checkpoints"].get(label)
            if ckpt and ckpt["iteration"] < ckpt["iterations_planned"]:
                cell += (
                    f" (after {ckpt['iteration']:,} of {ckpt['iterations_planned']:,} iterations)"
                )
            cells.append(cell)
        lines.append(
            f"| {setting}, {r['steps']} steps | {paper} ± {paper_ci} | {PAPER_FIRST_ORDER[key]} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def figure_omniglot(results: dict[str, Any]):
    """Accuracy vs inner steps at test time, one panel per shipped setting, on one
    accuracy axis (0–100%), chance (1/N) dotted."""
    import matplotlib.pyplot as plt

    from mamllib.plots import plot_curves

    settings = dict(omniglot_settings(results))
    n = max(1, len(settings))
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4.4), sharey=True, squeeze=False)
    for ax, (setting, r) in zip(axes[0], settings.items()):
        curves = {
            name: ([100 * v for v in c["mean"]], [100 * v for v in c["ci95"]])
            for name, c in r["curves"].items()
        }
        plot_curves(curves, ylabel="query accuracy (%)", title=f"Omniglot {setting}",
                    legend=False, ax=ax)  # fmt: skip
        ax.axhline(100 / r["n_way"], color="0.4", ls=":", lw=1.2, label="chance (1/N)")
        ax.set_ylim(0, 101)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(
        f"Accuracy after fine-tuning on the support set, {results['num_tasks']} test tasks\n"
        "(batch norm on each query batch's statistics, as in the paper: transductive)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# ----------------------------------------------------------------------------- navigation


def figure_navigation_returns(results: dict[str, Any]):
    """The paper's Figure 5: average return vs gradient steps on the test goals."""
    import matplotlib.pyplot as plt

    from mamllib.rl.plots import plot_returns

    returns = results["returns"]
    curves = {label: (r["mean"], r["ci95"]) for label, r in returns.items()
              if label not in ("oracle", "optimal")}  # fmt: skip
    paper = {label: results["paper_table4"][label] for label in curves}
    oracle = returns["optimal"]["mean"][0]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    plot_returns(curves, paper=paper, oracle=oracle, legend="outside", ax=ax,
                 title=f"2D navigation, {results['num_goals']} test goals (cf. Figure 5)")  # fmt: skip
    ax.set_ylabel("average return (− summed distance to the goal)")
    fig.tight_layout()
    return fig


def figure_navigation_paths(goal_index: int = 0, steps: int = 3, episodes: int = 10):
    """Paths of the MAML, pre-trained and random policies after 0..steps steps, one goal,
    every panel on the same scale (random walks that leave it are cut and counted)."""
    import matplotlib.pyplot as plt

    from mamllib.experiments.navigation import (
        NOISE_SEED,
        evaluate_policy,
        navigation_policies,
        test_goals,
    )
    from mamllib.plots import color_for, plural
    from mamllib.rl.plots import path_limit, plot_paths

    policies = {k: v for k, v in navigation_policies().items() if k != "oracle"}
    goal = test_goals()[goal_index : goal_index + 1]
    lrs = policies["MAML"][1].eval_inner_lrs[:steps]
    outs = {label: evaluate_policy(policy, config, goal, seed=NOISE_SEED, episodes=episodes,
                                   inner_lrs=lrs, keep_trajectories=True)
            for label, (policy, config) in policies.items()}  # fmt: skip
    lim = path_limit(traj.positions[0] for out in outs.values() for traj in out.trajectories)
    fig, axes = plt.subplots(len(policies), steps + 1, figsize=(2.6 * (steps + 1), 2.6 * len(policies)),
                             squeeze=False)  # fmt: skip
    for row, (label, out) in enumerate(outs.items()):
        for k, traj in enumerate(out.trajectories):
            ax = axes[row, k]
            plot_paths(traj.positions[0], goal[0], color=color_for(label), lim=lim, ax=ax,
                       title=f"{label}, {plural(k, 'step')}: {out.returns[0, k]:.1f}")  # fmt: skip
            if k == 0:
                ax.set_ylabel("y")
            if row == len(outs) - 1:
                ax.set_xlabel("x")
    fig.suptitle(f"Paths to the goal ★ {tuple(round(v, 2) for v in goal[0].tolist())} after "
                 f"0–{steps} policy-gradient steps (title: average return; the goal square dotted)")  # fmt: skip
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamllib.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("domain", choices=["sinusoid", "omniglot", "navigation"])
    parser.add_argument(
        "--tasks", type=int, default=None,
        help="test tasks per K (default 600), or test goals for navigation (default 40)",
    )  # fmt: skip
    parser.add_argument(
        "--setting", action="append", default=None, metavar="SETTING",
        help="omniglot only: re-evaluate just this setting (e.g. '5-way 1-shot'; repeatable) "
        "and keep the others from the existing results/omniglot.json",
    )  # fmt: skip
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: faster for these small networks)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.tasks is None:
        args.tasks = 40 if args.domain == "navigation" else 600
    if args.tasks < 2:
        parser.error(f"--tasks must be >= 2, got {args.tasks}")
    previous, kept = args.results / "omniglot.json", None
    if args.setting is not None:
        if args.domain != "omniglot":
            parser.error(f"--setting is for omniglot only, not {args.domain}")
        try:
            evaluable_omniglot_settings(args.setting)
        except ValueError as error:
            parser.error(f"--setting: {error}")
        if not previous.is_file():
            parser.error(f"--setting keeps the other settings from {previous}, which does not "
                         "exist; run without --setting first")  # fmt: skip
        kept = json.loads(previous.read_text())
        if kept["num_tasks"] != args.tasks:
            parser.error(f"--tasks {args.tasks} differs from the {kept['num_tasks']} test tasks "
                         f"in {previous}; a partial re-evaluation must use the same number")  # fmt: skip
    matplotlib.use("Agg")
    args.results.mkdir(parents=True, exist_ok=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    if args.domain == "navigation":
        from mamllib.experiments.navigation import evaluate_navigation, table4_markdown

        num_goals = args.tasks
        results = evaluate_navigation(num_goals=num_goals, progress=True)
        atomic_write_text(args.results / "navigation.json", json.dumps(results, indent=1) + "\n")
        figure_navigation_returns(results).savefig(args.figures / "navigation_returns.png", dpi=120)
        figure_navigation_paths().savefig(args.figures / "navigation_trajectories.png", dpi=110)
        print(table4_markdown(results))
        print(f"\n{num_goals} test goals, {results['episodes']} episodes per goal and step, "
              f"on {results['hardware']}")  # fmt: skip
        return 0
    if args.domain == "omniglot":
        results = evaluate_omniglot(num_tasks=args.tasks, settings=args.setting, progress=True)
        if kept is not None:
            results = merge_omniglot_results(kept, results)
        atomic_write_text(previous, json.dumps(results, indent=1) + "\n")
        figure_omniglot(results).savefig(args.figures / "omniglot_accuracy_vs_steps.png", dpi=120)
        print(table1_markdown(results))
        print()
        print(omniglot_summary(results))
        return 0
    results = evaluate_sinusoid(num_tasks=args.tasks)
    atomic_write_text(args.results / "sinusoid.json", json.dumps(results, indent=1) + "\n")
    figure_fits(load_sinusoid_learners()).savefig(args.figures / "sinusoid_fits.png", dpi=120)
    figure_curves(results).savefig(args.figures / "sinusoid_mse_vs_steps.png", dpi=120)
    print(table2_markdown(results))
    print(f"\n{args.tasks} tasks per K on {results['hardware']}; wrote {args.results / 'sinusoid.json'}, "
          f"{args.figures / 'sinusoid_fits.png'}, {args.figures / 'sinusoid_mse_vs_steps.png'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
