"""``mamllib.train``: the training loop, the checkpoints it writes, resume, the command line
and its user errors, pre-training, and navigation through the same loop (evaluation:
test_evaluate.py; the checkpoint format: test_checkpoints.py).

References are independent of the code under test where it matters: resume is checked
against an uninterrupted run (bit for bit), pre-training against a hand-written pooled MSE
(test_baselines.py) with the model called directly.

Everything runs on the CPU with small configs; files go under pytest's ``tmp_path``.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mamllib.train
from mamllib import SinusoidTasks
from mamllib.baselines import multitask_loss
from mamllib.checkpoints import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)
from mamllib.experiments import EXPERIMENTS, load_learner
from mamllib.experiments.navigation import NavigationConfig, NavigationExperiment
from mamllib.experiments.sinusoid import SinusoidConfig, build_sinusoid_learner
from mamllib.train import fit, main, parse_args

REPO = Path(__file__).resolve().parents[1]
MODEL = "sinusoid-mlp"


def small_config(**overrides) -> SinusoidConfig:
    base = dict(
        iterations=60,
        eval_every=20,
        checkpoint_every=20,
        eval_tasks=20,
        meta_batch_size=5,
        device="cpu",
    )
    base.update(overrides)
    return SinusoidConfig(**base)


def assert_same_state(a, b, where: str = "state") -> None:
    """Recursive exact equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), f"{where}: tensor vs {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, (
            f"{where}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        )
        assert torch.equal(a, b), (
            f"{where}: tensors differ (max abs diff {(a.double() - b.double()).abs().max().item()})"
        )
    elif isinstance(a, dict):
        assert isinstance(b, dict), f"{where}: dict vs {type(b).__name__}"
        assert set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def learner_state(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.experiment.learner.state_dict().items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short fit with a checkpoint, shared by the read-only checkpoint tests."""
    out = tmp_path_factory.mktemp("trained") / "run.pt"
    config = small_config()
    result = fit("sinusoid", config, out, progress=False)
    return config, result, out


# ----------------------------------------------------------------------------- 1. resume after SIGKILL

N_ITER, EVERY = 240, 40


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "mamllib.train", "sinusoid",
        "--out", str(out),
        "--iterations", str(N_ITER),
        "--checkpoint-every", str(EVERY),
        "--eval-every", str(EVERY),
        "--eval-tasks", "20",
        "--no-progress",
        "--device", "cpu",
        *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    return env


def _run_to_end(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "reference"
    killed_dir.mkdir()
    out, ref = killed_dir / "run.pt", ref_dir / "run.pt"

    proc = subprocess.Popen(
        _train_cmd(out), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen, last_stamp = None, None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                stamp = (out.stat().st_ino, out.stat().st_mtime_ns)
            except FileNotFoundError:
                stamp = None
            if stamp is not None and stamp != last_stamp:
                last_stamp = stamp
                # Every read while the run is writing must see a complete checkpoint.
                seen = load_checkpoint(out, expect_model=MODEL)["iteration"]
                if seen >= 2 * EVERY:
                    break
            time.sleep(0.05)
        finished_early = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=30)
    assert not finished_early, (
        f"training ended (rc {proc.returncode}) before it could be killed; last seen iteration "
        f"{seen}; stderr:\n{stderr.decode(errors='replace')}"
    )
    assert seen is not None and seen >= 2 * EVERY, (
        f"no checkpoint at >= {2 * EVERY} within 60 s (seen {seen})"
    )
    assert proc.returncode == -signal.SIGKILL

    # Atomicity: the target is a complete checkpoint; anything else is a leftover temp file.
    at_kill = load_checkpoint(out, expect_model=MODEL)
    killed_at = at_kill["iteration"]
    assert 2 * EVERY <= killed_at < N_ITER, f"kill at iteration {killed_at} is not mid-run"
    assert killed_at % EVERY == 0
    assert [h["iteration"] for h in at_kill["history"]] == list(range(EVERY, killed_at + 1, EVERY))
    for name in os.listdir(killed_dir):
        if name != out.name:
            assert re.fullmatch(rf"\.{re.escape(out.name)}\..+\.tmp", name), f"stray file {name!r}"

    resumed = _run_to_end(_train_cmd(out, "--resume"))
    assert f"done: {N_ITER} iterations" in resumed.stdout
    assert os.listdir(killed_dir) == [out.name]  # the resumed run's writes removed leftovers
    _run_to_end(_train_cmd(ref))

    a = load_checkpoint(out, expect_model=MODEL)
    b = load_checkpoint(ref, expect_model=MODEL)
    assert a["iteration"] == b["iteration"] == N_ITER
    assert a["config"] == b["config"]
    assert_same_state(a["state"]["learner"], b["state"]["learner"], "learner")
    assert_same_state(a["state"]["optimizer"], b["state"]["optimizer"], "optimizer")
    assert_same_state(a["state"]["generator"], b["state"]["generator"], "generator")
    assert a["history"] == b["history"]
    assert len(a["history"]) == N_ITER // EVERY
    # The resumed run kept the killed run's records and only appended to them.
    assert a["history"][: len(at_kill["history"])] == at_kill["history"]
    assert a["provenance"]["command"].startswith("python -m mamllib.train sinusoid")
    assert "--resume" in a["provenance"]["command"]


# ----------------------------------------------------------------------------- 2-3. resume via fit()


def test_fit_resume_in_two_parts_equals_one_fit(tmp_path):
    out = tmp_path / "parts.pt"
    config80 = small_config(iterations=80)
    first = fit("sinusoid", replace(config80, iterations=40), out, progress=False)
    assert load_checkpoint(out)["iteration"] == 40
    second = fit("sinusoid", config80, out, resume=True, progress=False)
    whole = fit("sinusoid", config80, tmp_path / "whole.pt", progress=False)

    assert_same_state(learner_state(second), learner_state(whole), "learner")
    assert_same_state(
        second.experiment.optimizer.state_dict(),
        whole.experiment.optimizer.state_dict(),
        "optimizer",
    )
    assert second.history == whole.history
    assert [h["iteration"] for h in whole.history] == [20, 40, 60, 80]
    # The second part really continued: its weights moved away from the 40-iteration ones.
    assert any(
        not torch.equal(a, b)
        for a, b in zip(learner_state(first).values(), learner_state(second).values())
    )
    assert_same_state(load_checkpoint(out)["state"]["learner"], learner_state(whole), "checkpoint")


class Killed(Exception):
    """Stands for a kill: raised from fit's callback, after the last checkpoint."""


def test_resume_at_any_checkpoint_reproduces_the_history(tmp_path):
    """Stopped after any checkpoint and resumed, a run logs the same history, training
    losses included, although evaluations (every 15) and checkpoints (every 10) do not
    line up: the checkpoint keeps the losses since the last evaluation."""
    config = small_config(iterations=50, eval_every=15, checkpoint_every=10, eval_tasks=4,
                          meta_batch_size=2, hidden=(8, 8))  # fmt: skip
    whole = fit("sinusoid", config, tmp_path / "whole.pt", progress=False)
    assert [h["iteration"] for h in whole.history] == [15, 30, 45, 50]
    for stop in (10, 20, 30, 40):
        out = tmp_path / f"stopped_at_{stop}.pt"

        def kill(iteration, loss, stop=stop):
            if iteration == stop + 1:
                raise Killed

        with pytest.raises(Killed):
            fit("sinusoid", config, out, progress=False, callback=kill)
        assert load_checkpoint(out)["iteration"] == stop
        resumed = fit("sinusoid", config, out, resume=True, progress=False)
        assert resumed.history == whole.history, f"stopped at {stop}"
        assert load_checkpoint(out)["history"] == whole.history
        assert_same_state(learner_state(resumed), learner_state(whole), f"stopped at {stop}")


def test_resume_with_other_config_names_the_field(tmp_path):
    out = tmp_path / "run.pt"
    fit("sinusoid", small_config(iterations=40), out, progress=False)
    before = out.read_bytes()
    with pytest.raises(
        CheckpointError,
        match=r"inner_lr \(saved 0\.01, requested 0\.02\); pass the saved values \(--inner-lr "
        r"0\.01\), or --overwrite to start over",
    ) as info:
        fit(
            "sinusoid", small_config(iterations=80, inner_lr=0.02), out, resume=True, progress=False
        )
    assert "outer_lr" not in str(info.value) and "iterations" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"hidden") as info:
        fit(
            "sinusoid",
            small_config(iterations=80, hidden=(20, 20)),
            out,
            resume=True,
            progress=False,
        )
    assert out.read_bytes() == before  # a refused resume leaves the checkpoint alone


