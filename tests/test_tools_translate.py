"""The Chinese edition (``python -m mamllib.tools.translate``): how copies are made from a
small course of its own, and the freshness of the real one."""

from __future__ import annotations

import json

import nbformat
import pytest

from mamllib.tools import translate

# ----------------------------------------------------------------------------- a small course


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = cells
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    return nb


TITLE = "# 1 · Sines\n\nSee [the glossary](../GLOSSARY.md#task), [chapter 2](02_b.ipynb) and [a page](https://example.org)."
IMPORTS = "import torch\n\nimport mamllib\nfrom mamllib.viz.plots import plot_fit\n\nprint(1)"


@pytest.fixture
def course(tmp_path, monkeypatch):
    """notebooks/ (two chapters), lecture/ (one), translations/zh/, GLOSSARY(.zh).md."""
    root = tmp_path
    (root / "notebooks").mkdir()
    (root / "lecture").mkdir()
    first = _notebook([
        nbformat.v4.new_markdown_cell(TITLE),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(IMPORTS, outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_markdown_cell("## Exercises\n\n**1. Sum.** Add."),
    ])  # fmt: skip
    nbformat.write(first, root / "notebooks" / "01_a.ipynb")
    nbformat.write(
        _notebook([nbformat.v4.new_markdown_cell("# 2")]), root / "notebooks" / "02_b.ipynb"
    )
    nbformat.write(
        _notebook([nbformat.v4.new_markdown_cell("# dash")]), root / "lecture" / "01_a.ipynb"
    )
    (root / "GLOSSARY.md").write_text("# Glossary\n")
    (root / "GLOSSARY.zh.md").write_text("# 术语表\n")
    monkeypatch.setattr(translate, "ROOT", root)
    monkeypatch.setattr(translate, "TRANSLATIONS", root / "translations")
    monkeypatch.setattr(translate, "STUDENT", root / "student")
    monkeypatch.setattr(translate, "NOTEBOOKS", root / "notebooks")
    monkeypatch.setattr(
        translate, "SOURCES", {"notebooks": root / "notebooks", "lecture": root / "lecture"}
    )
    return root


def _translate(root, folder, stem, cells):
    path = root / "translations" / "zh" / folder / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(root / folder / f"{stem}.ipynb", as_version=4)
    english = {c.id: c.source for c in nb.cells}
    entries = {
        cid: {"en_sha256": translate.en_sha256(english.get(cid, "")), "zh": text}
        for cid, text in cells.items()
    }
    path.write_text(json.dumps({"language": "zh", "source": f"{folder}/{stem}.ipynb",
                                "cells": entries}, ensure_ascii=False))  # fmt: skip
    return path


def _all(root):
    _translate(root, "notebooks", "01_a", {"c0": TITLE.replace("Sines", "正弦"),
                                           "c3": "## 练习\n\n**1. 求和。** 相加。"})  # fmt: skip
    _translate(root, "notebooks", "02_b", {"c0": "# 二"})
    _translate(root, "lecture", "01_a", {"c0": "# 面板"})


def test_en_sha256_is_the_first_12_hex_digits_of_the_utf8_sha256():
    import hashlib

    assert translate.en_sha256("θ") == hashlib.sha256("θ".encode()).hexdigest()[:12]


def test_stale_lists_missing_changed_and_unused_cells_with_their_english(course, capsys):
    _all(course)
    path = course / "translations" / "zh" / "notebooks" / "01_a.json"
    data = json.loads(path.read_text())
    data["cells"]["c3"]["en_sha256"] = "000000000000"  # translated from an older English text
    data["cells"]["gone"] = {"en_sha256": "1", "zh": "旧"}
    del data["cells"]["c0"]
    path.write_text(json.dumps(data, ensure_ascii=False))
    assert translate.main(["--stale"]) == 1
    found = {(s["cell"], s["status"]): s for s in json.loads(capsys.readouterr().out)}
    assert set(found) == {("c0", "missing"), ("c3", "changed"), ("gone", "unused")}
    assert found[("c0", "missing")]["en"] == TITLE
    assert found[("c3", "changed")]["translation"].startswith("## 练习")
    assert found[("c0", "missing")]["file"] == "translations/zh/notebooks/01_a.json"


def test_copies_translate_markdown_move_links_and_set_the_language(course):
    _all(course)
    assert translate.main([]) == 0
    nb = nbformat.read(course / "notebooks" / "zh" / "01_a.ipynb", as_version=4)
    english = nbformat.read(course / "notebooks" / "01_a.ipynb", as_version=4)
    title = nb.cells[0].source
    assert title.startswith("# 1 · 正弦")
    assert "(../../GLOSSARY.zh.md#task)" in title  # the Chinese glossary, from one folder down
    assert "(02_b.ipynb)" in title and "(https://example.org)" in title
    assert nb.cells[1].source == "x = 1"  # code cells are the English ones...
    assert nb.cells[2].source == IMPORTS.replace(
        "plot_fit\n",
        'plot_fit\n\nmamllib.set_language("zh")  # the dashboards and figures in this language\n',
    )  # ... but the first that imports mamllib sets the language, after the imports
    assert nb.cells[2].outputs == english.cells[2].outputs  # until the copy is run
    assert [c.id for c in nb.cells] == [c.id for c in english.cells]
    student = nbformat.read(course / "student" / "zh" / "01_a.ipynb", as_version=4)
    assert student.cells[0].id == "student-copy-note" and "学生版" in student.cells[0].source
    assert "notebooks/zh/01_a.ipynb" in student.cells[0].source
    lecture = nbformat.read(course / "lecture" / "zh" / "01_a.ipynb", as_version=4)
    assert lecture.cells[0].source == "# 面板"
    assert translate.check() == []


def test_without_a_chinese_glossary_the_link_goes_to_the_english_one(course):
    (course / "GLOSSARY.zh.md").unlink()
    _all(course)
    translate.main([])
    nb = nbformat.read(course / "notebooks" / "zh" / "01_a.ipynb", as_version=4)
    assert "(../../GLOSSARY.md#task)" in nb.cells[0].source


def test_a_run_copy_keeps_its_outputs_and_stays_fresh(course):
    _all(course)
    translate.main([])
    target = course / "notebooks" / "zh" / "01_a.ipynb"
    ran = nbformat.read(target, as_version=4)
    ran.cells[2].outputs = [nbformat.v4.new_output("stream", text="一\n")]
    nbformat.write(ran, target)
    assert translate.check() == ["student/zh/01_a.ipynb: stale"]  # its outputs are the copy's
    translate.main([])
    assert translate.check() == []
    assert nbformat.read(target, as_version=4).cells[2].outputs[0].text == "一\n"
    student = nbformat.read(course / "student" / "zh" / "01_a.ipynb", as_version=4)
    assert student.cells[3].outputs[0].text == "一\n"  # after the note


def test_check_names_every_stale_translation_and_copy(course, capsys):
    _all(course)
    translate.main([])
    english = course / "notebooks" / "01_a.ipynb"
    nb = nbformat.read(english, as_version=4)
    nb.cells[3].source += " Then subtract."  # an English cell changed...
    nb.cells.append(nbformat.v4.new_markdown_cell("A new cell."))  # ... and one was added
    nb.cells[-1].id = "new"
    nbformat.write(nb, english)
    (course / "lecture" / "zh" / "01_a.ipynb").unlink()
    assert translate.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "translations/zh/notebooks/01_a.json: cell c3 changed" in err
    assert "translations/zh/notebooks/01_a.json: cell new missing" in err
    assert "notebooks/zh/01_a.ipynb: stale" in err and "student/zh/01_a.ipynb: stale" in err
    assert "lecture/zh/01_a.ipynb: missing" in err
    assert "02_b" not in err


def test_copies_with_the_english_figures_are_not_fresh(course):
    _all(course)
    english = course / "notebooks" / "01_a.ipynb"
    nb = nbformat.read(english, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
    nbformat.write(nb, english)
    translate.main([])
    assert translate.check() == [
        "notebooks/zh/01_a.ipynb: figures of the English run "
        "(run `python -m mamllib.tools.run_notebooks --lang zh`)"
    ]


# ----------------------------------------------------------------------------- the course's


def _real_course() -> list[str]:
    found = []
    for folder, source in translate.SOURCES.items():
        for path in sorted(source.glob("*.ipynb")):
            found += [
                f"{s.file}: cell {s.cell} {s.status}" for s in translate.stale_cells(folder, path)
            ]
    return found


def test_every_markdown_cell_has_a_current_chinese_translation():
    stale = _real_course()
    assert not stale, (
        "translations missing or made from an older English text (their English: "
        "`python -m mamllib.tools.translate --stale`):\n" + "\n".join(stale)
    )


def test_the_chinese_copies_are_up_to_date():
    problems = [
        line for line in translate.check() if " cell " not in line and "figures" not in line
    ]
    assert not problems, (
        "the Chinese copies are stale (run `python -m mamllib.tools.translate`):\n"
        + "\n".join(problems)
    )


def test_the_chinese_notebooks_show_the_outputs_of_their_own_run():
    problems = [line for line in translate.check() if "figures" in line]
    assert not problems, "\n".join(problems)
