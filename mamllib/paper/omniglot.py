"""Omniglot few-shot classification (the paper's Section 5.2): Table 1, reproduced.

Every shipped network and the baselines on the same 600 test tasks per setting (15 query
images per class), by the paper's transductive protocol and a non-transductive one
(``mamllib.paper.query_batching``); ``python -m mamllib.reproduce omniglot`` writes
``results/omniglot.json`` and the ``figures``, and prints the paper's Table 1 beside ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from mamllib.baselines import scratch_learner
from mamllib.batch import TaskBatch
from mamllib.checkpoints import hardware
from mamllib.data import load_omniglot
from mamllib.evaluate import summarize_curve
from mamllib.experiments import OmniglotExperiment, load_learner, saved_config
from mamllib.experiments.omniglot import OmniglotConfig, accuracy_curve, few_shot_head
from mamllib.maml import MAML
from mamllib.paper.query_batching import PROTOCOL, describe, evaluate_protocols
from mamllib.paths import CHECKPOINTS
from mamllib.tasks.omniglot import OmniglotTasks, split_characters
from mamllib.viz.figures import figure_omniglot_curves
from mamllib.viz.omniglot import figure_query_batching

# Table 1 of Finn et al. (2017): second-order MAML, accuracy % ± 95% CI.
PAPER_TABLE1 = {(5, 1): (98.7, 0.4), (5, 5): (99.9, 0.1),
                (20, 1): (95.8, 0.3), (20, 5): (98.9, 0.2)}  # fmt: skip
# First-order MAML as reported by Nichol, Achiam & Schulman (2018), Table 1.
PAPER_FIRST_ORDER = {(5, 1): 98.3, (5, 5): 99.2, (20, 1): 89.4, (20, 5): 97.9}
TEST_SEED = 2017
FIRST_ORDER = "MAML (first-order)"
REQUIRED = ("MAML", "pre-trained")
LEARNERS = ("MAML", FIRST_ORDER, "pre-trained", "scratch")  # the columns of Table 1
SHARED_PRETRAIN = "omniglot_5way1shot_pretrain.pt"  # the pre-trained network for every setting


def checkpoint_paths(
    n_way: int = 5, k_shot: int = 1, checkpoint_dir: str | Path | None = None
) -> dict[str, Path]:
    """Where the shipped N-way K-shot checkpoints live, by learner label (present or not)."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else CHECKPOINTS
    stem = f"omniglot_{n_way}way{k_shot}shot"
    pretrained = folder / f"{stem}_pretrain.pt"
    if not pretrained.is_file():
        # Pre-training never sees an N-way task (one classifier over all training classes,
        # its head replaced per task), so one network serves every N and K.
        pretrained = folder / SHARED_PRETRAIN
    return {
        "MAML": folder / f"{stem}_maml.pt",
        FIRST_ORDER: folder / f"{stem}_maml_fo.pt",
        "pre-trained": pretrained,
    }


def shipped_checkpoints() -> dict[str, dict[str, Path]]:
    """Shipped Omniglot checkpoints: setting (``"5-way 1-shot"``) -> learner label -> path.

    A setting without a pre-trained network of its own gets the shared one.
    """
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(CHECKPOINTS.glob("omniglot_*way*shot_*.pt")):
        config = load_learner(path, experiment="omniglot")[1]["config"]
        setting = f"{config['n_way']}-way {config['k_shot']}-shot"
        if config["method"] == "pretrain":
            label = "pre-trained"
        else:
            label = FIRST_ORDER if config["first_order"] else "MAML"
        found.setdefault(setting, {})[label] = path
    shared = CHECKPOINTS / SHARED_PRETRAIN
    for paths in found.values():
        if shared.is_file():
            paths.setdefault("pre-trained", shared)  # N- and K-independent (see checkpoint_paths)
    return found