def test_resume_to_fewer_iterations_than_done_raises(tmp_path):
    out = tmp_path / "run.pt"
    fit("sinusoid", small_config(iterations=40), out, progress=False)
    with pytest.raises(
        ValueError, match=r"already at iteration 40.*iterations=20; pass --iterations 40 or more"
    ) as info:
        fit("sinusoid", small_config(iterations=20), out, resume=True, progress=False)
    assert not isinstance(info.value, CheckpointError)
    assert load_checkpoint(out)["iteration"] == 40


def test_resume_without_path_raises():
    with pytest.raises(ValueError, match="resume=True needs"):
        fit("sinusoid", small_config(), None, resume=True, progress=False)


def test_existing_checkpoint_is_never_replaced_by_accident(tmp_path):
    out = tmp_path / "run.pt"
    fit("sinusoid", small_config(iterations=20), out, progress=False)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        fit("sinusoid", small_config(iterations=20), out, progress=False)
    assert out.read_bytes() == before
    with pytest.raises(ValueError, match="contradict"):
        fit(
            "sinusoid",
            small_config(iterations=20),
            out,
            resume=True,
            overwrite=True,
            progress=False,
        )
    fit("sinusoid", small_config(iterations=20, seed=1), out, overwrite=True, progress=False)
    assert load_checkpoint(out)["config"]["seed"] == 1


