"""Lecture mode: the chapters' dashboards under Voilà, for the room, nothing off the machine.

    python -m mamllib.tools.lecture                          # lecture/: a home page of chapters
    python -m mamllib.tools.lecture lecture/01_sinusoid.ipynb
    python -m mamllib.tools.lecture --port=8866 --no-browser  # any other option goes to Voilà

Run from the repository root, where Voilà reads ``voila.json`` (the page's
Content-Security-Policy). This is ``voila`` with the template ``lecture``
(``mamllib/tools/templates/voila/templates/lecture``): Voilà's own page without the two
style sheets it fetches from a CDN (Font Awesome, which Voilà bundles anyway), and a home
page that lists the chapters by their titles instead of their file names. Voilà finds
templates only on the Jupyter data path; this command puts the course's there.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mamllib.paths import ROOT

LECTURE = ROOT / "lecture"
TEMPLATES = Path(__file__).resolve().parent / "templates"  # holds voila/templates/lecture
TEMPLATE = "lecture"


def title(notebook: Path) -> str:
    """The notebook's first ``# `` heading (its file name when it has none)."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.name


def titles(folder: Path = LECTURE) -> dict[str, str]:
    """Each notebook's title by its path relative to ``folder``, as the home page shows them."""
    return {p.name: title(p) for p in sorted(folder.glob("*.ipynb"))}


def main(argv: Sequence[str] | None = None) -> int:
    from voila.app import Voila

    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(not a.startswith("-") for a in argv):
        argv.insert(0, str(LECTURE))
    target = Path(next(a for a in argv if not a.startswith("-")))
    folder = target if target.is_dir() else target.parent
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(TEMPLATES), os.environ.get("JUPYTER_PATH")])
    )
    app = Voila()
    app.initialize([*argv, f"--template={TEMPLATE}", "--VoilaConfiguration.classic_tree=True"])
    app.tornado_settings = {
        **app.tornado_settings,
        "jinja_template_vars": {"lecture_titles": titles(folder)},
    }
    app.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
