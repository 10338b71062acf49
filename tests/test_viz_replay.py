"""A chapter without its data replays its committed outputs instead of failing.

Runs a real notebook in a real kernel (nbclient): the data cell fails and calls
``replay_committed_outputs``; every later cell must then show its committed output
without running (those cells would raise if they ran), and running the data cell
again must switch back to running cells for real.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from mamllib.viz import replay

DATA_CELL = """\
import builtins, itertools
from mamllib.viz.replay import replay_committed_outputs
runs = builtins.__dict__.setdefault("data_cell_runs", itertools.count())
try:
    if next(runs) < FAILING_RUNS:  # the data is missing the first time(s)
        raise FileNotFoundError("the data set is missing; run `get-data` or set DATA_DIR")
except FileNotFoundError as missing:
    replay_committed_outputs(missing, "toy")"""


def _cell(source: str, outputs=()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


PNG = {
    "output_type": "display_data",
    "metadata": {},
    "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
}
WIDGET = {
    "output_type": "display_data",
    "metadata": {},
    "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox()"},
}


def _committed(failing_runs: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell(f"FAILING_RUNS = {failing_runs}"),
        _cell(DATA_CELL),
        _cell('raise RuntimeError("this cell must not run")', [_stream("accuracy 98.1%\n"), PNG]),
        _cell('raise RuntimeError("nor this one")', [WIDGET]),
    ]
    return nb


def _execute(committed, cells, path, monkeypatch) -> nbformat.NotebookNode:
    """Run ``cells`` in a fresh kernel whose notebook on disk is ``committed``."""
    nbformat.write(committed, path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # what Jupyter tells a notebook's kernel
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_later_cells_show_their_committed_outputs_instead_of_running(tmp_path, monkeypatch):
    committed = _committed(failing_runs=1)
    cells = [
        *(_cell(c.source) for c in committed.cells),
        _cell('print("a cell the committed notebook does not have")'),
    ]
    nb = _execute(committed, cells, tmp_path / "toy.ipynb", monkeypatch)
    message = _text(nb.cells[1]).splitlines()
    assert message[0] == (
        "FileNotFoundError: the data set is missing; run `get-data` or set DATA_DIR"
    )
    assert "toy.ipynb" in message[1]
    assert _text(nb.cells[2]) == "accuracy 98.1%\n"
    images = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    assert images and images[0].data["image/png"] == "iVBORw0KGgo="
    shown = [o.data for o in nb.cells[3].outputs if o.output_type == "display_data"]
    assert shown == [{"text/plain": "VBox()"}]  # a widget needs its kernel: only its text
    assert "skipped" in _text(nb.cells[4])
    assert not any(o.output_type == "error" for cell in nb.cells for o in cell.outputs)


@pytest.mark.slow
def test_running_the_data_cell_again_runs_cells_for_real(tmp_path, monkeypatch):
    committed = _committed(failing_runs=1)
    committed.cells.append(_cell('print("ran for real")', [_stream("committed\n")]))
    cells = [_cell(c.source) for c in committed.cells]
    cells.insert(2, _cell(DATA_CELL))  # the student runs the data cell again: now it works
    cells.pop(3)  # (without the cell that raises)
    cells.pop(3)
    nb = _execute(committed, cells, tmp_path / "toy.ipynb", monkeypatch)
    assert _text(nb.cells[-1]) == "ran for real\n"


@pytest.mark.slow
def test_a_data_cell_that_fails_again_keeps_replaying(tmp_path, monkeypatch):
    committed = _committed(failing_runs=2)
    cells = [_cell(c.source) for c in committed.cells]
    cells.insert(2, _cell(DATA_CELL))
    nb = _execute(committed, cells, tmp_path / "toy.ipynb", monkeypatch)
    assert _text(nb.cells[2]).startswith("FileNotFoundError: the data set is missing")
    assert _text(nb.cells[3]) == "accuracy 98.1%\n"


def test_outside_ipython_the_reason_is_raised():
    with pytest.raises(FileNotFoundError, match="no data"):
        replay.replay_committed_outputs(FileNotFoundError("no data"), "02_omniglot")