# ----------------------------------------------------------------------------- 4. contents


def test_checkpoint_contents(trained):
    config, result, out = trained
    ckpt = load_checkpoint(out, expect_model=MODEL)
    assert ckpt["format"] == FORMAT and ckpt["format_version"] == FORMAT_VERSION
    assert ckpt["model"] == MODEL and ckpt["experiment"] == "sinusoid"
    assert ckpt["config"] == asdict(config)
    assert ckpt["iteration"] == config.iterations
    assert ckpt["wall_time_s"] > 0

    history = ckpt["history"]
    assert [h["iteration"] for h in history] == [20, 40, 60]
    assert history == result.history
    for h in history:
        assert len(h["val_mse"]) == config.eval_steps + 1
        assert all(math.isfinite(v) and v >= 0 for v in h["val_mse"])
        assert math.isfinite(h["train_loss"])

    prov = ckpt["provenance"]
    assert prov["torch"] == str(torch.__version__)
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", prov["git_commit"]), prov["git_commit"]
    assert prov["hardware"].startswith("CPU ")
    assert isinstance(prov["command"], str)  # its exact form is checked in the CLI run above
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", prov["date"]), prov["date"]

    learner, loaded = load_learner(out)
    assert loaded["iteration"] == config.iterations
    assert not learner.training
    assert_same_state(learner.state_dict(), learner_state(result), "load_learner")
    x = torch.linspace(-5, 5, 11).unsqueeze(-1)
    assert torch.equal(learner(x), result.experiment.learner(x))


# ----------------------------------------------------------------------------- 5. load errors


def test_load_checkpoint_errors(trained, tmp_path):
    _, _, good = trained

    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path)  # a folder is not a checkpoint file either

    noise = tmp_path / "noise.pt"
    noise.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(noise)

    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated)
    # More corrupt files, and their messages, in test_checkpoints.py.

    foreign = tmp_path / "foreign.pt"
    torch.save({"state": {"w": torch.zeros(2)}, "model": MODEL}, foreign)
    with pytest.raises(CheckpointError, match="not a mamllib checkpoint"):
        load_checkpoint(foreign)
    not_a_dict = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(CheckpointError, match="not a mamllib checkpoint"):
        load_checkpoint(not_a_dict)

    future = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "format_version": 999, "model": MODEL, "state": {}}, future)
    with pytest.raises(CheckpointError, match="999") as info:
        load_checkpoint(future)
    assert "version" in str(info.value)

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(good, expect_model="omniglot-cnn")
    assert MODEL in str(info.value) and "omniglot-cnn" in str(info.value)


