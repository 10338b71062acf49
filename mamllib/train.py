"""Training loops with progress bars, periodic evaluation, atomic checkpoints and resume.

Command line (each experiment's config fields become flags)::

    python -m mamllib.train sinusoid --method maml --out checkpoints/sinusoid_maml.pt
    python -m mamllib.train sinusoid --method pretrain --out checkpoints/sinusoid_pretrain.pt
    python -m mamllib.train sinusoid ... --resume          # continue a killed run
    python -m mamllib.train omniglot --device cuda ...     # a CUDA-graph meta-step (--no-cuda-graph)
    torchrun --nproc_per_node=8 -m mamllib.train omniglot ...  # meta-batch split over 8 GPUs

A resumed run restores the weights, Adam's state, the task sampler's random state, the
iteration count and the training losses since the last evaluation, so it ends with the
same weights and the same history as an uninterrupted run (under torchrun: with the same
number of processes; see ``mamllib.distributed``). ``mamllib.experiments.load_learner``
reads a trained learner back.

What the user can fix (missing or corrupt data, a flag out of range, an unwritable
``--out``, a checkpoint that cannot be resumed) is found before any training, and the
command line says it in one line, ``error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from mamllib import distributed
from mamllib.checkpoints import (
    CheckpointError,
    NotWritableError,
    check_writable,
    command_line,
    provenance,
    save_checkpoint,
)
from mamllib.checks import check_int, check_positive_float
from mamllib.experiments import EXPERIMENTS, resumable_checkpoint
from mamllib.experiments.common import add_config_flags, resolve_device
from mamllib.experiments.omniglot import fetch_omniglot_data
from mamllib.fast.graph import use_graph
from mamllib.fast.readout import DeferredLosses, default_sync_every
from mamllib.progress_bar import progress as progress_bar

# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    """What ``fit`` returns: the experiment (trained learner inside) and its record."""

    experiment: Any
    iteration: int
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    checkpoint: Path | None = None
    finished: bool = True  # False: stopped at ``max_minutes``, to be continued with resume


def fit(
    experiment_name: str,
    config: Any,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
    max_minutes: float | None = None,
    sync_every: int | None = None,
    cuda_graph: bool | None = None,
) -> TrainResult:
    """Train one experiment, evaluating and checkpointing along the way.

    Under ``torchrun`` every process runs ``fit`` (see ``mamllib.distributed``): each
    computes the meta-gradient of its ``meta_batch_size / world_size`` tasks, the
    gradients are averaged, and all ranks take the same Adam step. Rank 0 alone
    evaluates, shows the progress bar and writes the checkpoint (with every rank's task
    stream, so that ``resume`` with as many processes continues exactly); the other
    ranks' ``history`` holds no new evaluations.

    Args:
        experiment_name: a key of ``EXPERIMENTS`` (e.g. ``"sinusoid"``).
        config: that experiment's frozen config dataclass.
        out: checkpoint path (written every ``checkpoint_every`` iterations and at the
            end); ``None`` trains in memory only. Under torchrun on several nodes, a
            resumed run's ``out`` must be readable by every node.
        resume: continue from ``out`` if it exists. Its config must equal ``config``
            except for ``mamllib.experiments.RESUMABLE_CHANGES`` (e.g. more
            ``iterations``, or another device for the rest of the run).
        overwrite: start over even if ``out`` exists (otherwise that is an error, so
            that a finished run is never replaced by accident).
        progress: show a tqdm progress bar.
        callback: called as ``callback(iteration, loss)`` for every iteration, in order, when
            its loss is read (on every rank; the loss is the whole meta-batch's).
        max_minutes: stop at the last checkpoint this call reaches within this many minutes
            (each stretch to the next checkpoint taken to last as long as the previous one);
            the result then has ``finished=False`` and ``resume=True`` continues it exactly.
        sync_every: read the training losses every this many iterations (and at every
            evaluation and checkpoint; ``mamllib.fast.readout``): on CUDA the host then never
            waits for the GPU in between. Default: 1 on the CPU, 100 on CUDA. No effect on θ.
        cuda_graph: capture the meta-step in a CUDA graph and replay it (``mamllib.fast.graph``;
            for experiments with ``supports_cuda_graph``); ``None``: on CUDA when it can.

    Returns:
        ``TrainResult`` with the trained experiment and the evaluation history.

    Raises:
        Before any training (``main`` prints these as one line each):
        FileExistsError: ``out`` exists and neither ``resume`` nor ``overwrite`` is set.
        NotWritableError: no file can be written at ``out``.
        ValueError: an unknown or unavailable device, a run already past
            ``config.iterations``; its subclass ``CheckpointError``: a checkpoint that is
            corrupt, of another experiment or config.
        FileNotFoundError, ValueError: the experiment's data set is missing or corrupt.
        During training: ``FloatingPointError`` when the loss stops being finite.
    """
    if experiment_name not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {experiment_name!r}; valid names: {sorted(EXPERIMENTS)}"
        )
    cls = EXPERIMENTS[experiment_name]
    if not isinstance(config, cls.config_cls):
        raise TypeError(f"config must be a {cls.config_cls.__name__}, got {type(config).__name__}")
    if resume and out is None:
        raise ValueError("resume=True needs a checkpoint path `out`")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other; choose one")
    if max_minutes is not None:
        check_positive_float("--max-minutes", max_minutes)
        if out is None:
            raise ValueError("max_minutes needs a checkpoint path `out` (--out) to stop at")
    if out is not None and Path(out).exists() and not (resume or overwrite):
        raise FileExistsError(
            f"{out} exists; pass resume=True (--resume) to continue it or overwrite=True "
            "(--overwrite) to start over"
        )
    ctx = distributed.context()
    if ctx.enabled:
        if not getattr(cls, "supports_distributed", False):
            raise ValueError(
                f"the {experiment_name!r} experiment does not support distributed training, "
                f"but this process is rank {ctx.rank} of world_size={ctx.world_size} "
                "(torchrun); run it as one process: python -m mamllib.train ..."
            )
        distributed.split_meta_batch(config.meta_batch_size, ctx.world_size)
    device = resolve_device(config.device)
    if sync_every is not None:
        check_int("--sync-every", sync_every, 1)
    use_graph(cuda_graph, device)  # --cuda-graph on the CPU: say so before loading anything
    sync_every = sync_every or default_sync_every(device)
    if out is not None and ctx.is_main:
        check_writable(out)  # now, not at the first checkpoint thousands of iterations later
    created = distributed.init(ctx, device)
    try:
        return _train(experiment_name, config, Path(out) if out is not None else None,
                      resume, progress, callback, ctx, max_minutes, sync_every,
                      cuda_graph)  # fmt: skip
    finally:
        if created:
            distributed.cleanup()


def _train(
    experiment_name: str,
    config: Any,
    out: Path | None,
    resume: bool,
    progress: bool,
    callback: Callable[[int, float], None] | None,
    ctx: distributed.Context,
    max_minutes: float | None,
    sync_every: int,
    cuda_graph: bool | None,
) -> TrainResult:
    """``fit`` once its arguments are checked and this process has joined its group."""
    cls = EXPERIMENTS[experiment_name]
    start, history, wall, sessions, losses = 0, [], 0.0, [], []
    ckpt = None
    if resume and out.exists():
        # Read and check the checkpoint before building the experiment (which may decode
        # a data set): a run that cannot resume says so at once.
        ckpt = resumable_checkpoint(cls, config, out, resolve_device(config.device))
        start, history, wall = ckpt["iteration"], list(ckpt["history"]), ckpt["wall_time_s"]
        sessions = list(ckpt.get("sessions", []))
        # The training losses since the last evaluation, so that the next logged mean
        # is the same as in an uninterrupted run (checkpoints before this have none).
        losses = list(ckpt.get("losses_since_eval", []))
    experiment = cls(config)
    experiment.use_cuda_graph(cuda_graph)
    if ckpt is not None:
        experiment.load_state(ckpt["state"], str(out))

    if ctx.enabled:
        starts = distributed.all_gather(start)
        if len(set(starts)) > 1:
            raise CheckpointError(
                f"the ranks would start from different iterations {starts}: every rank must "
                f"read the same {out} (on several nodes, keep it on storage all of them read)"
            )

    this_session = {**provenance(experiment.device), "world_size": ctx.world_size}

    def checkpoint(iteration: int, elapsed: float) -> None:
        if out is None:
            return
        state = experiment.state()  # on every rank: it gathers the ranks' task streams
        if not ctx.is_main:
            return
        # One record per command that trained this run: a long run may span several
        # sessions and machines, and each says how far it got.
        this_session.update(start_iteration=start, end_iteration=iteration,
                            wall_time_s=elapsed - wall)  # fmt: skip
        save_checkpoint(
            out,
            {
                "model": cls.model_name,
                "experiment": experiment_name,
                "config": asdict(config),
                "iteration": iteration,
                "history": history,
                "wall_time_s": elapsed,
                "provenance": {**provenance(experiment.device), "world_size": ctx.world_size},
                "sessions": [*sessions, this_session],
                "losses_since_eval": list(losses),
                "state": state,
            },
        )

    t0 = time.perf_counter() - wall
    began = last_checkpoint = time.perf_counter()  # this call's clock, for max_minutes

    def out_of_time() -> bool:
        """Would the next stretch to a checkpoint end past ``max_minutes``? (All ranks agree.)"""
        nonlocal last_checkpoint
        now = time.perf_counter()
        stretch, last_checkpoint = now - last_checkpoint, now
        late = max_minutes is not None and (now - began) + stretch > 60 * max_minutes
        return any(distributed.all_gather(late)) if ctx.enabled else late

    finished, done = True, start
    # The losses are read every sync_every iterations and before every evaluation and
    # checkpoint, so that no checkpoint follows a diverged step and each holds every loss.
    pending = DeferredLosses(min(sync_every, config.eval_every, config.checkpoint_every))
    bar = progress_bar(
        initial=start,
        total=config.iterations,
        desc=f"{experiment_name}/{getattr(config, 'method', 'maml')}",
        enabled=progress and ctx.is_main,
    )
    for iteration in range(start, config.iterations):
        pending.add(experiment.train_step())
        done = iteration + 1
        evaluate = done % config.eval_every == 0 or done == config.iterations
        save = done % config.checkpoint_every == 0 or done == config.iterations
        if not (pending.full or evaluate or save):
            continue
        bar.update(pending.drain(done, losses, callback))
        if evaluate:
            # Rank 0 evaluates; the others wait for it in the next step's all_reduce.
            if ctx.is_main:
                metrics = experiment.evaluate()
                history.append(
                    {"iteration": done, "train_loss": sum(losses) / len(losses), **metrics}
                )
                bar.set_postfix_str(experiment.headline(metrics))
            losses.clear()
        if save:
            checkpoint(done, time.perf_counter() - t0)
            if done < config.iterations and out_of_time():
                finished = False
                break
    bar.close()
    return TrainResult(experiment, done if not finished else config.iterations, history,
                       time.perf_counter() - t0, out, finished)  # fmt: skip


# ----------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, Any, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m mamllib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, cls in EXPERIMENTS.items():
        p = sub.add_parser(name, help=f"train on {name} tasks")
        p.add_argument("--out", type=Path, required=True, help="checkpoint path")
        p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
        p.add_argument("--overwrite", action="store_true", help="start over even if --out exists")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.add_argument(
            "--max-minutes", type=float, default=None, metavar="M",
            help="stop at the last checkpoint reachable within M minutes and say how to resume "
            "(for a machine lent for a limited time)",
        )  # fmt: skip
        p.add_argument(
            "--data-root", type=Path, default=None,
            help="the data location: a folder holding omniglot/ or Omniglot's two zips "
            "(sets $MAMLLIB_DATA, also for the processes this run starts)",
        )  # fmt: skip
        p.add_argument(
            "--threads", type=int, default=1,
            help="CPU threads for torch (default 1: faster for these small networks on a "
            "2-core CPU, and far faster when other programs are busy; python -m "
            "mamllib.tools.bench_threads measures it)",
        )  # fmt: skip
        p.add_argument("--sync-every", type=int, default=None, metavar="N",
                       help="read the losses every N iterations (default: 1 on the CPU, 100 on "
                       "CUDA, where reading waits for the GPU)")  # fmt: skip
        if name == "omniglot":
            p.add_argument(
                "--download", action="store_true",
                help="fetch Omniglot's two original zips (about 16 MB) into the data location "
                "first if they are not there",
            )  # fmt: skip
            p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                           help="capture the meta-step in a CUDA graph and replay it (default: "
                           "on CUDA when possible)")  # fmt: skip
        add_config_flags(p, cls.config_cls)
    args = parser.parse_args(argv)
    if args.threads < 1:
        user_error(f"--threads must be >= 1, got {args.threads}")
    cls = EXPERIMENTS[args.experiment]
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls.config_cls)
        if getattr(args, f.name) is not None
    }
    try:
        config = cls.config_cls(**given)
    except (TypeError, ValueError) as exc:
        user_error(exc)
    return args.experiment, config, args


# What a user can fix (missing or corrupt data, a bad flag, a checkpoint that cannot be
# resumed, an unwritable --out, a diverged run): one line on stderr, exit status 2.
# Anything else is a bug and keeps its traceback. CheckpointError is a ValueError.
USER_ERRORS = (FileNotFoundError, FileExistsError, NotWritableError, ValueError, FloatingPointError)


def user_error(exc: BaseException | str) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with status 2."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    name, config, args = parse_args(argv)
    if args.data_root is not None:
        if not args.data_root.is_dir():
            user_error(f"--data-root {args.data_root} is not a folder")
        os.environ["MAMLLIB_DATA"] = str(args.data_root.absolute())
    torch.set_num_threads(args.threads)
    try:
        if getattr(args, "download", False):
            resolve_device(config.device)  # the cheap checks first: no download for a bad flag
            check_writable(args.out)
            fetch_omniglot_data()
        result = fit(
            name, config, args.out, resume=args.resume, overwrite=args.overwrite,
            progress=not args.no_progress, max_minutes=args.max_minutes,
            sync_every=args.sync_every, cuda_graph=getattr(args, "cuda_graph", None),
        )  # fmt: skip
    except USER_ERRORS as exc:
        if isinstance(exc, FileNotFoundError) and "--data-root" not in str(exc):
            exc = f"{exc} (On the command line: --data-root FOLDER sets the data location.)"
        user_error(exc)
    if not distributed.context().is_main:
        return 0
    last = result.history[-1] if result.history else {}
    summary = EXPERIMENTS[name].headline(last) if last else "no evaluation"
    if not result.finished:
        again = command_line()
        again += "" if "--resume" in again.split() else " --resume"
        print(
            f"stopped at iteration {result.iteration} of {config.iterations} (--max-minutes "
            f"{args.max_minutes:g}) after {result.wall_time_s:.1f} s in all; {summary}; "
            f"checkpoint {result.checkpoint}; continue with: {again}"
        )
        return 0
    print(
        f"done: {result.iteration} iterations in {result.wall_time_s:.1f} s; {summary}; "
        f"checkpoint {result.checkpoint}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
