"""The Chinese edition: copies of the notebooks with their markdown translated.

    python -m mamllib.tools.translate            # writes notebooks/zh/, lecture/zh/, student/zh/
    python -m mamllib.tools.translate --check    # writes nothing; exits 1 listing what is stale
    python -m mamllib.tools.translate --stale    # the cells to (re)translate, as JSON

The English notebooks are the source. The translation of a markdown cell lives in
``translations/zh/<folder>/<notebook>.json``, keyed by the cell's id, with the first 12
hex digits of the sha256 of the English text it translates (``en_sha256``)::

    {"language": "zh", "source": "notebooks/01_sinusoid.ipynb",
     "cells": {"<cell id>": {"en_sha256": "21bdab46bd4c", "zh": "# 1 · 正弦回归上的 MAML ..."}}}

A translation is stale when the English cell changed since (its hash differs) and missing
when there is none; ``--stale`` prints both kinds with the English text, for the
translator. A copy is the English notebook with:

- every markdown cell's text replaced by its translation (the English one where it is
  missing or stale, and ``--check`` fails), relative links pointing where they pointed from
  the English folder (``../GLOSSARY.md`` -> ``../../GLOSSARY.zh.md`` when that exists);
- the code cells identical, except that the first one that imports ``mamllib`` also calls
  ``mamllib.set_language("zh")`` after its imports, so that the dashboards and figures
  speak Chinese when the copy runs;
- the outputs of the last run of the copy where its code is unchanged, else the English
  notebook's, until ``python -m mamllib.tools.run_notebooks --lang zh`` runs the copies
  and saves theirs (``--check`` lists the copies whose figures are still the English ones).

``student/zh/`` holds the student copies of ``notebooks/zh/`` (``mamllib.tools.student``).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mamllib.paths import NOTEBOOKS, ROOT, STUDENT
from mamllib.tools import student

LANGUAGES = ("zh",)
TRANSLATIONS = ROOT / "translations"
LECTURE = ROOT / "lecture"
SOURCES = {"notebooks": NOTEBOOKS, "lecture": LECTURE}  # folder name -> English notebooks
SET_LANGUAGE = 'mamllib.set_language("{lang}")  # the dashboards and figures in this language'
_LINK = re.compile(r"(\]\(|(?:src|href)=\")([^)\"\s]+)")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", re.I)


def en_sha256(text: str) -> str:
    """The hash a translation records of the English text it translates (12 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def translation_path(folder: str, stem: str, lang: str = "zh") -> Path:
    return TRANSLATIONS / lang / folder / f"{stem}.json"


def load_translations(folder: str, stem: str, lang: str = "zh") -> dict[str, dict]:
    """Cell id -> ``{"en_sha256", lang}`` of one notebook (empty when there is no file)."""
    path = translation_path(folder, stem, lang)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("cells", {})


@dataclass(frozen=True)
class Stale:
    """A markdown cell whose translation is missing or was made from another English text."""

    file: str  # the translation file, relative to the repository
    cell: str  # the cell id
    status: str  # "missing", "changed" (the English text changed) or "unused" (no such cell)
    en: str  # the current English text ("" for an unused translation)
    en_sha256: str
    translation: str | None  # what the file holds now


def stale_cells(folder: str, path: Path, lang: str = "zh") -> list[Stale]:
    """The markdown cells of the English notebook ``path`` whose translation is missing or
    stale, and the translations of cells it no longer has."""
    nb = nbformat.read(path, as_version=4)
    done = load_translations(folder, path.stem, lang)
    file = translation_path(folder, path.stem, lang).relative_to(ROOT).as_posix()
    found, ids = [], set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        ids.add(cell.id)
        entry, sha = done.get(cell.id), en_sha256(cell.source)
        if not entry or not entry.get(lang, "").strip():
            found.append(Stale(file, cell.id, "missing", cell.source, sha, None))
        elif entry.get("en_sha256") != sha:
            found.append(Stale(file, cell.id, "changed", cell.source, sha, entry[lang]))
    for cell_id in sorted(set(done) - ids):
        found.append(Stale(file, cell_id, "unused", "", "", done[cell_id].get(lang)))
    return found


def localize_links(text: str, source: Path, out: Path, siblings: set[str]) -> str:
    """Relative links of a cell moved from folder ``source`` to ``out``: a notebook with a
    copy in ``out`` (``siblings``) is linked as is; any other file from ``out``, its
    ``.<lang>`` variant (``GLOSSARY.zh.md``) when there is one."""
    lang = out.name

    def move(match: re.Match) -> str:
        target = match.group(2)
        if _EXTERNAL.match(target):
            return match.group(0)
        name, _, anchor = target.partition("#")
        if "/" not in name and name in siblings:
            return match.group(0)
        resolved = Path(os.path.normpath(source / name))
        variant = resolved.with_name(f"{resolved.stem}.{lang}{resolved.suffix}")
        if variant.exists():
            resolved = variant
        moved = Path(os.path.relpath(resolved, out)).as_posix()
        return match.group(1) + moved + (f"#{anchor}" if anchor else "")

    return _LINK.sub(move, text)


def with_language(source: str, lang: str) -> str | None:
    """``source`` calling ``mamllib.set_language(lang)`` after its imports, if it imports
    ``mamllib`` (else None)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if not any(a.name == "mamllib" for n in imports if isinstance(n, ast.Import) for a in n.names):
        return None
    last = max(n.end_lineno for n in imports)
    lines = source.splitlines()
    line = SET_LANGUAGE.format(lang=lang)
    return "\n".join([*lines[:last], "", line, *lines[last:]])


def translated_notebook(
    nb: nbformat.NotebookNode,
    folder: str,
    stem: str,
    lang: str = "zh",
    previous: nbformat.NotebookNode | None = None,
) -> nbformat.NotebookNode:
    """The ``lang`` copy of the English notebook ``nb`` (``<folder>/<stem>.ipynb``);
    ``previous``, the copy as it is now, lends its outputs to unchanged code cells."""
    result = copy.deepcopy(nb)
    done = load_translations(folder, stem, lang)
    source, out = SOURCES[folder], SOURCES[folder] / lang
    siblings = {p.name for p in source.glob("*.ipynb")}
    ran = {c.id: c for c in (previous.cells if previous else []) if c.cell_type == "code"}
    called = False
    for cell in result.cells:
        if cell.cell_type == "markdown":
            entry = done.get(cell.id, {})
            if entry.get(lang, "").strip() and entry.get("en_sha256") == en_sha256(cell.source):
                cell.source = entry[lang]
            cell.source = localize_links(cell.source, source, out, siblings)
        elif cell.cell_type == "code":
            if not called and (changed := with_language(cell.source, lang)) is not None:
                cell.source, called = changed, True
            before = ran.get(cell.id)
            if before is not None and before.source == cell.source:
                cell.outputs = before.get("outputs", [])
                cell.execution_count = before.get("execution_count")
    nbformat.validate(result)
    return result


def _text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _read(path: Path) -> nbformat.NotebookNode | None:
    return nbformat.read(path, as_version=4) if path.is_file() else None


def _figures(nb: nbformat.NotebookNode) -> list[str]:
    return [
        o["data"]["image/png"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]


def _english_figures(copy_nb: nbformat.NotebookNode, english: nbformat.NotebookNode) -> bool:
    """Whether every figure of the copy is byte for byte one of the English notebook's: the
    copy has not been run (a run draws its labels in its own language)."""
    ours, theirs = _figures(copy_nb), set(_figures(english))
    return bool(ours) and all(png in theirs for png in ours)


def copies(lang: str = "zh") -> dict[Path, str]:
    """Every generated file (``notebooks/<lang>``, ``lecture/<lang>``, ``student/<lang>``)
    and its text."""
    files = {}
    for folder, source in SOURCES.items():
        for path in sorted(source.glob("*.ipynb")):
            target = source / lang / path.name
            nb = translated_notebook(nbformat.read(path, as_version=4), folder, path.stem, lang,
                                     _read(target))  # fmt: skip
            files[target] = _text(nb)
            if folder == "notebooks":
                stub = student.student_copy(nb, path.name, folder=f"notebooks/{lang}", lang=lang)
                files[STUDENT / lang / path.name] = _text(stub)
    return files


def check(lang: str = "zh") -> list[str]:
    """What is out of date, one line each (empty: the edition is fresh)."""
    problems = []
    for folder, source in SOURCES.items():
        for path in sorted(source.glob("*.ipynb")):
            for s in stale_cells(folder, path, lang):
                problems.append(f"{s.file}: cell {s.cell} {s.status}")
    for target, text in copies(lang).items():
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            name = target.relative_to(ROOT).as_posix()
            problems.append(f"{name}: {'missing' if current is None else 'stale'}")
        elif target.parent.parent == NOTEBOOKS:
            english = nbformat.read(NOTEBOOKS / target.name, as_version=4)
            if _english_figures(nbformat.reads(text, as_version=4), english):
                problems.append(
                    f"{target.relative_to(ROOT).as_posix()}: figures of the English run "
                    f"(run `python -m mamllib.tools.run_notebooks --lang {lang}`)"
                )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mamllib.tools.translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--lang", default="zh", choices=LANGUAGES)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 listing stale translations and copies")  # fmt: skip
    what.add_argument("--stale", action="store_true",
                      help="print the cells to (re)translate as JSON (exit 1 if there are any)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.stale:
        found = [
            dataclasses.asdict(s)
            for folder, source in SOURCES.items()
            for path in sorted(source.glob("*.ipynb"))
            for s in stale_cells(folder, path, args.lang)
        ]
        print(json.dumps(found, ensure_ascii=False, indent=1))
        return 1 if found else 0
    if args.check:
        problems = check(args.lang)
        if problems:
            print(f"the {args.lang} edition is out of date (cells: translate them, their English "
                  "from --stale; copies: `python -m mamllib.tools.translate`; figures: as said):",
                  file=sys.stderr)  # fmt: skip
            print("\n".join(f"  {line}" for line in problems), file=sys.stderr)
            return 1
        print(f"the {args.lang} edition is up to date")
        return 0
    for target, text in copies(args.lang).items():
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    missing = sum(len(stale_cells(f, p, args.lang)) for f, s in SOURCES.items()
                  for p in sorted(s.glob("*.ipynb")))  # fmt: skip
    if missing:
        print(f"{missing} cells left in English or stale: see `python -m mamllib.tools.translate "
              "--stale`", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
