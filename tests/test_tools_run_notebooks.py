"""The times the notebooks state come from re-executing them, and the outputs are clean.

``python -m mamllib.tools.run_notebooks`` re-executes each notebook in full and records every
code cell's wall time in ``results/notebook_times.json`` (and, with ``--class-mode``,
the lecture variant's). Each notebook's header states its total, and each cell that
takes more than 10 s says so on its first line; these tests hold the statements to the
record, and the record to the notebook's current code.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from mamllib.paths import NOTEBOOKS, RESULTS
from mamllib.tools.run_notebooks import TIME_NOTE, code_hash

TIMES = json.loads((RESULTS / "notebook_times.json").read_text())
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
HEADER = re.compile(
    r"Running every cell takes about (\d+(?:\.\d+)?) (minutes?|seconds) on a 2-core CPU"
)
SLOW_S = 10  # a cell this slow says how long it takes
CLASS_LIMIT_S = 60  # in class mode every cell finishes within a minute


def _seconds(value: str, unit: str) -> float:
    return float(value) * (60 if unit.startswith("min") else 1)


def _close(stated: float, measured: float) -> bool:
    """'about N' is right within 30% (or 5 s for short cells)."""
    return abs(stated - measured) <= max(0.3 * measured, 5)


@pytest.fixture(params=PATHS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_the_record_belongs_to_this_code(notebook):
    path, nb = notebook
    assert path.stem in TIMES, f"run python -m mamllib.tools.run_notebooks {path.stem}"
    for mode, entry in TIMES[path.stem].items():
        assert entry["code_hash"] == code_hash(nb), (
            f"{path.name} changed since its {mode}-mode timing: "
            f"python -m mamllib.tools.run_notebooks {path.stem}"
            + (" --class-mode" if mode == "class" else "")
        )


def test_the_header_states_the_measured_total(notebook):
    path, nb = notebook
    match = HEADER.search(nb.cells[0].source)
    assert match, (
        f"{path.name}: the header must say 'Running every cell takes about N minutes on a 2-core CPU'"
    )
    measured = TIMES[path.stem]["full"]["total_s"]
    stated = _seconds(*match.groups())
    assert _close(stated, measured), (
        f"{path.name}: header says {stated:.0f} s, measured {measured:.0f} s"
    )


def test_every_slow_cell_says_how_long_it_takes(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    full = TIMES[path.stem]["full"]["code_cells"]
    lecture = TIMES[path.stem].get("class", {}).get("code_cells")
    assert len(full) == len(code)
    for k, (cell, seconds) in enumerate(zip(code, full)):
        note = TIME_NOTE.match(cell.source.splitlines()[0]) if cell.source else None
        where = f"{path.name}, code cell {k} ({cell.source.splitlines()[0][:60]!r})"
        if seconds > SLOW_S:
            assert note, f"{where} takes {seconds:.0f} s: its first line must say so"
        if note is None:
            continue
        stated = _seconds(note[1], note[2])
        assert _close(stated, seconds), f"{where}: says {stated:.0f} s, measured {seconds:.0f} s"
        if note[3] is not None:
            assert lecture is not None, f"{where} states a class-mode time that was never measured"
            assert _close(_seconds(note[3], note[4]), lecture[k]), (
                f"{where}: says {note[3]} {note[4]} in class mode, measured {lecture[k]:.0f} s"
            )


def test_class_mode_keeps_every_cell_under_a_minute(notebook):
    path, _ = notebook
    lecture = TIMES[path.stem].get("class")
    assert lecture, (
        f"time the class mode: python -m mamllib.tools.run_notebooks {path.stem} --class-mode"
    )
    slow = {k: s for k, s in enumerate(lecture["code_cells"]) if s >= CLASS_LIMIT_S}
    assert not slow, f"{path.name}: code cells over a minute in class mode: {slow}"


def test_committed_outputs_hold_no_errors(notebook):
    path, nb = notebook
    errors = [
        (i, o.get("ename"))
        for i, c in enumerate(nb.cells)
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors, f"{path.name} was committed with errors: {errors}"
