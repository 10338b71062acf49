"""Meta-training across processes (``mamllib.distributed``), on the CPU with gloo.

The reference for the averaged meta-gradient is one process computing the meta-gradient
of the whole meta-batch (float64); the reference for a 2-process run resumed by torchrun
is an uninterrupted 2-process run, compared bit for bit.

Two launches of 2 real processes, each with a deadline: ``torch.multiprocessing``
children that set the environment variables torchrun sets (the meta-gradient, then
``fit``), and one real ``torchrun -m mamllib.train ... --resume``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from test_train import assert_same_state

from mamllib import SinusoidTasks, TaskBatch, distributed
from mamllib.checkpoints import CheckpointError, load_checkpoint
from mamllib.experiments import EXPERIMENTS, SinusoidExperiment
from mamllib.experiments.common import resolve_device
from mamllib.experiments.sinusoid import SinusoidConfig, build_sinusoid_learner
from mamllib.train import fit

REPO = Path(__file__).resolve().parents[1]
WORLD = 2
LAUNCH_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_rank(rank: int, port: int) -> None:
    """What torchrun does for a child: say who it is and where to meet the others."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
    )  # fmt: skip
    torch.set_num_threads(1)


def _launch(worker, *args) -> None:
    """Run ``worker(rank, port, *args)`` in WORLD processes; fail on error or deadline."""
    procs = mp.start_processes(
        worker, args=(_free_port(), *args), nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    try:
        while not procs.join(timeout=1):
            assert time.monotonic() < deadline, (
                f"{worker.__name__} still running after the deadline"
            )
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()


# ----------------------------------------------------------------------------- two launches

# The training runs; the torchrun flags in ``_torchrun_resume`` say the same (a resume
# with another config would be refused).
CONFIG = SinusoidConfig(
    device="cpu", iterations=6, meta_batch_size=4, hidden=(8, 8), eval_tasks=4,
    eval_every=3, checkpoint_every=3,
)  # fmt: skip


def _float64_problem():
    """The sinusoid MLP 1-40-40-1 (second-order, 1 step) and 8 tasks, in float64."""
    torch.manual_seed(0)
    learner = build_sinusoid_learner(SinusoidConfig(device="cpu", meta_batch_size=8)).double()
    b = SinusoidTasks().sample(8, 10, 10, generator=torch.Generator().manual_seed(7))
    batch = TaskBatch(*(t.double() for t in (b.x_support, b.y_support, b.x_query, b.y_query)))
    return learner, batch


def _half_batch_gradient(rank: int) -> dict:
    """This rank's meta-gradient on its half of the tasks, averaged over the ranks."""
    learner, batch = _float64_problem()
    share = distributed.split_meta_batch(batch.num_tasks, WORLD)
    mine = TaskBatch(
        *(t[rank * share : (rank + 1) * share] for t in (batch.x_support, batch.y_support,
                                                         batch.x_query, batch.y_query))
    )  # fmt: skip
    loss = learner.meta_loss(mine).loss
    loss.backward()
    mean_loss = distributed.average_gradients(learner.parameters(), loss)
    return {"grads": {k: p.grad for k, p in learner.named_parameters()}, "loss": mean_loss}


def _worker(rank: int, port: int, dumps: Path, whole: Path, parts: Path) -> None:
    """One rank: the meta-gradient test, then ``fit`` for 6 (whole) and 3 (parts) iterations."""
    _as_rank(rank, port)
    distributed.init(distributed.context(), torch.device("cpu"))  # fit joins this group
    try:
        torch.save(_half_batch_gradient(rank), dumps / f"gradient{rank}.pt")
        for out in (whole, parts):
            config = replace(CONFIG, iterations=6 if out == whole else 3)
            experiment = fit("sinusoid", config, out, progress=False).experiment
            torch.save(
                {"learner": experiment.learner.state_dict(),
                 "generator": experiment.generator.get_state()},
                dumps / f"{out.parent.name}{rank}.pt",
            )  # fmt: skip
        # A rank that cannot read the checkpoint (here: rank 1) must not start over alone.
        own = parts.parent.parent / f"copy{rank}" / "run.pt"
        own.parent.mkdir()
        if rank == 0:
            shutil.copy(parts, own)
        with pytest.raises(CheckpointError, match=r"different iterations \[3, 0\]"):
            fit("sinusoid", CONFIG, own, resume=True, progress=False)
        torch.save(own.exists(), dumps / f"refused{rank}.pt")
    finally:
        distributed.cleanup()


def _torchrun_resume(out: Path) -> str:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", "-m", "mamllib.train", "sinusoid", "--resume",
        "--out", str(out), "--iterations", "6", "--meta-batch-size", "4",
        "--hidden", "8", "8", "--eval-tasks", "4", "--eval-every", "3",
        "--checkpoint-every", "3", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """2 processes: 6 iterations in one go (whole), and 3 then 3 more by torchrun (parts)."""
    root = tmp_path_factory.mktemp("distributed")
    dumps, whole, parts = root / "dumps", root / "whole" / "run.pt", root / "parts" / "run.pt"
    for folder in (dumps, whole.parent, parts.parent):
        folder.mkdir()
    _launch(_worker, dumps, whole, parts)
    at_3 = load_checkpoint(parts)
    stdout = _torchrun_resume(parts)
    dumped = {f.stem: torch.load(f, weights_only=True) for f in dumps.iterdir()}
    return {"whole": whole, "parts": parts, "at_3": at_3, "stdout": stdout, **dumped}


# ----------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_averaged_meta_gradient_equals_one_process_on_all_tasks(runs):
    learner, batch = _float64_problem()
    assert learner.config.first_order is False and learner.config.inner_steps == 1
    loss = learner.meta_loss(batch).loss
    loss.backward()
    ranks = [runs[f"gradient{r}"] for r in range(WORLD)]
    for name, p in learner.named_parameters():
        torch.testing.assert_close(ranks[0]["grads"][name], p.grad, rtol=1e-12, atol=1e-14)
        assert torch.equal(ranks[0]["grads"][name], ranks[1]["grads"][name]), name
    assert ranks[0]["loss"] == ranks[1]["loss"] == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.slow
def test_two_processes_train_checkpoint_and_resume_like_one_uninterrupted_run(runs):
    whole, parts = runs["whole"], runs["parts"]
    # Rank 0 alone writes, and only the checkpoint; rank 0 alone reports.
    assert os.listdir(whole.parent) == ["run.pt"] and os.listdir(parts.parent) == ["run.pt"]
    assert runs["stdout"].count("done: 6 iterations") == 1, runs["stdout"]
    for run in ("whole", "parts"):
        assert_same_state(runs[f"{run}0"]["learner"], runs[f"{run}1"]["learner"], run)
        assert not torch.equal(runs[f"{run}0"]["generator"], runs[f"{run}1"]["generator"])

    a, b = load_checkpoint(parts), load_checkpoint(whole)
    assert runs["at_3"]["iteration"] == 3 and a["iteration"] == b["iteration"] == 6
    assert_same_state(b["state"]["learner"], runs["whole0"]["learner"], "checkpoint")
    assert_same_state(
        b["state"]["generators"], [runs[f"whole{r}"]["generator"] for r in range(WORLD)], "gather"
    )
    for key in ("learner", "optimizer", "generators"):
        assert_same_state(a["state"][key], b["state"][key], f"resumed vs uninterrupted {key}")
    assert a["history"] == b["history"] and [h["iteration"] for h in a["history"]] == [3, 6]
    # The resumed part really trained: its weights moved on from iteration 3.
    assert not torch.equal(a["state"]["learner"]["model.0.weight"],
                           runs["at_3"]["state"]["learner"]["model.0.weight"])  # fmt: skip
    assert a["provenance"]["world_size"] == WORLD and "--resume" in a["provenance"]["command"]
    sessions = [(s["start_iteration"], s["end_iteration"], s["world_size"]) for s in a["sessions"]]
    assert sessions == [(0, 3, WORLD), (3, 6, WORLD)]


@pytest.mark.slow
def test_ranks_that_read_different_checkpoints_refuse_to_train(runs):
    # Both ranks raised (``_worker`` checks it); rank 0 had a checkpoint, rank 1 none.
    assert [runs[f"refused{r}"] for r in range(WORLD)] == [True, False]


@pytest.mark.slow
def test_resume_with_another_world_size_warns_and_continues(runs, tmp_path):
    whole = runs["whole"]
    out = tmp_path / "run.pt"
    out.write_bytes(whole.read_bytes())
    config = replace(CONFIG, iterations=9)
    with pytest.warns(UserWarning, match=r"written by 2 process\(es\) and this run has 1"):
        fit("sinusoid", config, out, resume=True, progress=False)
    ckpt = load_checkpoint(out)
    assert ckpt["iteration"] == 9 and "generators" not in ckpt["state"]
    assert [s["world_size"] for s in ckpt["sessions"]] == [WORLD, 1]


# ----------------------------------------------------------------------------- one process, bad input


@pytest.fixture
def as_rank_0_of_2(monkeypatch):
    """This process looks like torchrun's rank 0; joining a group would fail the test."""
    for key, value in dict(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0").items():
        monkeypatch.setenv(key, value)

    def refuse(*args, **kwargs):
        raise AssertionError("joined the process group before checking the arguments")

    monkeypatch.setattr(torch.distributed, "init_process_group", refuse)


def test_meta_batch_not_divisible_by_world_size_raises_first(as_rank_0_of_2, tmp_path):
    config = SinusoidConfig(device="cpu", meta_batch_size=5, iterations=3)
    with pytest.raises(ValueError, match=r"meta_batch_size=5 .*world_size=2"):
        fit("sinusoid", config, tmp_path / "run.pt", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_experiment_without_distributed_support_raises_under_torchrun(
    as_rank_0_of_2, monkeypatch, tmp_path
):
    class SingleProcessOnly(SinusoidExperiment):
        supports_distributed = False

    monkeypatch.setitem(EXPERIMENTS, "single", SingleProcessOnly)
    config = SinusoidConfig(device="cpu", meta_batch_size=4, iterations=3)
    with pytest.raises(ValueError, match=r"'single' experiment does not support distributed"):
        fit("single", config, tmp_path / "run.pt", progress=False)


def test_one_process_keeps_its_task_stream():
    """Without torchrun the stream is ``Generator().manual_seed(seed)``, as in old checkpoints."""
    assert distributed.context() == distributed.Context()
    experiment = SinusoidExperiment(SinusoidConfig(device="cpu", seed=3))
    assert torch.equal(
        experiment.generator.get_state(), torch.Generator().manual_seed(3).get_state()
    )
    assert distributed.stream_seed(3, 0) == 3 and distributed.stream_seed(3, 1) != 3


def test_each_rank_meta_trains_on_its_share_of_tasks_from_its_own_stream(monkeypatch):
    for key, value in dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor: None)  # rank 1 alone
    experiment = SinusoidExperiment(replace(CONFIG, seed=3))
    sampled = []
    meta_loss = experiment.learner.meta_loss
    monkeypatch.setattr(
        experiment.learner, "meta_loss", lambda batch: sampled.append(batch) or meta_loss(batch)
    )
    experiment.train_step()
    # Rank 1's stream is documented as seed + 2³²; its share is 4 / 2 tasks.
    expected = SinusoidTasks().sample(2, 10, 10, generator=torch.Generator().manual_seed(3 + 2**32))
    assert torch.equal(sampled[0].x_support, expected.x_support)
    assert torch.equal(sampled[0].y_query, expected.y_query)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_means_the_local_rank_gpu_under_torchrun(monkeypatch):
    for key, value in dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="0").items():
        monkeypatch.setenv(key, value)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="cuda:LOCAL_RANK"):
        resolve_device("cuda:0")
