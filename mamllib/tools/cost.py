"""What a meta-iteration costs against the inner steps: the command line of ``mamllib.cost``.

Command line::

    python -m mamllib.tools.cost --workload W3 --meta-batch-size 4 --max-steps 10 \\
        --json results/cost.json --figure figures/cost_vs_steps.png
    python -m mamllib.tools.cost --workload W1 --quick      # a smoke test

It runs ``mamllib.cost.measure`` on a workload of ``mamllib.workloads`` (random data of the
paper's shapes), prints the table, and writes the report as JSON and its figure
(``mamllib.viz.figures.plot_cost``). What is measured, and how: ``mamllib.cost``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from mamllib.checkpoints import command_line, hardware
from mamllib.checks import check_int
from mamllib.cost import (
    DEFAULTS,
    PATH,
    QUICK,
    format_table,
    increments,
    measure,
    series,
    workload_for,
)
from mamllib.viz.figures import plot_cost
from mamllib.workloads import WORKLOADS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked: a bad value exits with its name before any work."""
    parser = argparse.ArgumentParser(
        prog="python -m mamllib.tools.cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workload", default="W3", help=f"one of {', '.join(WORKLOADS)}")
    parser.add_argument("--max-steps", type=int, default=10, help="inner steps 1..N (default 10)")
    parser.add_argument(
        "--meta-batch-size", type=int, default=None, help="tasks (default: the workload's)"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--warmup", type=int, default=None, help=f"default {DEFAULTS['warmup']}")
    parser.add_argument("--repeats", type=int, default=None, help=f"default {DEFAULTS['repeats']}")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}, ≤ 3 steps")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--figure", type=Path, default=None, help="write the figure here")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key in base:
        if getattr(args, key) is None:
            setattr(args, key, base[key])
    if args.quick:
        args.max_steps = min(args.max_steps, 3)
    try:
        workload_for(args.workload, steps=1, first_order=False)
        check_int("--max-steps", args.max_steps, 1)
        if args.meta_batch_size is not None:
            check_int("--meta-batch-size", args.meta_batch_size, 1)
        check_int("--warmup", args.warmup, 0)
        check_int("--repeats", args.repeats, 0)
        if args.threads is not None:
            check_int("--threads", args.threads, 1)
    except ValueError as exc:
        parser.error(str(exc))
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and each order's bytes per extra step, write JSON and figure."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(
        f"{args.workload} on the {PATH!r} path, {hardware(args.device)}, torch {torch.__version__}"
    )
    report = measure(
        args.workload,
        args.max_steps,
        meta_batch_size=args.meta_batch_size,
        device=args.device,
        warmup=args.warmup,
        repeats=args.repeats,
        progress=True,
    )
    print(report["description"])
    print(format_table(report))
    saved = series(report, "saved_bytes")
    for order, (_, values) in saved.items():
        steps = sorted(set(increments(values)))
        print(f"{order}: saved bytes per extra inner step: {steps or ['-']}")
    report["settings"].update(threads=torch.get_num_threads(), quick=args.quick)
    report["command"] = command_line()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        plot_cost(report)[0].figure.savefig(args.figure, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
