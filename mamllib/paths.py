"""The repository's folders: one root, computed once.

The course runs from a clone of the repository (``pip install -e .``), so the shipped
checkpoints, results and notebooks sit next to this package. Every module that reads or
writes them takes its folder from here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: README.md, notebooks/, checkpoints/, results/, figures/."""

NOTEBOOKS = ROOT / "notebooks"
STUDENT = ROOT / "student"
CHECKPOINTS = ROOT / "checkpoints"
RESULTS = ROOT / "results"
FIGURES = ROOT / "figures"
