"""How many CPU threads should torch use for the course's small networks? Measured.

Command line::

    python -m mamllib.tools.bench_threads             # every workload, 1 and 2 threads
    python -m mamllib.tools.bench_threads --workloads sinusoid-train --repeats 5

Each workload is the heavy part of a notebook cell or a training command, on data of
the same shapes (random images stand in for Omniglot, so no data set is needed). Every
(workload, threads, load) measurement runs in a fresh process, and the measurements are
interleaved, so that a slow minute on the machine hits every setting alike; the median
of ``--repeats`` runs is reported. "Busy" means that one other process keeps one core
busy for the whole measurement (``--load`` processes, default 1): a student's laptop
with a browser, a video call or a second notebook. On a 2-core CPU one torch thread was
faster in every workload, idle or busy (README, "Speed"): hence
``mamllib.set_threads(1)`` in every notebook's setup cell and ``--threads 1`` as the
training command's default on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

WORKLOADS: dict[str, str] = {
    "sinusoid-train": "notebook 1's live training: 100 meta-iterations, MLP 1-40-40-1, "
    "25 tasks, K = 10, 1 step, second-order",
    "omniglot-eval": "notebook 2's evaluation: 20 5-way 1-shot tasks, 15 query images per "
    "class, 5 steps (Conv4)",
    "omniglot-train": "python -m mamllib.train omniglot: 3 meta-iterations, 32 tasks, "
    "1 query image per class, second-order (Conv4, vmap)",
    "navigation-eval": "notebook 3's Table 4: 8 goals, 20 episodes, 3 policy-gradient steps",
}


def _sinusoid_train() -> None:
    import torch.nn.functional as F

    from mamllib.maml import MAML, MAMLConfig, meta_step
    from mamllib.models import MLP
    from mamllib.tasks.sinusoid import SinusoidTasks

    tasks = SinusoidTasks()
    maml = MAML(MLP((1, 40, 40, 1)), F.mse_loss, MAMLConfig(inner_lr=0.01))
    optimizer = maml.make_optimizer()
    for _ in range(100):
        meta_step(maml, optimizer, tasks.sample(25, 10, 10))


def _omniglot_batch(num_tasks: int, k_query: int):
    import torch

    from mamllib.batch import TaskBatch

    labels = torch.arange(5)
    return TaskBatch(
        torch.rand(num_tasks, 5, 1, 28, 28),
        labels.repeat(num_tasks, 1),
        torch.rand(num_tasks, 5 * k_query, 1, 28, 28),
        labels.repeat_interleave(k_query).repeat(num_tasks, 1),
    )


def _omniglot_eval() -> None:
    import torch.nn.functional as F

    from mamllib.evaluate import accuracy, adaptation_curve
    from mamllib.models import Conv4

    model = Conv4(5)
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    adaptation_curve(model, params, _omniglot_batch(20, 15), F.cross_entropy,
                     inner_lr=0.4, steps=5, metric_fn=accuracy, buffers=buffers)  # fmt: skip


def _omniglot_train() -> None:
    import torch.nn.functional as F

    from mamllib.maml import MAML, MAMLConfig, meta_step
    from mamllib.models import Conv4

    maml = MAML(Conv4(5), F.cross_entropy, MAMLConfig(inner_lr=0.4, path="vmap"))
    optimizer = maml.make_optimizer()
    for _ in range(3):
        meta_step(maml, optimizer, _omniglot_batch(32, 1))


def _navigation_eval() -> None:
    import torch

    from mamllib.experiments.navigation import (
        NavigationConfig,
        build_navigation_policy,
        evaluate_policy,
    )
    from mamllib.paper.navigation import test_goals

    config = NavigationConfig()
    torch.manual_seed(0)
    policy = build_navigation_policy(config)
    evaluate_policy(policy, config, test_goals(8), seed=0, episodes=20)


RUN: dict[str, Callable[[], None]] = {
    "sinusoid-train": _sinusoid_train,
    "omniglot-eval": _omniglot_eval,
    "omniglot-train": _omniglot_train,
    "navigation-eval": _navigation_eval,
}


def _child(workload: str, threads: int) -> float:
    """Seconds for one run of ``workload`` with ``threads`` torch threads (after a warm-up)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    RUN[workload]()  # warm-up: imports, first-call kernels, allocator
    start = time.perf_counter()
    RUN[workload]()
    return time.perf_counter() - start


