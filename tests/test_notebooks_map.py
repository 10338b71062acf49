"""The course's map: every chapter opens with links to its sections, the other chapters and
the glossary, and every link leads somewhere (a heading's anchor as JupyterLab and Voilà
name it: its text with spaces as hyphens; a notebook or file that exists)."""

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


def check_links(path: Path, text: str) -> list[str]:
    broken = []
    for label, target in LINK.findall(text):
        if target.startswith("http"):
            continue
        if target.startswith("#"):
            ok = target[1:] in anchors(path)
        else:
            ok = (path.parent / target.split("#")[0]).exists()
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
    last = markdown(path)[-1]
    targets = {t for _, t in LINK.findall(last)}
    assert {f"{p.stem}.ipynb" for p in LECTURE if p != path} <= targets
    assert not check_links(path, last)


def test_the_glossary_defines_the_words_the_issue_lists():
    text = (ROOT / "GLOSSARY.md").read_text(encoding="utf-8")
    for word in ("Task", "Support set", "Query set", "Meta-batch", "Inner loop", "Outer loop",
                 "α (inner learning rate)", "First-order MAML", "Transductive", "Return",
                 "TRPO", "KL divergence"):  # fmt: skip
        assert f"**{word}" in text, word
