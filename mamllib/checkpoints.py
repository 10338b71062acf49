"""Checkpoints: weights, the full config, metrics and provenance, written atomically.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code runs on load). It is written to a
temporary file in the same folder, flushed to disk, then renamed over the target, so a
run killed mid-write leaves the previous checkpoint intact; the temporary files such a
kill leaves behind are removed by the next write of the same target.

Format version 2 carries a SHA-256 checksum of its whole content (every tensor's dtype,
shape and bytes, and the plain values around them), verified on load: a truncated,
overwritten or bit-flipped file is reported as corrupt instead of resuming a damaged
run. Version 1 files (no checksum) still load, unverified.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from mamllib.paths import ROOT

FORMAT = "mamllib-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 has no checksum


class CheckpointError(ValueError):
    """A checkpoint that is not what the caller expects (another model, version, or no checkpoint)."""


class NotWritableError(PermissionError):
    """A place a run cannot write its checkpoint (found before any work is done)."""


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit of the repository holding this package, ``+dirty`` if modified."""
    where = Path(cwd) if cwd else ROOT
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
    cores, threads = _count(os.cpu_count(), "core"), _count(torch.get_num_threads(), "torch thread")
    return f"CPU {cpu}, {cores}, {threads}"


def _count(n: int | None, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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


def checksum(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint's content, ``"sha256:<hex>"``, independent of the file's layout.

    Covers every tensor (dtype, shape and bytes, wherever it lives) and every plain value,
    dicts in sorted key order, so that the loaded payload hashes as the saved one did;
    the ``"checksum"`` entry itself is left out.
    """
    digest = hashlib.sha256()
    _hash_value(digest, {k: v for k, v in payload.items() if k != "checksum"})
    return "sha256:" + digest.hexdigest()


def _scalar(value: object) -> bytes:
    """A canonical encoding of a plain value (its type is part of it)."""
    if value is None or isinstance(value, bool):
        return f"{value};".encode()
    if isinstance(value, int):
        return f"i{value};".encode()
    if isinstance(value, float):
        return f"f{value.hex() if math.isfinite(value) else value};".encode()
    if isinstance(value, str):
        return b"s%d:" % len(value.encode()) + value.encode()
    if isinstance(value, bytes):
        return b"b%d:" % len(value) + value
    text = f"{type(value).__name__}:{value!r}"  # e.g. torch.Size, torch.dtype
    return b"o%d:" % len(text) + text.encode()


def _hash_value(digest: Any, value: object) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"t{t.dtype}{tuple(value.shape)}:".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, Mapping):
        digest.update(b"{%d" % len(value))
        for key in sorted(value, key=_scalar):
            digest.update(_scalar(key))
            _hash_value(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value))
        for item in value:
            _hash_value(digest, item)
        digest.update(b"]")
    else:
        digest.update(_scalar(value))


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + rename).

    ``payload`` must hold ``model`` (a name) and ``state``; ``format``,
    ``format_version`` and ``checksum`` are added.
    """
    for key in ("model", "state"):
        if key not in payload:
            raise ValueError(
                f"a checkpoint payload needs the key {key!r}; got keys {sorted(payload)}"
            )
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    data["checksum"] = checksum(data)
    return atomic_write(path, lambda f: torch.save(data, f))


def _temp_prefix(path: Path) -> str:
    # The writer's process id lets a later write tell a killed writer's leftovers from
    # the file of a writer still at work.
    return f".{path.name}.{os.getpid()}."


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove the temporary files that killed writes of ``path`` left (``.<name>.*.tmp``).

    Only files of this target are touched, and only those whose writer is no longer
    running on this machine (or that predate the writer's id in their name).
    """
    path = Path(path)
    removed = []
    for temp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = temp.name[len(path.name) + 2 : -len(".tmp")].split(".")
        if len(parts) == 2 and parts[0].isdigit() and _process_alive(int(parts[0])):
            continue
        temp.unlink(missing_ok=True)
        removed.append(temp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or an id we cannot ask about: leave its file
    return True


def check_writable(path: str | Path, flag: str = "--out") -> Path:
    """Make sure a file can be written at ``path`` before a long run finds out it cannot.

    Creates the folder if needed, creates and removes a temporary file in it, and
    refuses a read-only existing file or a folder at ``path``.

    Raises:
        NotWritableError: naming ``path`` (given as ``flag``) and the reason.
    """
    path = Path(path)

    def fail(reason: str) -> NotWritableError:
        return NotWritableError(f"cannot write the checkpoint {flag} {path}: {reason}")

    if path.is_dir():
        raise fail(f"it is a folder; give a file name, e.g. {flag} {path / 'run.pt'}")
    if path.exists() and (not os.access(path, os.W_OK) or path.stat().st_mode & 0o222 == 0):
        raise fail("the file is read-only (make it writable, or choose another path)")
    existing = next(folder for folder in path.absolute().parents if folder.exists())
    if not existing.is_dir():
        raise fail(f"{existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"cannot create a file in {path.parent} ({exc.strerror or exc})") from None
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a temp file in ``path``'s folder, then rename it over ``path``:
    a reader (or a crash) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
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
    """Read a checkpoint, verify its checksum and check that it holds the expected model.

    Format version 2 files are verified against their checksum; version 1 files (written
    before checksums, like the first shipped checkpoints) load unverified.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a corrupt or truncated file (unreadable, or its checksum does
            not match), a torch file that is not a mamllib checkpoint, an unknown format
            version, or a checkpoint of another model than ``expect_model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise _corrupt(path, "empty file" if path.stat().st_size == 0 else "not a zip archive")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise _corrupt(path, _torch_reason(exc)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a mamllib checkpoint (no {FORMAT!r} marker): a torch file written "
            "by something else; give a checkpoint written by `python -m mamllib.train`"
        )
    version = data.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this mamllib reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (update mamllib to read it)"
        )
    if version >= 2:
        if not isinstance(data.get("checksum"), str):
            raise _corrupt(path, "its checksum is missing")
        if data["checksum"] != checksum(data):
            raise _corrupt(path, "its content does not match its checksum")
    if expect_model is not None and data.get("model") != expect_model:
        raise CheckpointError(
            f"{path} holds a {data.get('model')!r} checkpoint, expected {expect_model!r}"
        )
    return data


def _corrupt(path: str | Path, reason: str) -> CheckpointError:
    """The error for a damaged checkpoint file: what is wrong and how to get a good one."""
    return CheckpointError(
        f"{path} is corrupt or truncated ({reason}); restore it (a shipped checkpoint: "
        f"`git checkout -- {path}`) or retrain it"
    )


def _torch_reason(exc: Exception) -> str:
    """A short reason from torch's error, without its advice to load untrusted pickles."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        detail = detail.split(". ")[0].strip()
        return f"it holds pickled Python objects, not only tensors and plain values: {detail}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first.split(". ")[0]
    if not first or "weights_only" in first:
        return type(exc).__name__
    return first[:160]


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