def evaluable_settings(settings: Sequence[str] | None = None) -> dict[str, dict[str, Path]]:
    """The shipped settings that have a second-order MAML checkpoint (all, or ``settings``),
    each with its checkpoints as in ``shipped_checkpoints``.

    Raises:
        ValueError: a name in ``settings`` is not one of them (the message lists them).
    """
    shipped = {s: paths for s, paths in shipped_checkpoints().items() if "MAML" in paths}
    if settings is None:
        return shipped
    unknown = [s for s in settings if s not in shipped]
    if unknown:
        raise ValueError(
            f"no shipped second-order MAML checkpoint for setting(s) {unknown}; "
            f"valid: {sorted(shipped)}"
        )
    return {s: shipped[s] for s in settings}


def load_learners(
    n_way: int = 5,
    k_shot: int = 1,
    checkpoint_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    path: str = "auto",
) -> tuple[dict[str, MAML], dict[str, dict]]:
    """The shipped learners for N-way K-shot tasks, ready to adapt, and their checkpoints.

    ``"MAML"`` and ``"pre-trained"`` (its classifier head replaced by a zero N-way head,
    ``few_shot_head``) must exist; ``"MAML (first-order)"`` is included when its
    checkpoint does. ``"scratch"`` is a randomly initialised ``Conv4`` (seed 0).

    Args:
        path: the evaluation path (``"auto"``, ``"vmap"``, ``"loop"``) set on every
            learner: the one a run trained with (vmap on a GPU) need not be the fastest
            on this device.

    Returns:
        ``(learners, checkpoints)``: label -> learner, and label -> checkpoint dict of each
        loaded file (``"iteration"``, ``"config"``, ``"history"``, ``"provenance"``, ...).

    Raises:
        FileNotFoundError: a required checkpoint is missing (the message names it).
    """
    paths = checkpoint_paths(n_way, k_shot, checkpoint_dir)
    missing = [str(paths[label]) for label in REQUIRED if not paths[label].is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing checkpoint(s) {missing}; train them with `python -m mamllib.train omniglot "
            "...` (see notebooks/02_omniglot.ipynb, Section 3)"
        )
    present = {label: file for label, file in paths.items() if file.is_file()}
    learners, checkpoints, _ = setting_learners(present, device)
    for learner in learners.values():
        learner.config = replace(learner.config, path=path)
    return learners, checkpoints


def meta_test_episodes(config: OmniglotConfig, num_tasks: int, device: torch.device | str = "cpu",
                       seed: int = TEST_SEED) -> TaskBatch:  # fmt: skip
    """``num_tasks`` N-way K-shot episodes of the test characters, ``eval_query`` per class.

    The same ``seed`` gives the same tasks for every learner evaluated on them.
    """
    data = load_omniglot()
    splits = split_characters(data, config.split, seed=config.split_seed, n_val=config.n_val)
    tasks = OmniglotTasks(data.float_images(device), splits["test"])
    generator = torch.Generator(torch.device(device)).manual_seed(seed)
    return tasks.sample(
        num_tasks, config.n_way, config.k_shot, config.eval_query, generator=generator
    )


