"""Without its data, a notebook shows the outputs it was committed with instead of failing.

A chapter that cannot get its data set (no copy, no network) should not leave the
student with an error and an empty notebook: when a cell fails, JupyterLab's "Run All"
has already sent every later cell and cleared its output, and the kernel aborts them
all. ``replay_committed_outputs`` prints why the data is missing in one line, then makes
every later cell display the output it has in the committed notebook instead of
running: the chapter reads as it was executed, and re-running the cell that called it
(after getting the data) switches back to running cells for real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mamllib.paths import NOTEBOOKS
from mamllib.progress_bar import in_notebook

_WIDGET = "application/vnd.jupyter.widget-view+json"
_active: dict[str, Any] = {}


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def committed_outputs(notebook: Path) -> dict[str, list[dict[str, Any]]]:
    """The stored outputs of each code cell of ``notebook``, keyed by its source."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return {
        _normalise("".join(cell["source"])): cell.get("outputs", [])
        for cell in cells
        if cell["cell_type"] == "code"
    }


def _notebook_path(chapter: str) -> Path:
    """The notebook this kernel runs (Jupyter tells the kernel), else the chapter's own."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    return NOTEBOOKS / f"{chapter.removesuffix('.ipynb')}.ipynb"


def show_committed(key: str) -> None:
    """Display the committed outputs of the cell whose normalised source is ``key``."""
    from IPython.display import display

    outputs = _active["outputs"].get(key)
    if outputs is None:
        print(
            "(skipped: this cell needs the data, and the committed notebook has no output for it)"
        )
        return
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            print("".join(output.get("text", "")), end="")
        elif kind in ("display_data", "execute_result"):
            data = {k: v for k, v in output.get("data", {}).items() if k != _WIDGET}
            data = {k: "".join(v) if isinstance(v, list) else v for k, v in data.items()}
            if data:
                display(data, raw=True, metadata=output.get("metadata", {}))


def _transform(lines: list[str]) -> list[str]:
    """IPython input transformer: a later cell becomes a call to ``show_committed``."""
    source = _normalise("".join(lines))
    if not _active or not source:
        return lines
    if source == _active["caller"]:  # the student runs the data cell again: try for real
        deactivate()
        return lines
    return ["import mamllib.viz.replay\n", f"mamllib.viz.replay.show_committed({source!r})\n"]


def deactivate() -> None:
    """Run cells normally again."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None and _transform in shell.input_transformers_post:
        shell.input_transformers_post.remove(_transform)
    _active.clear()


def replay_committed_outputs(reason: BaseException | str, chapter: str) -> None:
    """Say in one line why the chapter cannot run, then replay its committed outputs.

    Call it from the cell that loads the data, when loading fails::

        try:
            data = load_omniglot(download=True)
        except DataNotFoundError as missing:
            replay_committed_outputs(missing, "02_omniglot")

    Every later cell then shows its output from the committed notebook (the one this
    kernel runs, or ``notebooks/<chapter>.ipynb``) instead of running. Outside a Jupyter
    kernel it re-raises ``reason`` (a script has no committed outputs to show).

    Args:
        reason: the exception (or message) that says what is missing and how to get it.
        chapter: the notebook's name, e.g. ``"02_omniglot"``.
    """
    if not in_notebook():  # a script or a terminal shell has no committed outputs to show
        if isinstance(reason, BaseException):
            raise reason
        raise RuntimeError(reason)
    from IPython import get_ipython

    shell = get_ipython()
    path = _notebook_path(chapter)
    print(f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason)
    print(f"Showing the outputs this chapter was committed with ({path.name}); "
          "run this cell again once the data is there.")  # fmt: skip
    deactivate()
    _active.update(
        outputs=committed_outputs(path),
        caller=_normalise(shell.user_ns.get("In", [""])[-1] if shell.user_ns.get("In") else ""),
    )
    shell.input_transformers_post.append(_transform)
