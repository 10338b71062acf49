"""A student's first use on a machine without the data, through the project's own doors.

Everything is fetched from a local HTTP server (127.0.0.1) that serves copies of the
course's shared zips. Those copies are repacked, so their md5s differ from the original
zips' that the code checks: each test puts the copies' md5s (computed with hashlib in
``tests/conftest.py``) in place of the originals', in this process or in the kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mamllib import train
from mamllib.data import download as download_module

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "02_omniglot.ipynb"
TINY_RUN = ["--iterations", "1", "--meta-batch-size", "1", "--eval-every", "1", "--eval-tasks", "2",
            "--checkpoint-every", "1", "--no-progress", "--device", "cpu"]  # fmt: skip


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch):
    """No data and an empty cache; the data location is ``tmp_path / "data"``."""
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MAMLLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # kernels import this checkout's mamllib
    return tmp_path / "data"


@pytest.mark.slow
def test_train_download_fetches_then_trains(fresh_machine, server, repacked_md5, monkeypatch,
                                            tmp_path, capsys):  # fmt: skip
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", server.url)
    monkeypatch.setattr(download_module, "ORIGINAL_MD5", repacked_md5)
    out = tmp_path / "run.pt"
    assert train.main(["omniglot", "--download", "--out", str(out), *TINY_RUN]) == 0
    for name in repacked_md5:
        assert (fresh_machine / "omniglot" / name).is_file()
    assert out.is_file()
    assert "done: 1 iterations" in capsys.readouterr().out


def test_train_download_with_bad_checksums_is_one_line(
    fresh_machine, server, monkeypatch, tmp_path
):
    env = {"MAMLLIB_OMNIGLOT_URL": server.url}
    proc = subprocess.run(
        [sys.executable, "-m", "mamllib.train", "omniglot", "--download", "--out",
         str(tmp_path / "run.pt"), *TINY_RUN],
        capture_output=True, text=True, env={**__import__("os").environ, **env}, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "md5" in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "python -m mamllib.data omniglot" in lines[-1]
    assert not list((fresh_machine / "omniglot").glob("*"))  # nothing half-fetched stays
    assert not (tmp_path / "run.pt").exists()


def _cells_until(nb, needle: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if needle in c.source)


def _run(nb, cells) -> nbformat.NotebookNode:
    nb.cells = cells
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # fmt: skip
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_notebook_2_fetches_its_data_on_first_use(fresh_machine, server, repacked_md5,
                                                   monkeypatch):  # fmt: skip
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", server.url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    stats = _cells_until(nb, "alphabets = sorted(set(data.alphabets))")
    mirror_checksums = nbformat.v4.new_code_cell(
        "import mamllib.data.download\n"
        f"mamllib.data.download.ORIGINAL_MD5 = {repacked_md5!r}  # the server's repacked copies"
    )
    nb = _run(nb, [mirror_checksums, *nb.cells[: stats + 1]])
    fetched = _text(nb.cells[stats])  # the data cell (shifted by one)
    assert "Fetching Omniglot" in fetched and "16 MB" in fetched
    assert _text(nb.cells[-1]).startswith("50 alphabets, 1,623 characters, 20 drawings of each")
    for name in repacked_md5:
        assert (fresh_machine / "omniglot" / name).is_file()
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_notebook_2_offline_says_what_to_run_and_keeps_its_outputs(fresh_machine, closed_port,
                                                                   monkeypatch):  # fmt: skip
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", f"http://127.0.0.1:{closed_port}/")
    committed = nbformat.read(NOTEBOOK, as_version=4)
    nb = _run(nbformat.read(NOTEBOOK, as_version=4), list(committed.cells))
    data_cell = _cells_until(nb, "load_omniglot(download=True)")
    lines = _text(nb.cells[data_cell]).splitlines()
    assert lines[0].startswith("Fetching Omniglot")  # it tried, and said what
    errors = [line for line in lines if line.startswith("DataNotFoundError: ")]
    assert len(errors) == 1 and "Could not fetch" in errors[0], lines
    assert "python -m mamllib.data omniglot" in errors[0] and "MAMLLIB_DATA" in errors[0]
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))
    replayed = 0
    for ran, stored in zip(nb.cells[data_cell + 1 :], committed.cells[data_cell + 1 :]):
        if stored.cell_type != "code" or not stored.outputs:
            continue
        images = [o.data["image/png"] for o in stored.outputs if "image/png" in o.get("data", {})]
        assert _text(ran) == _text(stored)
        assert [
            o.data["image/png"] for o in ran.outputs if "image/png" in o.get("data", {})
        ] == images
        replayed += 1
    assert replayed >= 15, replayed
    assert json.loads(NOTEBOOK.read_text())["cells"]  # the file itself is untouched
