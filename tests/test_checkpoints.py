"""Checkpoint files: checksums, corrupt and foreign files, stale temporary files, --out checks.

A corrupt file must be reported as such in one line that names it and says how to get a
good copy, never with torch's advice to load it with ``weights_only=False``. The
bit-flip case edits the zip archive that ``torch.save`` writes by hand (the local file
header gives where a tensor's bytes start), and confirms with ``zipfile``'s own CRC
check that the flipped byte lies inside the tensor's storage.
"""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from mamllib.checkpoints import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    NotWritableError,
    check_writable,
    checksum,
    hardware,
    load_checkpoint,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
MODEL = "sinusoid-mlp"


def payload(**extra) -> dict:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(3, 1)).sum().backward()
    optimizer.step()
    return {
        "model": MODEL,
        "config": {"hidden": (16,), "inner_lr": 0.01, "first_order": False},
        "iteration": 7,
        "history": [{"iteration": 5, "train_loss": 0.25, "val_mse": [1.5, 0.5]}],
        "losses_since_eval": [0.1, 0.2],
        "state": {
            "learner": net.state_dict(),
            "optimizer": optimizer.state_dict(),  # int keys, tuples, tensors
            "generator": torch.Generator().manual_seed(3).get_state(),
        },
        **extra,
    }


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "run.pt"
    save_checkpoint(path, payload())
    return path


def assert_corrupt(path: Path, reason: str) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path} is corrupt or truncated ("), message
    assert reason in message, message
    assert f"`git checkout -- {path}`" in message and "retrain" in message
    assert "\n" not in message and "weights_only" not in message, message


def tensor_storage(path: Path) -> tuple[zipfile.ZipInfo, int]:
    """The largest tensor storage in ``path`` and the file offset of its first byte."""
    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if re.search(r"/data/\d+$", i.filename)),
            key=lambda i: i.file_size,
        )
    assert info.compress_type == zipfile.ZIP_STORED  # torch.save stores tensors uncompressed
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    assert header[:4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info, info.header_offset + 30 + name_length + extra_length


# ----------------------------------------------------------------------------- checksum


def test_saved_checkpoint_carries_a_checksum_of_its_content(saved):
    data = load_checkpoint(saved, expect_model=MODEL)
    assert data["format"] == FORMAT and data["format_version"] == FORMAT_VERSION == 2
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", data["checksum"])
    assert data["checksum"] == checksum(data)
    assert data["losses_since_eval"] == [0.1, 0.2]
    assert torch.equal(data["state"]["generator"], torch.Generator().manual_seed(3).get_state())


def test_checksum_covers_values_dtypes_shapes_and_not_key_order():
    base = {"a": torch.zeros(4), "b": [1, 2.0, "x", None, True]}
    assert checksum(base) == checksum({"b": [1, 2.0, "x", None, True], "a": torch.zeros(4)})
    assert checksum(base) == checksum({**base, "checksum": "sha256:whatever"})
    changed = [
        {**base, "a": torch.zeros(2, 2)},  # same bytes, another shape
        {**base, "a": torch.zeros(4, dtype=torch.int32)},  # same bytes, another dtype
        {**base, "a": torch.tensor([0.0, 0.0, 0.0, 1e-45])},  # one bit of one element
        {**base, "b": [1, 2.0, "y", None, True]},
        {**base, "b": [1.0, 2.0, "x", None, True]},  # an int became a float
        {**base, "b": [1, 2.0, "x", None, 1]},  # a bool became an int
        {**base, "c": 0},
    ]
    assert len({checksum(d) for d in changed} | {checksum(base)}) == len(changed) + 1


# ----------------------------------------------------------------------------- corrupt files


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    assert_corrupt(saved, "(not a zip archive)")
    saved.write_bytes(data[:-20])  # only the end of the zip's directory is missing
    assert_corrupt(saved, "(not a zip archive)")
    saved.write_bytes(b"")
    assert_corrupt(saved, "(empty file)")


def test_random_bytes(tmp_path):
    noise = tmp_path / "noise.pt"
    noise.write_bytes(random.Random(0).randbytes(4096))
    assert_corrupt(noise, "(not a zip archive)")


def test_byte_flipped_inside_a_stored_tensor(saved):
    info, start = tensor_storage(saved)
    data = bytearray(saved.read_bytes())
    data[start + info.file_size // 2] ^= 0x10
    saved.write_bytes(bytes(data))
    with zipfile.ZipFile(saved) as archive, pytest.raises(zipfile.BadZipFile, match="CRC"):
        archive.read(info.filename)  # the flip is inside that tensor's bytes
    torch.load(saved, weights_only=True)  # which torch alone reads without complaint
    assert_corrupt(saved, "(its content does not match its checksum)")


def test_byte_flipped_in_a_plain_value(saved):
    data = saved.read_bytes()
    assert data.count(MODEL.encode()) == 1
    saved.write_bytes(data.replace(MODEL.encode(), b"sinusoid-mlq"))
    assert_corrupt(saved, "(its content does not match its checksum)")


def test_checksum_missing_from_a_version_2_file(tmp_path):
    path = tmp_path / "v2.pt"
    torch.save({"format": FORMAT, "format_version": 2, "model": MODEL, "state": {}}, path)
    assert_corrupt(path, "(its checksum is missing)")


def test_pickled_module_is_not_read_and_torch_advice_does_not_leak(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), path)
    assert_corrupt(path, "pickled Python objects")
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        load_checkpoint(path)


def test_torch_file_without_the_marker_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state": {"w": torch.zeros(2)}, "model": MODEL}, path)
    with pytest.raises(CheckpointError, match=r"is not a mamllib checkpoint \(no 'mamllib-"):
        load_checkpoint(path)


def test_version_1_files_without_checksum_still_load(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save({"format": FORMAT, "format_version": 1, "model": MODEL, "state": {"w": 1}}, path)
    assert load_checkpoint(path, expect_model=MODEL)["state"] == {"w": 1}


def test_shipped_checkpoint_still_loads():
    data = load_checkpoint(REPO / "checkpoints" / "sinusoid_maml.pt", expect_model=MODEL)
    assert data["format_version"] in (1, 2) and data["iteration"] > 0


# ----------------------------------------------------------------------------- atomic save


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_save_checkpoint_is_atomic(tmp_path, monkeypatch, error):
    path = tmp_path / "ckpt.pt"
    good = {"model": MODEL, "state": {"w": torch.arange(5.0)}, "iteration": 1}
    save_checkpoint(path, good)
    before = path.read_bytes()
    assert (path.stat().st_mode & 0o777) == 0o644

    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(type(error)):
        save_checkpoint(path, {"model": MODEL, "state": {"w": torch.zeros(5)}, "iteration": 2})
    monkeypatch.setattr(torch, "save", real_save)

    assert path.read_bytes() == before
    loaded = load_checkpoint(path, expect_model=MODEL)
    assert loaded["iteration"] == 1 and torch.equal(loaded["state"]["w"], torch.arange(5.0))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_save_checkpoint_needs_model_and_state(tmp_path):
    with pytest.raises(ValueError, match="'state'"):
        save_checkpoint(tmp_path / "x.pt", {"model": MODEL})
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- temp files


def test_stale_temp_files_of_the_target_are_removed_on_the_next_save(tmp_path):
    path = tmp_path / "run.pt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = [
        tmp_path / f".run.pt.{int(dead.stdout)}.k2j4x8_q.tmp",  # a killed writer's
        tmp_path / ".run.pt.a8f3kq1z.tmp",  # from before the writer's id was in the name
    ]
    kept = [
        tmp_path / f".run.pt.{os.getpid()}.live0000.tmp",  # a writer still running
        tmp_path / ".other.pt.a8f3kq1z.tmp",  # another target's
        tmp_path / ".run.pt.a8f3kq1z.tmp.bak",  # not a temporary file
    ]
    for file in stale + kept:
        file.write_bytes(b"half a checkpoint")
    save_checkpoint(path, payload())
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [path, *kept])


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, payload())
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- --out


