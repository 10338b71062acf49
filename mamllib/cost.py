"""What a meta-iteration costs against the number of inner steps, second- vs first-order.

For a workload of ``mamllib.workloads`` (random data of the paper's shapes) and each
number of inner steps 1..``max_steps``, second- and first-order, ``measure`` measures:

- **time**: the median wall-clock time of a meta-iteration (zero_grad, ``meta_loss``,
  backward, Adam step; ``mamllib.workloads.meta_iteration``) over ``repeats`` iterations after a
  warm-up, the workloads taking turns (``time_iterations``). This depends on the
  machine and on what else runs on it.
- **saved memory**: the bytes of the tensors autograd keeps for the backward pass, at
  the moment the forward has finished — exact, and the same on every run of one torch
  version, whatever the machine's load. Every tensor autograd saves goes through the
  pack hook of ``torch.autograd.graph.saved_tensors_hooks``; the hook wraps it in a
  handle that the graph holds. Handles of a graph that is freed before the meta-backward
  (first-order MAML's inner gradients are taken with ``create_graph=False``, which frees
  that step's graph at once) die with it, so only what the meta-backward needs is
  counted: the unique storages of the live handles, leaving out those that exist without
  the meta-iteration (θ, the model's buffers, the batch). Python scalars that autograd
  wraps as 0-dim tensors are saved without the hooks (8 bytes each) and are not counted.
- **RSS increase** (CPU only): the process's resident memory at the end of the forward
  minus just before it, after asking the C allocator to return free pages (glibc's
  ``malloc_trim``). Approximate, and only reported for reference.

Both measure the per-task ``"loop"`` path (``torch.autograd.grad`` with
``create_graph=True``, what the best-known MAML libraries do): it builds the whole
graph during the forward, so everything the meta-backward will need exists, and is
counted, when the forward returns. The ``"hybrid"`` path computes the meta-gradient
inside the forward task by task, so there the forward's end is not where memory peaks.

The figure is ``mamllib.viz.figures.plot_cost``; the command line that writes
``results/cost.json`` and ``figures/cost_vs_steps.png`` is ``python -m mamllib.tools.cost``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import statistics
import time
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from mamllib.checkpoints import hardware
from mamllib.checks import check_int
from mamllib.maml import meta_loss
from mamllib.workloads import SEED, WORKLOADS, Workload, build, meta_iteration

PATH = "loop"
DEFAULTS = {"warmup": 1, "repeats": 5}
QUICK = {"warmup": 1, "repeats": 1}
ORDERS = {False: "second-order", True: "first-order"}


def workload_for(
    name: str, *, steps: int, first_order: bool, meta_batch_size: int | None = None
) -> Workload:
    """The workload ``name`` with the given inner steps, order and meta-batch.

    Raises:
        ValueError: an unknown workload name or ``steps`` < 1, before any work.
    """
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; valid names: {', '.join(WORKLOADS)}")
    check_int("steps", steps, 1)
    if meta_batch_size is None:
        meta_batch_size = WORKLOADS[name].meta_batch_size
    check_int("meta_batch_size", meta_batch_size, 1)
    return dataclasses.replace(
        WORKLOADS[name], steps=steps, first_order=first_order, meta_batch_size=meta_batch_size
    )


# ----------------------------------------------------------------------------- memory


class _Saved:
    """What the pack hook returns: the graph holds it as long as it may need the tensor."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return str(t.device), t.untyped_storage().data_ptr()


def _malloc_trim() -> None:
    """Ask glibc to return free heap pages to the OS, so that RSS reflects live memory."""
    libc = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None
    if trim is not None:
        trim(0)