def test_load_state_strict_lists_shape_mismatches(trained):
    _, _, good = trained
    state = load_checkpoint(good)["state"]["learner"]
    other = build_sinusoid_learner(small_config(hidden=(20, 20)))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match="shape mismatches") as info:
        load_state_strict(other, state, "ckpt-source")
    message = str(info.value)
    assert "ckpt-source" in message
    assert "model.0.weight: checkpoint (40, 1) vs model (20, 1)" in message
    assert "model.2.weight: checkpoint (40, 40) vs model (20, 20)" in message
    assert_same_state(other.state_dict(), before, "untouched")  # nothing half-loaded

    deeper = build_sinusoid_learner(small_config(hidden=(40, 40, 40)))
    with pytest.raises(CheckpointError, match=r"missing \['model\.6\.bias', 'model\.6\.weight'\]"):
        load_state_strict(deeper, state, "ckpt-source")

    same = build_sinusoid_learner(small_config())
    load_state_strict(same, state, "ckpt-source")
    assert_same_state(same.state_dict(), state, "loaded")


# ----------------------------------------------------------------------------- 7. CLI


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--inner-lr", "-1"], "-1.0"),
        (["--outer-lr", "0"], "outer_lr"),
        (["--method", "foo"], "'foo'"),
        (["--path", "bar"], "'bar'"),
        (["--iterations", "0"], "iterations"),
        (["--iterations", "ten"], "'ten'"),
    ],
)
def test_parse_args_rejects_bad_values(capsys, flags, needle, tmp_path):
    with pytest.raises(SystemExit) as info:
        parse_args(["sinusoid", "--out", str(tmp_path / "x.pt"), *flags])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and needle in err, err


def test_parse_args_builds_config(tmp_path):
    name, config, args = parse_args(
        ["sinusoid", "--out", str(tmp_path / "x.pt"), "--hidden", "8", "8", "--first-order",
         "--inner-lr", "0.05", "--method", "pretrain"]
    )  # fmt: skip
    assert name == "sinusoid" and args.out == tmp_path / "x.pt" and not args.resume
    assert config == SinusoidConfig(
        hidden=(8, 8), first_order=True, inner_lr=0.05, method="pretrain"
    )