def evaluate_learners(learners: Mapping[str, MAML], batch: TaskBatch, steps: int, inner_lr: float,
                      *, progress: bool = False) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Query accuracy after 0..steps inner updates, mean ± 95% CI, for each learner.

    ``progress=True`` shows a bar per learner over the tasks.
    """
    return {
        label: summarize_curve(
            accuracy_curve(learner, batch, steps, inner_lr=inner_lr, progress=progress, desc=label)
        )
        for label, learner in learners.items()
    }


def evaluate(
    num_tasks: int = 600,
    device: str | torch.device = "cpu",
    progress: bool = False,
    *,
    settings: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every shipped Omniglot network and the scratch baseline, on the same test tasks per setting.

    MAML networks are fine-tuned with their own α and test-time steps; the baselines with
    those of the second-order MAML network of the setting. ``settings`` (e.g.
    ``["5-way 1-shot"]``) evaluates only those; the test tasks of a setting depend on the
    setting and ``num_tasks`` only, so its numbers are the same as in a full run.
    ``progress=True`` shows a bar per learner.

    Returns:
        ``results/omniglot.json``: ``"settings"``: setting -> its N, K, test-time steps,
        α, ``"curves"`` (label -> ``summarize_curve`` of the query accuracy, transductive),
        ``"non_transductive"`` and ``"query_batching"`` (``evaluate_protocols``: the accuracy
        after the steps, by other protocols) and ``"checkpoints"`` (label ->
        file, iterations done and planned, training time and hardware); ``"protocol"``
        (``PROTOCOL``: what each of them measures), the number of test tasks and the
        hardware.

    Raises:
        ValueError: a setting without a shipped second-order MAML checkpoint.
    """
    shipped = evaluable_settings(settings)
    results: dict[str, Any] = {"num_tasks": num_tasks, "hardware": hardware(device),
                               "torch": str(torch.__version__), "protocol": PROTOCOL,
                               "settings": {}}  # fmt: skip
    for setting, paths in shipped.items():
        learners, checkpoints, config = setting_learners(paths, device)
        batch = meta_test_episodes(config, num_tasks, device)
        steps, inner_lr = config.eval_inner_steps, config.inner_lr
        results["settings"][setting] = {
            "n_way": config.n_way,
            "k_shot": config.k_shot,
            "steps": steps,
            "inner_lr": inner_lr,
            "curves": evaluate_learners(learners, batch, steps, inner_lr, progress=progress),
            **evaluate_protocols(learners, batch, config, progress=progress),
            "checkpoints": {
                label: {
                    "file": paths[label].name,
                    "iteration": ckpt["iteration"],
                    "iterations_planned": ckpt["config"]["iterations"],
                    "wall_time_s": ckpt["wall_time_s"],
                    "trained_on": ckpt["provenance"]["hardware"],
                }
                for label, ckpt in checkpoints.items()
            },
        }
    return results


def setting_learners(
    paths: Mapping[str, Path], device: str | torch.device = "cpu"
) -> tuple[dict[str, MAML], dict[str, dict], OmniglotConfig]:
    """One setting's shipped learners (``shipped_checkpoints()[setting]``) and the scratch
    baseline, ready to adapt; their checkpoints; the second-order MAML network's config."""
    loaded = {label: load_learner(path, device, experiment="omniglot")
              for label, path in paths.items()}  # fmt: skip
    config = saved_config(OmniglotExperiment, loaded["MAML"][1], paths["MAML"])
    learners = {label: learner for label, (learner, _) in loaded.items()}
    if "pre-trained" in learners:
        learners["pre-trained"] = few_shot_head(learners["pre-trained"], config.n_way)
    learners["scratch"] = scratch_learner(config, device=device)
    return learners, {label: ckpt for label, (_, ckpt) in loaded.items()}, config