def test_writable_out_creates_its_folder_and_leaves_nothing_else(tmp_path):
    out = tmp_path / "new" / "deeper" / "run.pt"
    assert check_writable(out) == out
    assert out.parent.is_dir() and os.listdir(out.parent) == []


def test_out_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "run.pt", tmp_path / "file" / "deeper" / "run.pt"):
        with pytest.raises(NotWritableError) as info:
            check_writable(out)
        assert str(info.value) == (
            f"cannot write the checkpoint --out {out}: {tmp_path / 'file'} is a file, not a folder"
        )


def test_out_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(NotWritableError, match=r"it is a folder; give a file name"):
        check_writable(tmp_path)


def test_read_only_out_is_refused(tmp_path):
    out = tmp_path / "run.pt"
    out.write_bytes(b"x")
    out.chmod(0o444)
    with pytest.raises(NotWritableError, match=r"the file is read-only"):
        check_writable(out)


def test_out_where_no_file_can_be_created(tmp_path, monkeypatch):
    """What a read-only folder does to anyone but root (root is refused below, if not root)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "run.pt"
    with pytest.raises(NotWritableError) as info:
        check_writable(out)
    assert str(info.value) == (
        f"cannot write the checkpoint --out {out}: cannot create a file in {tmp_path} "
        "(Permission denied)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_out_in_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(NotWritableError, match=r"Permission denied"):
            check_writable(folder / "run.pt")
    finally:
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- provenance


@pytest.mark.parametrize(
    ("count", "words"), [(1, ", 1 core, 1 torch thread"), (4, ", 4 cores, 4 torch threads")]
)
def test_hardware_counts_cores_and_threads_in_words(monkeypatch, count, words):
    monkeypatch.setattr(torch, "get_num_threads", lambda: count)
    monkeypatch.setattr(os, "cpu_count", lambda: count)
    assert hardware("cpu").endswith(words)


def test_every_shipped_checkpoint_carries_a_verified_checksum():
    shipped = sorted((REPO / "checkpoints").rglob("*.pt"))
    assert shipped
    for path in shipped:
        data = load_checkpoint(path)  # raises unless the content matches its checksum
        assert data["format_version"] == FORMAT_VERSION, path
        assert data["checksum"].startswith("sha256:"), path
