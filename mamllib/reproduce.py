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

Each prints the paper's table beside ours. The work is done by ``mamllib.paper``: this
module reads the command line, writes the files and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure

from mamllib.checkpoints import atomic_write, atomic_write_text
from mamllib.paper import navigation, omniglot, sinusoid
from mamllib.paths import FIGURES, RESULTS

DOMAINS = {"sinusoid": sinusoid, "omniglot": omniglot, "navigation": navigation}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked: a user error exits with ``error: ...`` and status 2,
    before any evaluation (``--setting`` needs a previous ``omniglot.json`` with as many
    test tasks)."""
    parser = argparse.ArgumentParser(prog="python -m mamllib.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("domain", choices=list(DOMAINS))
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
    if args.tasks is None:
        args.tasks = 40 if args.domain == "navigation" else 600
    if args.tasks < 2:
        parser.error(f"--tasks must be >= 2, got {args.tasks}")
    args.kept = None  # the previous results a partial re-evaluation keeps
    if args.setting is not None:
        if args.domain != "omniglot":
            parser.error(f"--setting is for omniglot only, not {args.domain}")
        try:
            omniglot.evaluable_settings(args.setting)
        except ValueError as error:
            parser.error(f"--setting: {error}")
        previous = args.results / "omniglot.json"
        if not previous.is_file():
            parser.error(f"--setting keeps the other settings from {previous}, which does not "
                         "exist; run without --setting first")  # fmt: skip
        args.kept = json.loads(previous.read_text())
        if args.kept["num_tasks"] != args.tasks:
            parser.error(f"--tasks {args.tasks} differs from the {args.kept['num_tasks']} test "
                         f"tasks in {previous}; a partial re-evaluation must use the same number")  # fmt: skip
    return args


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` atomically, at its own dpi, in the format of its suffix."""
    return atomic_write(
        path, lambda f: figure.savefig(f, format=path.suffix.lstrip("."), dpi=figure.dpi)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    matplotlib.use("Agg")
    paper = DOMAINS[args.domain]
    if args.domain == "omniglot":
        results = paper.evaluate(args.tasks, progress=True, settings=args.setting)
        if args.kept is not None:
            results = omniglot.merge_results(args.kept, results)
    else:
        results = paper.evaluate(args.tasks, progress=True)
    written = [atomic_write_text(args.results / f"{args.domain}.json",
                                 json.dumps(results, indent=1) + "\n")]  # fmt: skip
    for name, figure in paper.figures(results).items():
        written.append(save_figure(figure, args.figures / name))
    print(paper.table_markdown(results))
    if args.domain == "omniglot":
        print()
        print(omniglot.summary(results))
    elif args.domain == "navigation":
        print(f"\n{args.tasks} test goals, {results['episodes']} episodes per goal and step, "
              f"on {results['hardware']}")  # fmt: skip
    else:
        print(f"\n{args.tasks} tasks per K on {results['hardware']}; wrote "
              + ", ".join(str(path) for path in written))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
