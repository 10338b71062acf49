"""The course's map: every chapter opens with links to its sections, the other chapters and
the glossary, and every link leads somewhere (a heading's anchor as JupyterLab and Voilà
name it: its text with spaces as hyphens; a notebook or file that exists; in a Markdown
file, a heading's anchor as GitHub names it).

And the signposts inside a chapter. The rule: every numbered section (``## 1. …``) ends
with a key takeaway, a markdown cell tagged ``takeaway`` that starts with "**Key
takeaway:**" and is the last cell before the cell that opens the next ``##`` heading. The
unnumbered sections are exempt: the Summary is the chapter's takeaway, and Exercises and
References have nothing to sum up; the setup cell before section 1 is not a section. A
takeaway quotes only numbers the notebook shows (its stored outputs or prose) or
``results/*.json`` holds. Every derivation — a displayed formula with a gradient, a
derivative or a KL divergence — has a paragraph "**In plain words.**" before it in its
section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mamllib.paths import ROOT

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LECTURE = sorted((ROOT / "lecture").glob("*.ipynb"))


def markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def anchors(path: Path) -> set[str]:
    return {
        line.lstrip("#").strip().replace(" ", "-")
        for text in markdown(path)
        for line in text.splitlines()
        if line.startswith("#")
    }


def anchor_in(path: Path, anchor: str) -> bool:
    if path.suffix == ".ipynb":
        return anchor in anchors(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    headings = [line.lstrip("#").strip().lower() for line in lines if line.startswith("#")]
    return anchor in {re.sub(r"[^\w\- ]", "", h).replace(" ", "-") for h in headings}


def check_links(path: Path, text: str) -> list[str]:
    broken = []
    for label, target in LINK.findall(text):
        if target.startswith("http"):
            continue
        if target.startswith("#"):
            ok = target[1:] in anchors(path)
        else:
            file, _, anchor = target.partition("#")
            ok = (path.parent / file).exists() and (
                not anchor or anchor_in(path.parent / file, anchor)
            )
        if not ok:
            broken.append(f"[{label}]({target})")
    return broken


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_opens_with_a_map_whose_links_lead_somewhere(path):
    first = markdown(path)[1]
    assert first.startswith("**Contents**"), "the cell after the title is the contents"
    sections = [
        line[3:].strip()
        for t in markdown(path)
        for line in t.splitlines()
        if line.startswith("## ")
    ]
    targets = dict((t, label) for label, t in LINK.findall(first))
    assert all(f"#{s.replace(' ', '-')}" in targets for s in sections)  # every section listed
    assert "../GLOSSARY.md" in targets
    assert {f"{p.stem}.ipynb" for p in CHAPTERS if p != path} <= set(targets)
    assert not check_links(path, first)


@pytest.mark.parametrize("path", LECTURE, ids=lambda p: p.stem)
def test_each_dashboard_links_the_others(path):
    text = "\n".join(markdown(path))  # under the title since the dashboards face a room
    targets = {t for _, t in LINK.findall(text)}
    assert {f"{p.stem}.ipynb" for p in LECTURE if p != path} <= targets
    assert not check_links(path, text)


def test_the_glossary_defines_the_words_the_issue_lists():
    text = (ROOT / "GLOSSARY.md").read_text(encoding="utf-8")
    for word in ("Task", "Support set", "Query set", "Meta-batch", "Inner loop", "Outer loop",
                 "α (inner learning rate)", "First-order MAML", "Transductive", "Return",
                 "TRPO", "KL divergence"):  # fmt: skip
        assert f"**{word}" in text, word


# ----------------------------------------------------------------------------- signposts

NUMBERED = re.compile(r"^## \d+\.", re.M)
HEADING = re.compile(r"^## ", re.M)
TAKEAWAY, PLAIN = "**Key takeaway:**", "**In plain words.**"
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
DERIVATION = re.compile(r"\\nabla|\\partial|KL")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def source(cell: dict) -> str:
    return "".join(cell["source"])


def numbered_sections(path: Path) -> list[tuple[str, list[dict], dict | None]]:
    """Each numbered section: its heading, its cells (from the cell holding the heading to
    the cell before the one holding the next ``##`` heading), and that next cell."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    starts = [
        i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and HEADING.search(source(c))
    ]
    out = []
    for start, end in zip(starts, starts[1:] + [len(cells)]):
        heading = NUMBERED.search(source(cells[start]))
        if heading:
            line = source(cells[start])[heading.start() :].splitlines()[0]
            out.append((line, cells[start:end], cells[end] if end < len(cells) else None))
    return out


def is_takeaway(cell: dict) -> bool:
    tagged = "takeaway" in cell["metadata"].get("tags", [])
    return cell["cell_type"] == "markdown" and tagged and source(cell).startswith(TAKEAWAY)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_numbered_section_ends_with_a_key_takeaway(path):
    sections = numbered_sections(path)
    assert sections, "a chapter has numbered sections"
    for heading, cells, following in sections:
        assert is_takeaway(cells[-1]), f"{heading}: the last cell is not a Key takeaway"
        assert sum(map(is_takeaway, cells)) == 1, f"{heading}: one takeaway, at the end"
        if following is not None:  # else the takeaway would not close the section
            assert source(following).lstrip().startswith("## "), (
                f"the cell after {heading} opens with its heading"
            )
        assert len(source(cells[-1]).split()) <= 80, f"{heading}: a takeaway is a sentence or two"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_takeaways_quote_only_numbers_the_course_shows(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    shown = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "results").glob("*.json"))]
    for cell in cells:
        if is_takeaway(cell):
            continue
        shown.append(source(cell))
        for out in cell.get("outputs", []):
            shown.append("".join(out.get("text", "")))
            shown += ["".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    shown = "\n".join(shown)

    def is_shown(number: str) -> bool:
        forms = [number]
        if number.isdigit() and int(number) <= 100:
            forms.append(str(int(number) / 100))  # a percentage of a fraction printed as 0.36
        return any(re.search(rf"(?<![\d.,]){re.escape(f)}", shown) for f in forms)

    for cell in filter(is_takeaway, cells):
        missing = [n for n in NUMBER.findall(source(cell)) if not is_shown(n)]
        assert not missing, f"{source(cell)[:60]}…: {missing} shown nowhere in the notebook"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_derivation_is_said_in_plain_words_first(path):
    derivations = 0
    for heading, cells, _ in numbered_sections(path):
        text = "\n\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
        for formula in DISPLAY.finditer(text):
            if DERIVATION.search(formula.group(1)):
                derivations += 1
                assert PLAIN in text[: formula.start()], (
                    f"{heading}: a derivation without plain words before it"
                )
    assert derivations or path.stem.startswith("02"), "chapters 1 and 3 derive things"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_link_in_a_chapter_leads_somewhere(path):
    broken = [link for text in markdown(path) for link in check_links(path, text)]
    assert not broken, broken


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_removing_any_takeaway_fails(path, tmp_path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    where = [i for i, cell in enumerate(nb["cells"]) if is_takeaway(cell)]
    assert where
    for i in where:
        copy = tmp_path / path.name
        copy.write_text(json.dumps({**nb, "cells": nb["cells"][:i] + nb["cells"][i + 1 :]}))
        with pytest.raises(AssertionError, match="not a Key takeaway"):
            test_every_numbered_section_ends_with_a_key_takeaway(copy)
