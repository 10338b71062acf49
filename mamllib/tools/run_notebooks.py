"""Re-execute the course's notebooks in full and record how long every cell took.

Command line (maintainers; from the repository root, with the data available)::

    python -m mamllib.tools.run_notebooks              # all three, outputs saved in place
    python -m mamllib.tools.run_notebooks 02_omniglot --class-mode
    python -m mamllib.tools.run_notebooks --lang zh   # the Chinese copies in notebooks/zh

Each notebook runs top to bottom in a fresh kernel, in full mode (``MAMLLIB_FAST=0``),
from its own folder. Its outputs are saved in place with progress bars collapsed to
their last line and execution metadata stripped, and every cell's wall time goes to
``results/notebook_times.json``. The notebooks' headers and the "about N s" notes
beside their long cells quote these times, and ``tests/test_tools_run_notebooks.py`` checks
that they agree. ``--class-mode`` times the lecture variant (``MAMLLIB_CLASS=1``:
smaller evaluations) without saving its outputs. ``--lang zh`` runs the copies of
``notebooks/zh/`` (``python -m mamllib.tools.translate``) and saves their outputs in place,
recording no times (they are the English code's); run ``python -m mamllib.tools.translate``
after it, to give ``student/zh/`` the new outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mamllib.paths import NOTEBOOKS, RESULTS
from mamllib.tools.course import select_notebooks

TIMES = RESULTS / "notebook_times.json"


# A long cell's first line says how long it takes, e.g.
# "# about 40 s on a 2-core CPU (12 s in class mode)"; written after timing the cells.
TIME_NOTE = re.compile(
    r"^# about (\d+(?:\.\d+)?) (s|min) on a 2-core CPU(?: \((\d+(?:\.\d+)?) (s|min) in class mode\))?$"
)


def code_hash(nb: Any) -> str:
    """A hash of a notebook's code cells, time notes left out: the times belong to this code."""
    sources = [
        "\n".join(line for line in "".join(c.source).splitlines() if not TIME_NOTE.match(line))
        for c in nb.cells
        if c.cell_type == "code"
    ]
    return hashlib.sha256("\n\x00".join(sources).encode()).hexdigest()[:16]


def _seconds(cell: Any) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _clean(nb: Any) -> None:
    """What is committed: the outputs, each progress bar at its last state, no timings."""
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    coalesce = CoalesceStreamsPreprocessor()
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            nb.cells[index], _ = coalesce.preprocess_cell(cell, {}, index)
    nb.metadata.pop("widgets", None)


# Per cell. The slowest cell takes under 4 minutes on the 2-core CPU; a cell that has not
# answered in 15 has lost its reply (an intermittent nbclient/kernel race seen here under
# load, with the kernel idle): fail and rerun rather than wait an hour.
CELL_TIMEOUT_S = 900


def execute(
    path: Path, *, class_mode: bool, timeout: int = CELL_TIMEOUT_S
) -> tuple[Any, list[float]]:
    """Run ``path`` in a fresh kernel; the executed notebook and each cell's seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"MAMLLIB_FAST": "0", "MAMLLIB_CLASS": "1" if class_mode else "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb, [_seconds(cell) if cell.cell_type == "code" else 0.0 for cell in nb.cells]


def record(path: Path, nb: Any, seconds: list[float], mode: str) -> dict[str, Any]:
    """Store the cell times of one run in ``results/notebook_times.json``."""
    from mamllib.checkpoints import atomic_write_text, hardware

    times = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    entry = times.setdefault(path.stem, {})
    entry[mode] = {
        "total_s": round(sum(seconds), 1),
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"),
        "code_hash": code_hash(nb),
        # keyed by the code cell's number (0 = the first code cell), as markdown cells come and go
        "code_cells": [round(s, 1) for s, c in zip(seconds, nb.cells) if c.cell_type == "code"],
    }
    atomic_write_text(TIMES, json.dumps(times, indent=2, sort_keys=True) + "\n")
    return entry[mode]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamllib.tools.run_notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--class-mode", action="store_true",
                        help="time the lecture variant (MAMLLIB_CLASS=1); outputs are not saved")  # fmt: skip
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="zh: run notebooks/zh (outputs saved, no times recorded)")  # fmt: skip
    args = parser.parse_args(argv)
    folder = NOTEBOOKS if args.lang == "en" else NOTEBOOKS / args.lang
    try:
        paths = select_notebooks(args.notebooks, folder)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    import nbformat

    mode = "class" if args.class_mode else "full"
    for path in paths:
        print(f"{path.name} ({mode} mode) ...", flush=True)
        nb, seconds = execute(path, class_mode=args.class_mode)
        if args.lang == "en":
            entry = record(path, nb, seconds, mode)
        else:  # the times belong to the English notebook's entry
            code = [s for s, c in zip(seconds, nb.cells) if c.cell_type == "code"]
            entry = {"total_s": round(sum(seconds), 1), "code_cells": [round(s, 1) for s in code]}
        if not args.class_mode:
            _clean(nb)
            nbformat.write(nb, path)
        slow = {i: s for i, s in enumerate(entry["code_cells"]) if s > 10}
        print(f"  {entry['total_s']:.0f} s in all; code cells over 10 s: {slow or 'none'}")
    if args.lang != "en" and not args.class_mode:
        print("now `python -m mamllib.tools.translate`: student/zh takes these outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
