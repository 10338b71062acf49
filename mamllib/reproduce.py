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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import torch
import torch.nn.functional as F

from mamllib.checkpoints import atomic_write_text, hardware
from mamllib.checks import check_inner_lr, check_steps
from mamllib.evaluate import adaptation_curve, summarize_curve
from mamllib.maml import MAML, InnerLR
from mamllib.paths import FIGURES, RESULTS, ROOT
from mamllib.tasks.sinusoid import DIVERGED_MSE, QUERY_POINTS, SinusoidTasks
from mamllib.train import load_learner
from mamllib.viz.figures import (
    figure_navigation_paths,
    figure_navigation_returns,
    figure_omniglot_curves,
    figure_sinusoid_curves,
    figure_sinusoid_fits,
)

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
def fits_data(
    learners: Mapping[str, MAML], seed: int = 3, steps: int = 10
) -> dict[int, dict[str, Any]]:
    """What the paper's Figure 2 shows (``viz.figures.figure_sinusoid_fits``): one fresh task
    for K = 5 and one for K = 10, and the MAML and pre-trained networks' predictions on a
    grid after 0, 1 and ``steps`` steps of SGD on its K support points (each with its own α).

    Args:
        learners: label -> learner, with ``"MAML"`` and ``"pre-trained"``
            (``load_sinusoid_learners``).
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
            preds = {0: learner(grid)}
            theta = learner.params
            for s in range(1, steps + 1):
                theta, _ = learner.adapt(
                    batch.x_support[0], batch.y_support[0], steps=1, params=theta, first_order=True
                )
                if s in (1, steps):
                    preds[s] = learner(grid, params=theta)
            predictions[label] = preds
        fits[k] = {"x": grid, "y": tasks.function(grid, amp, phase),
                   "x_support": batch.x_support[0], "y_support": batch.y_support[0],
                   "predictions": predictions}  # fmt: skip
    return fits


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


def _cell(summary: Mapping, step: int) -> str:
    return f"{100 * summary['mean'][step]:.1f} ± {100 * summary['ci95'][step]:.1f}"


def accuracy_table_markdown(
    results: Mapping[str, Mapping],
    n_way: int = 5,
    k_shot: int = 1,
    steps: Sequence[int] = (0, 1, 2, 3),
) -> str:
    """Query accuracy (%) ± 95% CI after each of ``steps``, with the published numbers: the
    notebook's table of one setting's learners (``table1_markdown``: the shipped settings').

    The published numbers are after the paper's test-time steps (3 for 5-way), so they
    go in the last column.

    Args:
        results: label -> ``summarize_curve`` output (``evaluate_learners``).
    """
    from mamllib.experiments.omniglot import PAPER_FIRST_ORDER, PAPER_TABLE1

    tasks = next(iter(results.values()))["num_tasks"]
    header = " | ".join(f"{s} step{'' if s == 1 else 's'}" for s in steps)
    rows = [
        f"| {n_way}-way {k_shot}-shot, {tasks} test tasks: accuracy % ± 95% CI | {header} |",
        "|---|" + "---:|" * len(steps),
    ]
    rows += [
        f"| {label} | " + " | ".join(_cell(summary, s) for s in steps) + " |"
        for label, summary in results.items()
    ]
    blanks = " | ".join("" for _ in steps[:-1])
    if (n_way, k_shot) in PAPER_TABLE1:
        mean, ci = PAPER_TABLE1[(n_way, k_shot)]
        rows.append(f"| MAML, paper (Finn et al. 2017) | {blanks} | {mean} ± {ci} |")
    if (n_way, k_shot) in PAPER_FIRST_ORDER:
        rows.append(
            f"| first-order MAML, published (Nichol et al. 2018) | {blanks} | "
            f"{PAPER_FIRST_ORDER[(n_way, k_shot)]} |"
        )
    return "\n".join(rows)


# ----------------------------------------------------------------------------- navigation


def navigation_paths(goal_index: int = 0, steps: int = 3, episodes: int = 10) -> dict[str, Any]:
    """What the paths figure shows (``viz.figures.figure_navigation_paths``): the MAML,
    pre-trained and random policies on one test goal, after 0..steps policy-gradient steps
    with MAML's α per step.

    Args:
        goal_index: which of the test goals (``experiments.navigation.test_goals``).
        steps: the most inner steps.
        episodes: episodes per policy and step.

    Returns:
        ``{"goal": [2]``, ``"positions"``: label -> ``steps + 1`` tensors ``[E, H + 1, 2]``
        (the paths after each step), ``"returns"``: label -> ``[steps + 1]`` average return}.
    """
    from mamllib.experiments.navigation import (
        NOISE_SEED,
        evaluate_policy,
        navigation_policies,
        test_goals,
    )

    policies = {k: v for k, v in navigation_policies().items() if k != "oracle"}
    goal = test_goals()[goal_index : goal_index + 1]
    lrs = policies["MAML"][1].eval_inner_lrs[:steps]
    outs = {label: evaluate_policy(policy, config, goal, seed=NOISE_SEED, episodes=episodes,
                                   inner_lrs=lrs, keep_trajectories=True)
            for label, (policy, config) in policies.items()}  # fmt: skip
    return {
        "goal": goal[0],
        "positions": {
            label: [traj.positions[0] for traj in out.trajectories] for label, out in outs.items()
        },
        "returns": {label: out.returns[0] for label, out in outs.items()},
    }


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
        figure_navigation_paths(navigation_paths()).savefig(
            args.figures / "navigation_trajectories.png", dpi=110
        )
        print(table4_markdown(results))
        print(f"\n{num_goals} test goals, {results['episodes']} episodes per goal and step, "
              f"on {results['hardware']}")  # fmt: skip
        return 0
    if args.domain == "omniglot":
        results = evaluate_omniglot(num_tasks=args.tasks, settings=args.setting, progress=True)
        if kept is not None:
            results = merge_omniglot_results(kept, results)
        atomic_write_text(previous, json.dumps(results, indent=1) + "\n")
        figure_omniglot_curves(results).savefig(
            args.figures / "omniglot_accuracy_vs_steps.png", dpi=120
        )
        print(table1_markdown(results))
        print()
        print(omniglot_summary(results))
        return 0
    results = evaluate_sinusoid(num_tasks=args.tasks)
    atomic_write_text(args.results / "sinusoid.json", json.dumps(results, indent=1) + "\n")
    figure_sinusoid_fits(fits_data(load_sinusoid_learners())).savefig(
        args.figures / "sinusoid_fits.png", dpi=120
    )
    figure_sinusoid_curves(results).savefig(args.figures / "sinusoid_mse_vs_steps.png", dpi=120)
    print(table2_markdown(results))
    print(f"\n{args.tasks} tasks per K on {results['hardware']}; wrote {args.results / 'sinusoid.json'}, "
          f"{args.figures / 'sinusoid_fits.png'}, {args.figures / 'sinusoid_mse_vs_steps.png'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