def merge_results(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` with the settings evaluated in ``new`` replaced (a partial re-evaluation).

    Both must count the same test tasks, or the table would mix estimates of different
    precision; the hardware of each setting's evaluation is kept with it.

    Raises:
        ValueError: ``old`` and ``new`` count different numbers of test tasks.
    """
    if old["num_tasks"] != new["num_tasks"]:
        raise ValueError(
            f"cannot merge an evaluation on {new['num_tasks']} test tasks into one on "
            f"{old['num_tasks']}; rerun with --tasks {old['num_tasks']} or without --setting"
        )
    settings = {s: {"evaluated_on": old["hardware"], **r} for s, r in old["settings"].items()}
    settings.update({s: {**r, "evaluated_on": new["hardware"]} for s, r in new["settings"].items()})
    return {**new, "settings": settings}


def _in_paper_order(results: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The evaluated settings in the paper's order: 5-way before 20-way, 1-shot before 5-shot."""
    return sorted(
        results["settings"].items(), key=lambda item: (item[1]["n_way"], item[1]["k_shot"])
    )


def summary(results: Mapping[str, Any]) -> str:
    """Per setting: accuracy after 1 and after all test-time steps for each learner, how far
    each checkpoint was trained, and MAML's lead over the pre-trained network."""
    lines = []
    for setting, r in _in_paper_order(results):
        s, curves = r["steps"], r["curves"]
        on = r.get("evaluated_on", results["hardware"])
        lines.append(
            f"{setting}, α = {r['inner_lr']}, {results['num_tasks']} test tasks, evaluated on {on}"
            " (transductive, the paper's protocol; non-transductive: each query image with the"
            " support set only):"
        )
        for label, c in curves.items():
            line = (
                f"  {label:19s} 1 step {100 * c['mean'][1]:5.1f}%, "
                f"{s} steps {100 * c['mean'][s]:5.1f} ± {100 * c['ci95'][s]:.1f}%"
            )
            honest = r.get("non_transductive", {}).get(label)
            if honest:
                line += f" (non-transductive {describe(honest)})"
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


def _cell(summary: Mapping[str, Any], step: int) -> str:
    return f"{100 * summary['mean'][step]:.1f} ± {100 * summary['ci95'][step]:.1f}"


def table_markdown(
    results: Mapping[str, Any],
    *,
    steps: Sequence[int] = (0, 1, 2, 3),
    n_way: int = 5,
    k_shot: int = 1,
) -> str:
    """The paper's Table 1 beside ours: accuracy % ± 95% CI, as a Markdown table.

    Args:
        results: ``evaluate``'s output (``results/omniglot.json``): a row per setting in
            the paper's order, a column per learner after the test-time steps (and how far
            an unfinished run got), beside the paper's and Nichol et al.'s numbers. Or one
            setting's curves, label -> ``summarize_curve`` (``evaluate_learners``): a row
            per learner, a column per step of ``steps``, the published numbers of
            ``n_way``-way ``k_shot``-shot in the last (they are after 3 steps for 5-way).
        steps: the columns of the one-setting table.
        n_way: N of the one-setting table.
        k_shot: K of the one-setting table.
    """
    if "settings" not in results:
        return _setting_table(results, steps, n_way, k_shot)
    lines = [
        "| Omniglot | MAML, paper | first-order MAML, Nichol et al. | MAML, mamllib "
        "| first-order MAML, mamllib | pre-trained, mamllib | scratch, mamllib |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, r in _in_paper_order(results):
        key = (r["n_way"], r["k_shot"])
        paper, paper_ci = PAPER_TABLE1[key]
        cells = []
        for label in LEARNERS:
            c = r["curves"].get(label)
            if c is None:
                cells.append("—")
                continue
            cell = _cell(c, -1)
            ckpt = r["checkpoints"].get(label)
            if ckpt and ckpt["iteration"] < ckpt["iterations_planned"]:
                cell += (
                    f" (after {ckpt['iteration']:,} of {ckpt['iterations_planned']:,} iterations)"
                )
            cells.append(cell)
        lines.append(
            f"| {setting}, {r['steps']} steps, transductive | {paper} ± {paper_ci} | "
            f"{PAPER_FIRST_ORDER[key]} | " + " | ".join(cells) + " |"
        )
        if "non_transductive" in r:
            honest = [r["non_transductive"].get(label) for label in LEARNERS]
            cells = [describe(c) if c else "—" for c in honest]
            lines.append(f"| {setting}, {r['steps']} steps, non-transductive | — | — | "
                         + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def _setting_table(
    curves: Mapping[str, Mapping], steps: Sequence[int], n_way: int, k_shot: int
) -> str:
    """``table_markdown`` of one setting's curves: a row per learner, a column per step."""
    tasks = next(iter(curves.values()))["num_tasks"]
    header = " | ".join(f"{s} step{'' if s == 1 else 's'}" for s in steps)
    rows = [
        f"| {n_way}-way {k_shot}-shot, {tasks} test tasks: accuracy % ± 95% CI, transductive "
        f"| {header} |",
        "|---|" + "---:|" * len(steps),
    ]
    rows += [
        f"| {label} | " + " | ".join(_cell(summary, s) for s in steps) + " |"
        for label, summary in curves.items()
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


def figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """The figures of ``evaluate``'s output (``results/omniglot.json``) by the file name
    ``reproduce`` gives them, each with the ``dpi`` it is saved with: the accuracy after each
    test-time step per setting, and (when evaluated) against how the query images are batched.
    """
    drawn = {"omniglot_accuracy_vs_steps.png": figure_omniglot_curves(results)}
    if any("query_batching" in r for r in results["settings"].values()):
        drawn["omniglot_query_batching.png"] = figure_query_batching(results)
    for figure in drawn.values():
        figure.set_dpi(120)
    return drawn