def _busy() -> subprocess.Popen:
    """A process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(workload: str, threads: int, load: int) -> float:
    """One measurement in a fresh process, with ``load`` busy processes beside it."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    hogs = [_busy() for _ in range(load)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mamllib.tools.bench_threads", "--_child", workload, str(threads)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{workload} with {threads} thread(s) failed: {tail}")
    return float(proc.stdout.strip().splitlines()[-1])


def run(workloads: Sequence[str], threads: Sequence[int], load: int, repeats: int) -> list[dict]:
    """Median seconds per (workload, threads, idle/busy), measured interleaved."""
    settings = [(w, t, n) for w in workloads for n in (0, load) for t in threads]
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    for _ in range(repeats):
        for setting in settings:
            times[setting].append(measure(*setting))
    return [
        {"workload": w, "threads": t, "busy_processes": n,
         "seconds": statistics.median(times[(w, t, n)]), "runs": times[(w, t, n)]}
        for w, t, n in settings
    ]  # fmt: skip


def format_table(rows: list[dict], threads: Sequence[int], load: int) -> str:
    def seconds(w: str, t: int, n: int) -> float:
        return next(
            r["seconds"]
            for r in rows
            if (r["workload"], r["threads"], r["busy_processes"]) == (w, t, n)
        )

    first, *others = threads
    header = ["workload"]
    for state in ("idle", "busy"):
        header += [f"{state}, {t} thr (s)" for t in threads]
        header += [f"{state}, {t} vs {first} thr" for t in others]
    lines = [" | ".join(header)]
    for w in dict.fromkeys(r["workload"] for r in rows):
        cells = [w]
        for n in (0, load):
            cells += [f"{seconds(w, t, n):.2f}" for t in threads]
            cells += [f"{seconds(w, t, n) / seconds(w, first, n):.2f}x time" for t in others]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mamllib.tools.bench_threads", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated (default: all of {', '.join(WORKLOADS)})")  # fmt: skip
    parser.add_argument("--threads", default="1,2", help="thread counts to compare (default 1,2)")
    parser.add_argument("--load", type=int, default=1, help="busy processes for 'busy' (default 1)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per setting; median (default 3)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        return args
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown or not args.workloads:
        parser.error(
            f"--workloads: unknown {unknown or [args.workloads]}; valid: {', '.join(WORKLOADS)}"
        )
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads must be comma-separated integers >= 1, got {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error(f"--threads must be comma-separated integers >= 1, got {args.threads}")
    if args.load < 1:
        parser.error(f"--load must be >= 1 (busy processes), got {args.load}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args._child:
        workload, threads = args._child
        print(_child(workload, int(threads)))
        return 0
    from mamllib.checkpoints import hardware

    cpu = hardware().rsplit(",", 1)[0]  # the CPU and its cores; the threads vary below
    print(f"{cpu}; busy = {args.load} other process(es) spinning; "
          f"median of {args.repeats} interleaved runs, each in a fresh process")  # fmt: skip
    for w in args.workloads:
        print(f"  {w}: {WORKLOADS[w]}")
    rows = run(args.workloads, args.threads, args.load, args.repeats)
    print(format_table(rows, args.threads, args.load))
    if args.json is not None:
        report = {"hardware": cpu, "cpu_count": os.cpu_count(), "load": args.load,
                  "repeats": args.repeats, "workloads": {w: WORKLOADS[w] for w in args.workloads},
                  "results": rows}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
