"""``python -m mamllib.train``: what a user can fix is one line, ``error: ...``, exit status 2.

Each case runs ``main`` in this process and checks that stderr is exactly one line that
starts with ``error:`` and holds no traceback; two cases run the real command in a
subprocess. The Omniglot cases point the data location at an empty folder: a config or
``--out`` problem must be reported instead of the missing data, which proves it is found
before any data is decoded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mamllib.train
from mamllib.checkpoints import load_checkpoint, save_checkpoint
from mamllib.train import SinusoidConfig, fit, main

REPO = Path(__file__).resolve().parents[1]
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
def trained(tmp_path) -> Path:
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


def test_read_only_out(capsys, trained):
    before = trained.read_bytes()
    trained.chmod(0o444)
    message = cli_error(capsys, "sinusoid", "--out", str(trained), "--overwrite", *TINY)
    assert message == (
        f"cannot write the checkpoint --out {trained}: the file is read-only (make it "
        "writable, or choose another path)"
    )
    assert trained.read_bytes() == before


def test_out_exists(capsys, trained):
    message = cli_error(capsys, "sinusoid", "--out", str(trained), *TINY)
    assert message == (
        f"{trained} exists; pass resume=True (--resume) to continue it or overwrite=True "
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


def test_resume_with_another_config(capsys, trained):
    before = trained.read_bytes()
    argv = ["sinusoid", "--out", str(trained), "--resume", *TINY, "--inner-lr", "0.02",
            "--first-order"]  # fmt: skip
    message = cli_error(capsys, *argv)
    assert message == (
        f"cannot resume {trained}: its config differs from the requested one in first_order "
        "(saved False, requested True), inner_lr (saved 0.01, requested 0.02); pass the saved "
        "values (--no-first-order --inner-lr 0.01), or --overwrite to start over"
    )
    assert trained.read_bytes() == before


def test_resume_a_corrupt_checkpoint(capsys, trained):
    trained.write_bytes(trained.read_bytes()[:-100])
    message = cli_error(capsys, "sinusoid", "--out", str(trained), "--resume", *TINY)
    assert message == (
        f"{trained} is corrupt or truncated (not a zip archive); restore it (a shipped "
        f"checkpoint: `git checkout -- {trained}`) or retrain it"
    )


def test_resume_a_torch_file_that_is_no_checkpoint(capsys, tmp_path):
    out = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, out)
    message = cli_error(capsys, "sinusoid", "--out", str(out), "--resume", *TINY)
    assert message.startswith(f"{out} is not a mamllib checkpoint (no 'mamllib-checkpoint'")


def test_resume_another_experiments_checkpoint_before_loading_data(capsys, trained, no_data):
    message = cli_error(capsys, *omniglot(trained, no_data, "--resume"))
    assert message == f"{trained} holds a 'sinusoid-mlp' checkpoint, expected 'omniglot-conv4'"


def test_resume_a_checkpoint_without_training_state(capsys, tmp_path):
    out = tmp_path / "bare.pt"
    save_checkpoint(out, {"model": "sinusoid-mlp", "state": {}})
    message = cli_error(capsys, "sinusoid", "--out", str(out), "--resume", *TINY)
    assert message == (
        f"cannot resume {out}: it is not a training checkpoint (no config, iteration, history, "
        "wall_time_s)"
    )


def test_resume_a_run_already_past_the_iterations(capsys, trained):
    argv = ["sinusoid", "--out", str(trained), "--resume", *TINY, "--iterations", "2"]
    message = cli_error(capsys, *argv)
    assert message == (
        f"{trained} is already at iteration 4, past the requested iterations=2; pass "
        "--iterations 4 or more to continue it"
    )
    assert load_checkpoint(trained)["iteration"] == 4


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
def test_the_command_prints_one_line_and_no_traceback(tmp_path, trained, no_data, case):
    if case == "config":
        proc = run_cli(*omniglot(tmp_path / "o.pt", no_data, "--n-way", "5000"), env={})
        expected = "error: --n-way 5000 is too large"
    else:
        trained.write_bytes(b"")
        proc = run_cli("sinusoid", "--out", str(trained), "--resume", *TINY, env={})
        expected = f"error: {trained} is corrupt or truncated (empty file)"
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(expected) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
