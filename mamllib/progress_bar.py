"""Progress bars for the long computations: one tqdm configuration for the whole course."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Voilà, nbclient)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
    **kwargs: Any,
) -> tqdm:
    """A tqdm progress bar, as text.

    In a notebook it goes to stdout as plain text rather than a widget: it updates in
    place in JupyterLab, and its last line ("600/600 [02:41<00:00, 3.7 tasks/s]") stays
    in the saved notebook, which is how a reader sees how long the cell took. Elsewhere
    it goes to stderr, as command-line tools do.

    Args:
        iterable, total, desc, unit: as for ``tqdm``.
        enabled: False shows nothing (and costs nothing).
        **kwargs: passed on to ``tqdm``.
    """
    notebook = in_notebook()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        file=sys.stdout if notebook else sys.stderr,
        mininterval=1.0 if notebook else 0.1,
        dynamic_ncols=not notebook,
        ncols=100 if notebook else None,
        **kwargs,
    )
