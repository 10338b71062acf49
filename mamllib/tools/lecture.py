"""Lecture mode: the chapters' dashboards under Voilà, for the room, nothing off the machine.

    python -m mamllib.tools.lecture                          # lecture/: a home page of chapters
    python -m mamllib.tools.lecture lecture/01_sinusoid.ipynb
    python -m mamllib.tools.lecture --port=8866 --no-browser  # any other option goes to Voilà
    python -m mamllib.tools.lecture --lang zh                 # lecture/zh/: the Chinese edition

Run from the repository root, where Voilà reads ``voila.json`` (the page's
Content-Security-Policy). This is ``voila`` with the template ``lecture``
(``mamllib/tools/templates/voila/templates/lecture``): Voilà's own page without the two
style sheets it fetches from a CDN (Font Awesome, which Voilà bundles anyway), and a home
page that lists the chapters by their titles instead of their file names (and the other
editions: ``lecture/zh/``, the Chinese one). Voilà finds
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
LANGUAGES = ("en", "zh")
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


def header(lang: str = "en") -> str:
    """The line above the chapters on the home page, in ``lang``."""
    from mamllib.i18n import catalog

    text = "The MAML course: the dashboards, one per chapter."
    return catalog(lang).get(text, text)


def titles(folder: Path = LECTURE) -> dict[str, str]:
    """Each notebook's title by its path relative to ``folder``, as the home page shows them."""
    return {p.name: title(p) for p in sorted(folder.glob("*.ipynb"))}


EDITIONS = {"zh": "中文版 (Chinese)", "en": "English"}


def editions(folder: Path = LECTURE) -> dict[str, str]:
    """The folder's other editions (``lecture/zh``) by their names on the home page."""
    return {p.name: EDITIONS.get(p.name, p.name) for p in sorted(folder.iterdir())
            if p.is_dir() and any(p.glob("*.ipynb"))}  # fmt: skip


def take_language(argv: list[str]) -> str:
    """Remove ``--lang X`` / ``--lang=X`` from ``argv`` (an option of ours, not Voilà's);
    return X (default "en").

    Raises:
        SystemExit: X is not "en" or "zh" (one line naming it and the valid ones).
    """
    lang = "en"
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
            del argv[i : i + 2]
            break
        if arg.startswith("--lang="):
            lang = arg.removeprefix("--lang=")
            del argv[i]
            break
    if lang not in LANGUAGES:
        raise SystemExit(f"error: unknown language {lang!r}; valid ones: {', '.join(LANGUAGES)}")
    return lang


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    lang = take_language(argv)
    from voila.app import Voila

    if not any(not a.startswith("-") for a in argv):
        argv.insert(0, str(LECTURE if lang == "en" else LECTURE / lang))
    target = Path(next(a for a in argv if not a.startswith("-")))
    folder = target if target.is_dir() else target.parent
    # the folder's language (lecture/zh) when --lang does not say
    lang = lang if lang != "en" or folder.name not in LANGUAGES else folder.name
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(TEMPLATES), os.environ.get("JUPYTER_PATH")])
    )
    app = Voila()
    app.initialize([*argv, f"--template={TEMPLATE}", "--VoilaConfiguration.classic_tree=True"])
    app.tornado_settings = {
        **app.tornado_settings,
        "jinja_template_vars": {
            "lecture_titles": {
                **titles(folder),
                **{
                    f"{name}/{n}": t
                    for name in editions(folder)
                    for n, t in titles(folder / name).items()
                },
            },
            "lecture_editions": editions(folder),
            "lecture_header": header(lang),
        },
    }
    app.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
