"""Meta-iterations per second of each meta-batch path against the per-task ``loop`` path.

Command line::

    python -m mamllib.tools.bench                 # every workload, on CUDA when available
    python -m mamllib.tools.bench --device cpu --workloads W1,W2 --threads 2 --json bench.json
    python -m mamllib.tools.bench --quick         # a few iterations: a smoke test
    python -m mamllib.tools.bench --device cuda --workloads T1-5w1s,T1-5w5s,T1-20w1s,T1-20w5s

Each workload (``mamllib.workloads``) runs the paper's shapes on random data (no data set
needed); ``T1-*`` are the four training settings of Table 1. Every row is printed as soon as
it is measured. For each workload every path (``loop``, ``vmap``, ``hybrid``, and on CUDA
``graph``: the ``vmap`` meta-step captured in a CUDA graph and replayed, as training runs it
there, ``mamllib.fast.graph``) must first agree with ``loop`` on the meta-gradient of one fixed
batch at the same θ (in float64, the largest difference at most 1e-9 of the largest gradient
entry); a workload whose paths disagree is reported as an error and the command exits
non-zero. The path ``"auto"`` would pick (``mamllib.fast.choose_path``) is marked "default".
Then each (workload, path) is measured in a fresh child process, so that one measurement's memory and allocator state cannot leak
into the next: a meta-iteration (zero_grad, ``meta_loss``, backward, Adam step) is run a
few times to warm up, then ``repeats`` blocks of ``iters`` iterations are timed and the
median rate is reported.

Peak memory is what a meta-iteration needs above what the process held right before
the timed section (after warm-up, so one-time costs are left out: Adam's state, lazily
initialised kernels, and the pages of library code that the first iteration touches,
which are ~10 MB of resident memory for the sinusoid MLP). On CUDA it is
``torch.cuda.max_memory_allocated`` minus ``memory_allocated``, both exact tensor bytes; for
``graph`` from before the capture, since a graph takes its memory (its private pool) once, when
it is captured.
On the CPU it is the child's ``ru_maxrss`` minus its resident set size (RSS) before the
timed section; the warm-up runs the same iterations, so its peak is the same peak. This
can undercount if the C allocator keeps pages of the warm-up's peak resident, and is
only good to about a megabyte. The absolute figures are in the JSON as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mamllib.experiments.common import resolve_device
from mamllib.fast import choose_path
from mamllib.fast.graph import WARMUP, capture
from mamllib.workloads import (
    SEED,
    WORKLOADS,
    Workload,
    build,
    meta_iteration,
    objective,
    parse_workloads,
)

BENCH_PATHS = ("loop", "vmap", "hybrid")
GRAPH = "graph"  # on CUDA only
GRAD_TOL = 1e-9
DEFAULTS = {"warmup": 3, "iters": 20, "repeats": 5}
QUICK = {"warmup": 1, "iters": 3, "repeats": 2}


# ----------------------------------------------------------------------------- gradient check


@contextmanager
def _no_tf32():
    """TF32 matmuls/convolutions (cuDNN's default for convolutions) round to ~1e-3,
    which would make the paths disagree for reasons that have nothing to do with MAML."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_gradients(workload: Workload, device: torch.device) -> tuple[bool, float]:
    """Does every path give ``loop``'s meta-gradient at the same θ on the same batch?

    Returns:
        Whether the largest absolute difference (over all paths) is at most ``GRAD_TOL``
        times the largest gradient entry, and that difference relative to that entry.
    """
    # In float64, so that the comparison is of the algorithms, not of float32 rounding
    # (amplified by α = 0.4 steps through batch norm on 5 images, it reaches ~1e-4).
    setup = build(workload, device, torch.float64)
    params = list(setup.model.parameters())
    with _no_tf32():
        grads = {
            path: torch.cat(
                [
                    g.reshape(-1)
                    for g in torch.autograd.grad(objective(workload, setup, path), params)
                ]
            )
            for path in BENCH_PATHS
        }
        if device.type == "cuda":
            grads[GRAPH] = _graph_gradient(workload, setup)
    loop_grad = grads["loop"]
    relative = max(
        ((g - loop_grad).abs().max() / loop_grad.abs().max()).item() for g in grads.values()
    )
    return relative <= GRAD_TOL, relative


def bench_paths(device: torch.device) -> tuple[str, ...]:
    """The paths measured on ``device``: ``graph`` needs CUDA."""
    return (*BENCH_PATHS, GRAPH) if device.type == "cuda" else BENCH_PATHS


def _graph_gradient(workload: Workload, setup: Any) -> torch.Tensor:
    """The ``vmap`` meta-gradient, captured in a CUDA graph and replayed once."""
    params = list(setup.model.parameters())

    def gradient() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(objective(workload, setup, "vmap"), params)

    graph, static = capture(gradient, warmup=WARMUP)
    graph.replay()
    return torch.cat([g.reshape(-1) for g in static])


# ----------------------------------------------------------------------------- one measurement


def _current_rss_bytes() -> int | None:
    """Resident set size now (Linux ``/proc``); ``None`` where that is not available."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _max_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(
    workload: Workload, path: str, device: torch.device, *, warmup: int, iters: int, repeats: int
) -> dict[str, Any]:
    """Time ``repeats`` blocks of ``iters`` meta-iterations; peak memory of the timed section.

    Meant to run in a fresh process (``--_child``): on the CPU ``ru_maxrss`` is a
    process-wide high-water mark.
    """
    setup = build(workload, device)
    cuda = device.type == "cuda"

    def memory_now() -> int | None:
        if not cuda:
            return _current_rss_bytes()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)

    if path == GRAPH:  # the eager steps before the capture; the capture is in the peak
        for _ in range(WARMUP):
            meta_iteration(workload, setup, path)
        baseline = memory_now()
    for _ in range(warmup):
        meta_iteration(workload, setup, path)
    if path != GRAPH:
        baseline = memory_now()
    block_seconds = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            for _ in range(iters):
                meta_iteration(workload, setup, path)
            end.record()
            end.synchronize()
            block_seconds.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                meta_iteration(workload, setup, path)
            block_seconds.append(time.perf_counter() - t0)

    peak_total = torch.cuda.max_memory_allocated(device) if cuda else _max_rss_bytes()
    rates = [iters / s for s in block_seconds]
    iters_per_s = statistics.median(rates)
    return {
        "workload": workload.name,
        "path": path,
        "iters_per_s": iters_per_s,
        "ms_per_iter": 1e3 / iters_per_s,
        "block_seconds": block_seconds,
        # RSS and ru_maxrss are sampled differently by the kernel; they can differ by a
        # fraction of a megabyte either way, hence the clamp.
        "peak_mb": None if baseline is None else max(peak_total - baseline, 0) / 2**20,
        "peak_total_mb": peak_total / 2**20,
        "baseline_mb": None if baseline is None else baseline / 2**20,
        "peak_measure": "cuda.max_memory_allocated" if cuda else "ru_maxrss",
        "torch_threads": torch.get_num_threads(),
    }


def _run_child(
    workload: Workload,
    path: str,
    device: torch.device,
    settings: dict[str, int],
    threads: int | None,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "mamllib.tools.bench",
        "--_child",
        workload.name,
        path,
        "--device",
        str(device),
    ]
    for key, value in settings.items():
        cmd += [f"--{key}", str(value)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"measurement of {workload.name}/{path} failed: {tail}")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- report


def environment(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                name = next(
                    line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
                )
        except (OSError, StopIteration):
            pass
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _fmt_peak(row: dict[str, Any]) -> str:
    # RSS differences below a megabyte are noise (see the module docstring).
    if row.get("peak_measure") == "ru_maxrss" and row["peak_mb"] is not None and row["peak_mb"] < 1:
        return "<1"
    return _fmt(row.get("peak_mb"), ".1f")


HEADER = ("workload", "path", "iters/s", "ms/iter", "peak MB", "speed-up vs loop", "default",
          "grads match (max |Δ| / max |g|)")  # fmt: skip
WIDTHS = (8, 6, 9, 8, 8, 16, 7)  # the last column takes what it needs


def format_row(cells: Sequence[str], widths: Sequence[int] = WIDTHS) -> str:
    """One line of the table: columns of fixed widths, so that rows can be printed as they
    come (a wider cell pushes the rest of its own line only)."""
    return " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " | " + cells[-1]


def table_header(widths: Sequence[int] = WIDTHS) -> str:
    rule = "-+-".join("-" * w for w in widths) + "-+-" + "-" * len(HEADER[-1])
    return format_row(HEADER, widths) + "\n" + rule


def row_cells(r: dict[str, Any]) -> list[str]:
    match = f"{'yes' if r['grads_match'] else 'NO'} ({r['grad_relative_diff']:.1e})"
    if r.get("error"):
        match += f"  ERROR: {r['error']}"
    speedup = r.get("speedup_vs_loop")
    return [
        r["workload"],
        r["path"],
        _fmt(r.get("iters_per_s"), ".1f"),
        _fmt(r.get("ms_per_iter"), ".2f"),
        _fmt_peak(r),
        "-" if speedup is None else f"{speedup:.2f}x",
        "yes" if r.get("default") else "",
        match,
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The whole table at once (what was printed row by row)."""
    return "\n".join([table_header(), *(format_row(row_cells(r)) for r in rows)])


# ----------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mamllib.tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated names (default: all of {', '.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"few iterations, for a smoke test ({QUICK})"
    )
    parser.add_argument(
        "--warmup",
        type=_positive_int,
        default=None,
        help=f"untimed iterations first, at least one (default: {DEFAULTS['warmup']})",
    )
    parser.add_argument(
        "--iters",
        type=_positive_int,
        default=None,
        help=f"iterations per timed block (default: {DEFAULTS['iters']})",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        help=f"timed blocks; the median is reported (default: {DEFAULTS['repeats']})",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch.set_num_threads (default: torch's own choice)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--_child", nargs=2, metavar=("WORKLOAD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.workloads = parse_workloads(args.workloads)
        args.device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    if args._child:
        name, path = args._child
        if name not in WORKLOADS or path not in bench_paths(args.device):
            parser.error(f"--_child {name} {path}: unknown workload or path")
    base = QUICK if args.quick else DEFAULTS
    args.settings = {k: base[k] if getattr(args, k) is None else getattr(args, k) for k in base}
    return args


def measure_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (workload, path) row, each printed (and flushed) as soon as it is measured."""
    paths = bench_paths(args.device)
    widths = (max(WIDTHS[0], *(len(w.name) for w in args.workloads)), *WIDTHS[1:])
    print(table_header(widths), flush=True)
    rows: list[dict[str, Any]] = []

    def emit(row: dict[str, Any]) -> None:
        rows.append(row)
        print(format_row(row_cells(row), widths), flush=True)

    for w in args.workloads:
        match, diff = check_gradients(w, args.device)
        check = {"grads_match": match, "grad_relative_diff": diff}
        if not match:
            error = f"the paths' meta-gradients differ by {diff:.1e} of the largest entry (> {GRAD_TOL})"
            for p in paths:
                emit({"workload": w.name, "path": p, **check, "error": error})
            continue
        default = choose_path(w.build_model(), args.device)
        loop_rate = None
        for p in paths:  # "loop" first: every later row's speed-up is known when it prints
            try:
                measured = _run_child(w, p, args.device, args.settings, args.threads)
            except RuntimeError as exc:
                measured = {"workload": w.name, "path": p, "error": str(exc)}
            rate = measured.get("iters_per_s")
            loop_rate = rate if p == "loop" else loop_rate
            speedup = rate / loop_rate if rate and loop_rate else None
            emit({**measured, **check, "speedup_vs_loop": speedup, "default": p == default})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args._child:
        name, path = args._child
        print(json.dumps(measure(WORKLOADS[name], path, args.device, **args.settings)))
        return 0

    env = environment(args.device)
    print(
        f"device: {env['device']} ({env['device_name']}), torch {env['torch']}, "
        f"{env['torch_threads']} torch threads, {env['cpu_count']} CPUs"
    )
    print(
        f"settings: warm-up of {args.settings['warmup']}, then the median of "
        f"{args.settings['repeats']} timed blocks of {args.settings['iters']} meta-iterations each"
    )
    for w in args.workloads:
        print(f"  {w.name}: {w.description}")
    print(flush=True)

    rows = measure_all(args)
    ok = not any(r.get("error") for r in rows)
    how = (
        "torch.cuda.max_memory_allocated minus memory_allocated; graph: from before its capture"
        if args.device.type == "cuda"
        else "ru_maxrss of a fresh process minus its RSS, to ~1 MB"
    )
    print(f"\npeak MB: memory above what the process held before the timed section ({how}).")
    defaults = [r for r in rows if r.get("default") and r.get("speedup_vs_loop")]
    if defaults:
        print(
            "default path vs the per-task loop: "
            + ", ".join(
                f"{r['workload']} {r['speedup_vs_loop']:.2f}x ({r['path']})" for r in defaults
            )
        )
    rate = {(r["workload"], r["path"]): r.get("iters_per_s") for r in rows}
    graphed = [
        w.name for w in args.workloads if rate.get((w.name, GRAPH)) and rate.get((w.name, "vmap"))
    ]
    if graphed:
        print(
            "CUDA graph vs the same step eager (vmap): "
            + ", ".join(f"{n} {rate[n, GRAPH] / rate[n, 'vmap']:.2f}x" for n in graphed)
        )
    if not ok:
        print("\nERROR: some workloads were not measured (see the table).", file=sys.stderr)
    if args.json is not None:
        report = {
            "environment": env,
            "settings": {
                **args.settings,
                "threads": args.threads,
                "seed": SEED,
                "grad_tolerance_relative": GRAD_TOL,
            },
            "workloads": {w.name: w.description for w in args.workloads},
            "results": rows,
            "ok": ok,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