def test_main_tiny_run(tmp_path, capsys):
    out = tmp_path / "sub" / "tiny.pt"
    rc = main(
        ["sinusoid", "--out", str(out), "--iterations", "10", "--eval-every", "5",
         "--checkpoint-every", "5", "--eval-tasks", "4", "--meta-batch-size", "2",
         "--hidden", "8", "8", "--no-progress", "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "done: 10 iterations" in stdout and str(out) in stdout
    ckpt = load_checkpoint(out, expect_model=MODEL)
    assert ckpt["iteration"] == 10 and ckpt["config"]["hidden"] == (8, 8)
    assert len(ckpt["history"]) == 2


def test_divergence_raises_and_keeps_last_good_checkpoint(tmp_path):
    out = tmp_path / "diverge.pt"
    config = small_config(
        outer_lr=1e10, iterations=20, checkpoint_every=1, eval_every=20, eval_tasks=4
    )
    with pytest.raises(FloatingPointError, match=r"diverged at iteration (\d+)") as info:
        fit("sinusoid", config, out, progress=False)
    diverged_at = int(re.search(r"iteration (\d+)", str(info.value)).group(1))
    assert 1 <= diverged_at <= 20
    if diverged_at > 1:
        ckpt = load_checkpoint(out)
        assert ckpt["iteration"] == diverged_at - 1
        assert all(torch.isfinite(v).all() for v in ckpt["state"]["learner"].values())
    else:
        assert not out.exists()


# ----------------------------------------------------------------------------- 8. pre-training


def test_pretrain_fit_lowers_multitask_loss():
    config = small_config(
        method="pretrain", iterations=150, outer_lr=1e-2, eval_every=150, checkpoint_every=150
    )
    torch.manual_seed(config.seed)
    initial = build_sinusoid_learner(config)
    batch = SinusoidTasks().sample(50, 10, 10, generator=torch.Generator().manual_seed(123))
    result = fit("sinusoid", config, None, progress=False)
    trained_learner = result.experiment.learner
    # Same seed -> same initial weights as the run started from.
    with torch.no_grad():
        before = multitask_loss(initial.model, initial.params, batch, F.mse_loss).item()
        after = multitask_loss(
            trained_learner.model, trained_learner.params, batch, F.mse_loss
        ).item()
    assert after < 0.9 * before, (before, after)


def test_each_training_session_is_recorded(tmp_path):
    out = tmp_path / "run.pt"
    fit("sinusoid", small_config(iterations=20), out, progress=False)
    fit("sinusoid", small_config(iterations=40), out, resume=True, progress=False)
    sessions = load_checkpoint(out)["sessions"]
    assert [(s["start_iteration"], s["end_iteration"]) for s in sessions] == [(0, 20), (20, 40)]
    assert all(s["wall_time_s"] > 0 and s["hardware"] and "torch" in s for s in sessions)


# ----------------------------------------------------------------------------- 9. user errors
# What a user can fix is one line, ``error: ...``, exit status 2. Each case runs ``main``
# in this process and checks that stderr is exactly one line that starts with ``error:``
# and holds no traceback; two cases run the real command in a subprocess. The Omniglot
# cases point the data location at an empty folder: a config or ``--out`` problem must be
# reported instead of the missing data, which proves it is found before any data is decoded.


TINY = ["--iterations", "4", "--eval-every", "2", "--checkpoint-every", "2", "--eval-tasks", "4",
        "--meta-batch-size", "2", "--hidden", "8", "8", "--no-progress", "--device", "cpu"]  # fmt: skip
TINY_CONFIG = SinusoidConfig(iterations=4, eval_every=2, checkpoint_every=2, eval_tasks=4,
                             meta_batch_size=2, hidden=(8, 8), device="cpu")  # fmt: skip


def cli_error(capsys, *argv: str) -> str:
    """Run ``main(argv)``, check it failed as a user error, return the message."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("error: ").removesuffix("\n")


@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """An empty data location (and decoded-data cache): Omniglot is missing."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    monkeypatch.setenv("MAMLLIB_DATA", str(empty))
    monkeypatch.setenv("MAMLLIB_CACHE", str(tmp_path / "no_cache"))
    return empty


def omniglot(out: Path, data: Path, *flags: str) -> list[str]:
    return ["omniglot", "--out", str(out), "--data-root", str(data), "--device", "cpu",
            "--no-progress", "--iterations", "1", *flags]  # fmt: skip


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    """A finished 4-iteration sinusoid run."""
    out = tmp_path / "run.pt"
    fit("sinusoid", TINY_CONFIG, out, progress=False)
    return out


# ----------------------------------------------------------------------------- data


def test_missing_data(capsys, tmp_path, no_data):
    out = tmp_path / "run.pt"
    message = cli_error(capsys, *omniglot(out, no_data))
    assert message.startswith(f"Omniglot is not in {no_data}"), message
    assert "--data-root FOLDER" in message
    assert not out.exists()


def test_corrupt_data(capsys, tmp_path, no_data):
    for name in ("images_background.zip", "images_evaluation.zip"):
        (no_data / name).write_bytes(os.urandom(2000))
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", no_data))
    assert f"{no_data / 'images_background.zip'} is not a readable zip" in message


def test_data_root_that_is_not_a_folder(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", missing))
    assert message == f"--data-root {missing} is not a folder"


# ----------------------------------------------------------------------------- config limits


def test_n_way_larger_than_the_validation_characters(capsys, tmp_path, no_data):
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", no_data, "--n-way", "5000"))
    assert message == (
        "--n-way 5000 is too large: tasks are drawn from 1,100 training, 100 validation "
        "(--n-val) and 423 test characters (--split random), so N must be at most 100 "
        "(raise --n-val for more)"
    )


def test_n_way_larger_than_lakes_training_characters(capsys, tmp_path, no_data):
    flags = ["--split", "lake", "--n-val", "900", "--n-way", "100"]
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", no_data, *flags))
    assert message.startswith("--n-way 100 is too large: tasks are drawn from 64 training, 900")
    assert message.endswith("N must be at most 64 (lower --n-val for more)")


def test_n_val_larger_than_the_meta_training_characters(capsys, tmp_path, no_data):
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", no_data, "--n-val", "1200"))
    assert message == (
        "--n-val 1200 is too large: the 'random' split has 1,200 meta-training characters, "
        "validation included, so --n-val must be at most 1,199"
    )


def test_more_shots_than_drawings(capsys, tmp_path, no_data):
    message = cli_error(capsys, *omniglot(tmp_path / "run.pt", no_data, "--k-shot", "10"))
    assert message == (
        "--k-shot 10 + max(--k-query 1, --eval-query 15) = 25 drawings per class, but each "
        "character has only 20; lower them so that the sum is at most 20"
    )


# ----------------------------------------------------------------------------- --out


def test_out_under_a_file(capsys, tmp_path, no_data):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "run.pt"
    message = cli_error(capsys, *omniglot(out, no_data))
    assert (
        message == f"cannot write the checkpoint --out {out}: {out.parent} is a file, not a folder"
    )


def test_read_only_out(capsys, tiny_run):
    before = tiny_run.read_bytes()
    tiny_run.chmod(0o444)
    message = cli_error(capsys, "sinusoid", "--out", str(tiny_run), "--overwrite", *TINY)
    assert message == (
        f"cannot write the checkpoint --out {tiny_run}: the file is read-only (make it "
        "writable, or choose another path)"
    )
    assert tiny_run.read_bytes() == before


def test_out_exists(capsys, tiny_run):
    message = cli_error(capsys, "sinusoid", "--out", str(tiny_run), *TINY)
    assert message == (
        f"{tiny_run} exists; pass resume=True (--resume) to continue it or overwrite=True "
        "(--overwrite) to start over"
    )


# ----------------------------------------------------------------------------- --device


def test_cuda_without_a_gpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "new_folder" / "run.pt"
    message = cli_error(capsys, "sinusoid", "--out", str(out), *TINY, "--device", "cuda")
    assert message == (
        "--device cuda asks for CUDA, but this torch sees no CUDA device; use --device cpu "
        "or --device auto"
    )
    assert not out.parent.exists()  # nothing was created


def test_not_a_device(capsys, tmp_path):
    message = cli_error(
        capsys, "sinusoid", "--out", str(tmp_path / "r.pt"), *TINY, "--device", "gpu"
    )
    assert message == "--device 'gpu' is not a torch device; use 'cpu', 'cuda' or 'auto'"


def test_a_gpu_this_machine_does_not_have(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    out = tmp_path / "run.pt"
    message = cli_error(capsys, "sinusoid", "--out", str(out), *TINY, "--device", "cuda:3")
    assert message == "--device cuda:3 asks for GPU 3, but this machine has 1 (cuda:0)"
    assert not out.exists()


# ----------------------------------------------------------------------------- --resume


def test_resume_with_another_config(capsys, tiny_run):
    before = tiny_run.read_bytes()
    argv = ["sinusoid", "--out", str(tiny_run), "--resume", *TINY, "--inner-lr", "0.02",
            "--first-order"]  # fmt: skip
    message = cli_error(capsys, *argv)
    assert message == (
        f"cannot resume {tiny_run}: its config differs from the requested one in first_order "
        "(saved False, requested True), inner_lr (saved 0.01, requested 0.02); pass the saved "
        "values (--no-first-order --inner-lr 0.01), or --overwrite to start over"
    )
    assert tiny_run.read_bytes() == before


def test_resume_a_corrupt_checkpoint(capsys, tiny_run):
    tiny_run.write_bytes(tiny_run.read_bytes()[:-100])
    message = cli_error(capsys, "sinusoid", "--out", str(tiny_run), "--resume", *TINY)
    assert message == (
        f"{tiny_run} is corrupt or truncated (not a zip archive); restore it (a shipped "
        f"checkpoint: `git checkout -- {tiny_run}`) or retrain it"
    )


def test_resume_a_torch_file_that_is_no_checkpoint(capsys, tmp_path):
    out = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, out)
    message = cli_error(capsys, "sinusoid", "--out", str(out), "--resume", *TINY)
    assert message.startswith(f"{out} is not a mamllib checkpoint (no 'mamllib-checkpoint'")


def test_resume_another_experiments_checkpoint_before_loading_data(capsys, tiny_run, no_data):
    message = cli_error(capsys, *omniglot(tiny_run, no_data, "--resume"))
    assert message == f"{tiny_run} holds a 'sinusoid-mlp' checkpoint, expected 'omniglot-conv4'"


def test_resume_a_checkpoint_without_training_state(capsys, tmp_path):
    out = tmp_path / "bare.pt"
    save_checkpoint(out, {"model": "sinusoid-mlp", "state": {}})
    message = cli_error(capsys, "sinusoid", "--out", str(out), "--resume", *TINY)
    assert message == (
        f"cannot resume {out}: it is not a training checkpoint (no config, iteration, history, "
        "wall_time_s)"
    )


def test_resume_a_run_already_past_the_iterations(capsys, tiny_run):
    argv = ["sinusoid", "--out", str(tiny_run), "--resume", *TINY, "--iterations", "2"]
    message = cli_error(capsys, *argv)
    assert message == (
        f"{tiny_run} is already at iteration 4, past the requested iterations=2; pass "
        "--iterations 4 or more to continue it"
    )
    assert load_checkpoint(tiny_run)["iteration"] == 4


def test_resume_without_a_checkpoint_starts_fresh(capsys, tmp_path):
    out = tmp_path / "new.pt"
    assert main(["sinusoid", "--out", str(out), "--resume", *TINY]) == 0
    assert "done: 4 iterations" in capsys.readouterr().out
    assert load_checkpoint(out)["iteration"] == 4


# ----------------------------------------------------------------------------- training


def test_divergence(capsys, tmp_path):
    argv = ["sinusoid", "--out", str(tmp_path / "r.pt"), *TINY, "--iterations", "20",
            "--outer-lr", "1e10"]  # fmt: skip
    message = cli_error(capsys, *argv)
    assert message.startswith("training diverged at iteration ")
    assert message.endswith("try a smaller inner_lr (α, --inner-lr) or outer_lr (β, --outer-lr)")


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise RuntimeError("a bug in mamllib")

    monkeypatch.setattr(mamllib.train, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="a bug in mamllib"):
        main(["sinusoid", "--out", str(tmp_path / "r.pt"), *TINY])


# ----------------------------------------------------------------------------- a real shell


def run_cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mamllib.train", *argv], cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", ["config", "checkpoint"])
def test_the_command_prints_one_line_and_no_traceback(tmp_path, tiny_run, no_data, case):
    if case == "config":
        proc = run_cli(*omniglot(tmp_path / "o.pt", no_data, "--n-way", "5000"), env={})
        expected = "error: --n-way 5000 is too large"
    else:
        tiny_run.write_bytes(b"")
        proc = run_cli("sinusoid", "--out", str(tiny_run), "--resume", *TINY, env={})
        expected = f"error: {tiny_run} is corrupt or truncated (empty file)"
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(expected) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- 10. navigation
# Navigation meta-training through fit: it resumes exactly, trains the oracle, has its flags.


NAV_TINY = dict(meta_batch_size=2, episodes=3, horizon=10, hidden=(8,), eval_tasks=2,
            eval_episodes=2, eval_steps=1, eval_every=2, checkpoint_every=1, device="cpu")  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [{}, {"method": "pretrain", "optimizer": "adam", "outer_lr": 0.01}],
    ids=["trpo", "adam"],
)
def test_resume_ends_with_the_same_policy_as_an_uninterrupted_run(tmp_path, extra):
    """TRPO keeps no state; Adam's moments are checkpointed, so both resume exactly."""
    straight = fit("navigation", NavigationConfig(iterations=4, **NAV_TINY, **extra),
                   tmp_path / "a.pt", progress=False)  # fmt: skip
    fit("navigation", NavigationConfig(iterations=2, **NAV_TINY, **extra), tmp_path / "b.pt",
        progress=False)  # fmt: skip
    resumed = fit("navigation", NavigationConfig(iterations=4, **NAV_TINY, **extra), tmp_path / "b.pt",
                  resume=True, progress=False)  # fmt: skip
    a, b = straight.experiment.learner.state_dict(), resumed.experiment.learner.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history == resumed.history
    learner, ckpt = load_learner(tmp_path / "b.pt")
    assert ckpt["iteration"] == 4 and len(ckpt["sessions"]) == 2
    assert all(torch.equal(learner.state_dict()[k], a[k]) for k in a)


def test_command_line_flags_and_registration(tmp_path):
    assert EXPERIMENTS["navigation"] is NavigationExperiment
    name, config, args = parse_args(["navigation", "--out", str(tmp_path / "x.pt"), "--method",
                                     "pretrain", "--fvp-fraction", "0.25", "--hidden", "64", "64",
                                     "--no-center-advantages"])  # fmt: skip
    assert name == "navigation" and config.method == "pretrain" and config.fvp_fraction == 0.25
    assert config.hidden == (64, 64) and config.center_advantages is False
    defaults = NavigationConfig()
    assert (defaults.inner_lr, defaults.meta_batch_size, defaults.episodes, defaults.horizon,
            defaults.discount, defaults.max_kl, defaults.hidden) == (0.1, 20, 20, 100, 0.99, 0.01, (100, 100))  # fmt: skip
    assert defaults.eval_inner_lrs == (0.1, 0.05, 0.05)


def test_adam_meta_update_is_one_adam_step_on_the_surrogate(tmp_path):
    """``optimizer="adam"`` (the paper's code's pre-training): the new θ is what
    torch.optim.Adam makes of the surrogate's gradient on the same sampled batch."""
    from mamllib.rl.env import sample_goals
    from mamllib.rl.meta import meta_objective, sample_meta_batch

    config = NavigationConfig(method="pretrain", optimizer="adam", outer_lr=0.05, iterations=1,
                              **NAV_TINY)  # fmt: skip
    exp = NavigationExperiment(config)
    twin = NavigationExperiment(config)  # the same seed: the same θ and task stream
    exp.train_step()
    policy = twin.learner
    params = dict(policy.named_parameters())
    goals = sample_goals(config.meta_batch_size, twin.generator)
    batch = sample_meta_batch(policy, params, goals, inner_lr=None, episodes=config.episodes,
                              generator=twin.generator, horizon=config.horizon)  # fmt: skip
    loss, _ = meta_objective(policy, params, batch, inner_lr=None)
    adam = torch.optim.Adam(policy.parameters(), lr=0.05)
    loss.backward()
    adam.step()
    for (name, p), q in zip(exp.learner.named_parameters(), policy.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert exp.last_step["loss_before"] == pytest.approx(loss.item())
    with pytest.raises(ValueError, match=r"optimizer='sgd': valid are 'trpo', 'adam'"):
        NavigationConfig(optimizer="sgd")
    _, parsed, _ = parse_args(
        ["navigation", "--out", str(tmp_path / "x.pt"), "--optimizer", "adam"]
    )
    assert parsed.optimizer == "adam"


def test_oracle_sees_the_goal(tmp_path):
    config = NavigationConfig(method="pretrain", oracle=True, iterations=1, **NAV_TINY)
    result = fit("navigation", config, tmp_path / "o.pt", progress=False)
    assert result.experiment.learner.obs_dim == 4
    assert load_checkpoint(tmp_path / "o.pt")["config"]["oracle"] is True


# ----------------------------------------------------------------------------- max_minutes


def test_max_minutes_stops_at_a_checkpoint_and_resume_finishes_exactly(tmp_path):
    config = small_config(iterations=60, eval_every=15, checkpoint_every=10)
    out = tmp_path / "lease.pt"
    # A limit shorter than any stretch: the run stops at its first checkpoint.
    part = fit("sinusoid", config, out, progress=False, max_minutes=1e-9)
    assert (part.finished, part.iteration, load_checkpoint(out)["iteration"]) == (False, 10, 10)
    rest = fit("sinusoid", config, out, resume=True, progress=False)
    whole = fit("sinusoid", config, tmp_path / "whole.pt", progress=False)
    assert rest.finished and rest.iteration == 60
    assert_same_state(learner_state(rest), learner_state(whole), "learner")
    assert rest.history == whole.history


def test_max_minutes_long_enough_runs_to_the_end(tmp_path):
    result = fit("sinusoid", small_config(iterations=20, checkpoint_every=10),
                 tmp_path / "run.pt", progress=False, max_minutes=60)  # fmt: skip
    assert result.finished and result.iteration == 20


def test_cli_max_minutes_says_how_to_resume(tmp_path, capsys):
    out = tmp_path / "lease.pt"
    argv = ["sinusoid", "--out", str(out), "--iterations", "30", "--checkpoint-every", "10",
            "--eval-every", "10", "--eval-tasks", "4", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main([*argv, "--max-minutes", "1e-9"]) == 0
    said = capsys.readouterr().out.strip().splitlines()[-1]
    assert said.startswith("stopped at iteration 10 of 30 (--max-minutes 1e-09)")
    assert said.split("continue with: ")[1].endswith("--resume")
    assert main([*argv, "--resume"]) == 0
    assert load_checkpoint(out)["iteration"] == 30


@pytest.mark.parametrize("minutes", ["0", "-1", "nan"])
def test_cli_max_minutes_must_be_positive(tmp_path, capsys, minutes):
    with pytest.raises(SystemExit) as exit_:
        main(["sinusoid", "--out", str(tmp_path / "x.pt"), "--max-minutes", minutes])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --max-minutes must be a positive")
    assert not (tmp_path / "x.pt").exists()
