"""Checkpoints: weights, the full config, metrics and provenance, written atomically.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code runs on load). It is written to a
temporary file in the same folder, flushed to disk, then renamed over the target, so a
run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

FORMAT = "mamllib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is not what the caller expects (another model, version, or no checkpoint)."""


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit of the repository holding this package, ``+dirty`` if modified."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def hardware(device: torch.device | str = "cpu") -> str:
    """A one-line description of the machine a run used."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def command_line() -> str:
    """The command that is running, as a user would type it (``python -m mamllib.x ...``)."""
    if not sys.argv or not sys.argv[0]:
        return ""
    script = Path(sys.argv[0]).resolve()
    package = Path(__file__).resolve().parent
    if script.is_relative_to(package):
        module = ".".join(script.relative_to(package.parent).with_suffix("").parts)
        return " ".join(["python", "-m", module, *sys.argv[1:]])
    return " ".join(["python", *sys.argv])


def provenance(device: torch.device | str = "cpu") -> dict[str, str]:
    """Where a result came from: versions, commit, hardware, the command line and the date."""
    return {
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "hardware": hardware(device),
        "command": command_line(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + rename).

    ``payload`` must hold ``model`` (a name) and ``state``; ``format`` and
    ``format_version`` are added.
    """
    for key in ("model", "state"):
        if key not in payload:
            raise ValueError(
                f"a checkpoint payload needs the key {key!r}; got keys {sorted(payload)}"
            )
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    return atomic_write(path, lambda f: torch.save(data, f))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a temp file in ``path``'s folder, then rename it over ``path``:
    a reader (or a crash) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def load_checkpoint(
    path: str | Path, *, expect_model: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint and check that it is a mamllib checkpoint of the expected model.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: not a mamllib checkpoint, another format version, or a
            checkpoint of another model than ``expect_model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a mamllib checkpoint (no {FORMAT!r} marker)")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this mamllib reads version "
            f"{FORMAT_VERSION}"
        )
    if expect_model is not None and data.get("model") != expect_model:
        raise CheckpointError(
            f"{path} holds a {data.get('model')!r} checkpoint, expected {expect_model!r}"
        )
    return data


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` with an error that names the mismatching keys and shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source} does not fit this model: missing {missing}, unexpected {unexpected}, "
            f"shape mismatches {shapes}"
        )
    module.load_state_dict(state)
