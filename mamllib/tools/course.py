"""Picking some of the course's notebooks by name, and the command line that does it.

Shared by the commands that derive files from the notebooks (``mamllib.tools.slides``,
``mamllib.tools.student``, ``mamllib.tools.run_notebooks``). Imports nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mamllib.paths import NOTEBOOKS


def select_notebooks(names: Sequence[str] = (), folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks of ``folder`` named in ``names`` (all of them, sorted, if none are).

    A name is a notebook's stem or file name: ``01_sinusoid`` or ``01_sinusoid.ipynb``.

    Raises:
        FileNotFoundError: ``folder`` holds no notebook.
        ValueError: a name matches no notebook; the message gives the valid names.
    """
    available = {path.stem: path for path in sorted(Path(folder).glob("*.ipynb"))}
    if not available:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {folder}")
    chosen = []
    for name in names:
        stem = name.removesuffix(".ipynb")
        if stem not in available:
            raise ValueError(
                f"unknown notebook {name!r}; valid names: {', '.join(available)} (in {folder})"
            )
        chosen.append(available[stem])
    return chosen or list(available.values())


def notebook_parser(prog: str, description: str, default_out: Path) -> argparse.ArgumentParser:
    """The command line both commands start from: notebook names (default all) and ``--out``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--out", type=Path, default=default_out, help=f"default {default_out}")
    return parser