def _rss_bytes() -> int | None:
    """Resident set size now (Linux ``/proc``); ``None`` where that is not available."""
    _malloc_trim()
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def saved_memory(workload: Workload, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Bytes autograd holds for the meta-backward of one meta-iteration (module docstring).

    Args:
        workload: a workload of ``mamllib.workloads`` (its ``steps``, ``first_order``, ``meta_batch_size``).
        device: where to run.

    Returns:
        ``saved_bytes`` (unique storages the meta-backward needs, leaving out θ, buffers
        and the batch), ``saved_tensors`` (how many tensors autograd packed that the
        meta-backward needs, counting repeats) and ``rss_increase_bytes`` (CPU, else None).
    """
    device = torch.device(device)
    setup = build(workload, device)
    params, buffers = dict(setup.model.named_parameters()), dict(setup.model.named_buffers())
    batch = setup.batch
    existing = {
        _storage_key(t)
        for t in (
            *params.values(),
            *buffers.values(),
            batch.x_support,
            batch.y_support,
            batch.x_query,
            batch.y_query,
        )  # fmt: skip
    }
    handles: list[weakref.ref] = []

    def pack(tensor: torch.Tensor) -> _Saved:
        saved = _Saved(tensor)
        handles.append(weakref.ref(saved))
        return saved

    def unpack(saved: _Saved) -> torch.Tensor:
        return saved.tensor

    cpu = device.type == "cpu"
    rss_before = _rss_bytes() if cpu else None
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        loss = meta_loss(
            setup.model, params, batch, workload.loss_fn, inner_lr=workload.inner_lr,
            steps=workload.steps, first_order=workload.first_order, path=PATH, buffers=buffers,
        ).loss  # fmt: skip
    rss_after = _rss_bytes() if cpu else None
    live = [saved.tensor for ref in handles if (saved := ref()) is not None]
    storages = {_storage_key(t): t.untyped_storage().nbytes() for t in live}
    saved_bytes = sum(n for key, n in storages.items() if key not in existing)
    loss.backward()  # the graph is complete and consistent: it runs
    rss = None if rss_before is None or rss_after is None else max(rss_after - rss_before, 0)
    return {"saved_bytes": saved_bytes, "saved_tensors": len(live), "rss_increase_bytes": rss}


# ----------------------------------------------------------------------------- time


def time_iterations(
    workloads: Sequence[Workload],
    device: torch.device | str = "cpu",
    *,
    warmup: int,
    repeats: int,
    progress: bool = False,
) -> list[list[float]]:
    """Seconds of ``repeats`` meta-iterations of each workload on the ``"loop"`` path.

    The workloads take turns, one meta-iteration each per round, so that a burst of load
    from other processes on a shared machine slows every workload a little rather than
    one workload's every sample.

    Returns:
        One list of ``repeats`` durations per workload, in order.
    """
    device = torch.device(device)
    setups = [build(w, device) for w in workloads]
    for w, setup in zip(workloads, setups):
        for _ in range(warmup):
            meta_iteration(w, setup, PATH)
    seconds: list[list[float]] = [[] for _ in workloads]
    for r in range(repeats):
        for w, setup, times in zip(workloads, setups, seconds):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            meta_iteration(w, setup, PATH)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        if progress:
            print(f"timed round {r + 1}/{repeats}", flush=True)
    return seconds


# ----------------------------------------------------------------------------- sweep


def measure(
    name: str,
    max_steps: int = 10,
    *,
    meta_batch_size: int | None = None,
    device: torch.device | str = "cpu",
    warmup: int = DEFAULTS["warmup"],
    repeats: int = DEFAULTS["repeats"],
    progress: bool = False,
) -> dict[str, Any]:
    """Time and saved memory for 1..``max_steps`` inner steps, second- and first-order.

    Args:
        name: a workload of ``mamllib.workloads.WORKLOADS`` (e.g. ``"W1"``, ``"W3"``).
        max_steps: the largest number of inner steps (at least 1).
        meta_batch_size: tasks per meta-iteration (default: the workload's).
        device: where to run.
        warmup, repeats: untimed and timed meta-iterations per point (``repeats`` 0
            measures memory only); see ``time_iterations``.
        progress: print what is measured as it is.

    Returns:
        A report: ``workload``, ``description``, ``meta_batch_size``, ``path``,
        ``hardware``, ``torch``, ``settings`` and ``results``, one row per (order,
        steps) with ``ms_per_iter`` (median), ``ms_samples``, ``ms_min``, ``ms_max``, ``saved_bytes``,
        ``saved_mb``, ``saved_tensors`` and ``rss_increase_mb``.
    """
    check_int("max_steps", max_steps, 1)
    check_int("warmup", warmup, 0)
    check_int("repeats", repeats, 0)
    base = workload_for(name, steps=1, first_order=False, meta_batch_size=meta_batch_size)
    device = torch.device(device)
    workloads = [
        dataclasses.replace(base, steps=steps, first_order=first_order)
        for first_order in ORDERS
        for steps in range(1, max_steps + 1)
    ]
    rows = []
    for w in workloads:
        memory = saved_memory(w, device)
        rss = memory["rss_increase_bytes"]
        rows.append(
            {
                "order": ORDERS[w.first_order],
                "first_order": w.first_order,
                "steps": w.steps,
                "saved_bytes": memory["saved_bytes"],
                "saved_mb": memory["saved_bytes"] / 2**20,
                "saved_tensors": memory["saved_tensors"],
                "rss_increase_mb": None if rss is None else rss / 2**20,
            }
        )
        if progress:
            print(f"{rows[-1]['order']}, {w.steps} steps: {rows[-1]['saved_mb']:.2f} MB saved")
    seconds = time_iterations(workloads, device, warmup=warmup, repeats=repeats, progress=progress)
    for row, samples in zip(rows, seconds):
        row["ms_per_iter"] = 1e3 * statistics.median(samples) if samples else None
        row["ms_samples"] = [1e3 * t for t in samples]
        row["ms_min"] = 1e3 * min(samples) if samples else None
        row["ms_max"] = 1e3 * max(samples) if samples else None
    description = base.description.split(", 1 inner step")[0]
    description = description.replace(
        f"{WORKLOADS[name].meta_batch_size} tasks", f"{base.meta_batch_size} tasks"
    )
    return {
        "workload": name,
        "description": description,
        "meta_batch_size": base.meta_batch_size,
        "path": PATH,
        "device": str(device),
        "hardware": hardware(device),
        "torch": torch.__version__,
        "settings": {"max_steps": max_steps, "warmup": warmup, "repeats": repeats, "seed": SEED},
        "results": rows,
    }


def series(report: dict[str, Any], key: str) -> dict[str, tuple[list[int], list[float]]]:
    """order -> (steps, values of ``key``), from a report of ``measure``."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for order in ORDERS.values():
        rows = [r for r in report["results"] if r["order"] == order and r[key] is not None]
        out[order] = ([r["steps"] for r in rows], [r[key] for r in rows])
    return out


def increments(values: Sequence[float]) -> list[float]:
    """Differences between consecutive values: the cost of one more inner step."""
    return [b - a for a, b in zip(values[:-1], values[1:])]


# ----------------------------------------------------------------------------- report


def format_row(row: dict[str, Any]) -> str:
    """One row of a report of ``measure`` as a line of ``format_table``."""
    ms = "-" if row["ms_per_iter"] is None else f"{row['ms_per_iter']:.1f}"
    rss = "-" if row["rss_increase_mb"] is None else f"{row['rss_increase_mb']:.1f}"
    return (
        f"{row['order']:12s} | {row['steps']:5d} | {ms:>9s} | {row['saved_mb']:>8.2f} | {rss:>7s}"
    )


def format_table(report: dict[str, Any]) -> str:
    """A report of ``measure`` as a text table: order, steps, ms/iter, saved MB, RSS MB."""
    header = f"{'order':12s} | steps | ms/iter   | saved MB | RSS MB"
    rule = "-" * len(header)
    return "\n".join([header, rule, *(format_row(r) for r in report["results"])])
