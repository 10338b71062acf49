"""Student copies (``python -m mamllib.tools.student``): up to date, no solutions, every exercise
with its signatures, docstrings and grading, and Run All goes past the unanswered ones."""

import ast
import types

import nbformat
import pytest
import torch
import torch.nn.functional as F

import mamllib
from mamllib.tools import student
from mamllib.tools.course import select_notebooks

NOTEBOOKS = select_notebooks()


def _tagged(nb, tag):
    return [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]


def test_committed_copies_are_up_to_date(capsys):
    assert student.main(["--check"]) == 0, capsys.readouterr().err


def _grades(source):
    return [node for node in ast.parse(source).body if student._is_grade(node)]


def _namespace():
    names = {name: getattr(mamllib, name) for name in dir(mamllib) if not name.startswith("_")}
    return {**names, "torch": torch, "F": F, "mamllib": mamllib}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_copy_has_no_solution_code_but_every_exercise_and_its_grading(path):
    original = nbformat.read(path, as_version=4)
    copy = student.student_copy(original, path.name)
    text = "\n".join(cell.source for cell in copy.cells)
    assert "cells tagged `solution`" not in text
    solutions, stubs = _tagged(original, "solution"), _tagged(copy, "exercise")
    assert solutions and len(stubs) == len(solutions)
    assert not _tagged(copy, "solution")
    for solution, stub in zip(solutions, stubs):
        assert stub.outputs == [] and stub.execution_count is None
        assert stub.source.startswith("# Run the cells above first.\n# Exercise ")
        grades = _grades(solution.source)
        assert grades, "every exercise grades its answer"
        for node in ast.parse(solution.source).body:
            segment = ast.get_source_segment(solution.source, node)
            if node in grades:
                assert segment in stub.source  # the grading stays
            elif isinstance(node, ast.FunctionDef) and f"def {node.name}(" in stub.source:
                signature = segment.split(":\n", 1)[0]
                docstring = ast.get_docstring(node)
                assert signature in stub.source and docstring
                assert all(line in stub.source for line in docstring.splitlines())
                body = ast.get_source_segment(solution.source, node.body[-1])
                assert body not in stub.source  # the body is the solution
            elif "\n" in segment:  # any other code of several lines is the solution
                assert segment not in text, segment
    # Every exercise's text is still there, in the last markdown cell before its stub; everything
    # else is unchanged.
    assert copy.cells[0].id == student.NOTE_ID and f"notebooks/{path.name}" in copy.cells[0].source
    rest = copy.cells[1:]
    assert len(rest) == len(original.cells)
    for before, after in zip(original.cells, rest):
        if "solution" in before.metadata.get("tags", []):
            continue
        assert after == before
    for index, cell in enumerate(rest):
        if "exercise" in cell.metadata.get("tags", []):
            number = cell.source.splitlines()[1].split(":", 1)[0].removeprefix("# Exercise ")
            text_cell = [c for c in rest[:index] if c.cell_type == "markdown"][-1]
            assert student.exercise_title(text_cell.source)[0] == number


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_an_unanswered_copy_runs_on_with_one_cross_per_answer(path, capsys):
    """Run All must not stop at an exercise: each stub, unanswered, prints its ✗ lines."""
    copy = student.student_copy(nbformat.read(path, as_version=4), path.name)
    for stub in _tagged(copy, "exercise"):
        exec(stub.source, _namespace())  # raises nothing
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == len(_grades(stub.source)) and lines, stub.source
        assert all(line.startswith("✗ ") for line in lines), lines
        assert all("not answered yet" in line or "returned None" in line for line in lines), lines


def _made_up_notebook():
    nb = nbformat.v4.new_notebook()
    plot = nbformat.v4.new_code_cell("x = 2", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="hello\n")])  # fmt: skip
    solution_1 = nbformat.v4.new_code_cell(
        "from mamllib import exercises\n\n\n"
        "def helper(a):\n    return a\n\n\n"
        "def add(a, b):\n"
        '    """a + b, for two numbers."""\n'
        "    return helper(a) + b\n\n\n"
        'exercises.grade("addition", add)\n'
        "print(add(1, 2))\n"
        'choice = "a"  # the right one\n'
        'exercises.grade("which", choice)\n',
        execution_count=2,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="✓ addition\n")],
        metadata={"tags": ["solution", "nbval-ignore-output"], "slideshow": {"slide_type": "skip"}},
    )
    solution_2 = nbformat.v4.new_code_cell("print(1 + 1)", metadata={"tags": ["solution"]})
    solution_3 = nbformat.v4.new_code_cell("%time y = 1", metadata={"tags": ["solution"]})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A made-up lesson"),
        plot,
        nbformat.v4.new_markdown_cell("## Exercises\n\n**1. Add.** Write `add(a, b)`."),
        solution_1,
        nbformat.v4.new_markdown_cell("**2. Think about it.** What is 1 + 1?"),
        solution_2,
        nbformat.v4.new_markdown_cell("A cell without an exercise title."),
        solution_3,
    ]
    return nb


def test_rule_on_a_made_up_notebook():
    nb = _made_up_notebook()
    before = nbformat.writes(nb)
    copy = student.student_copy(nb, "lesson.ipynb")
    assert nbformat.writes(nb) == before  # the original is left alone
    assert copy.cells[0].id == student.NOTE_ID and "notebooks/lesson.ipynb" in copy.cells[0].source
    assert copy.cells[1:4] == nb.cells[:3]  # outputs and execution counts of other cells stay
    stub_1, stub_2, stub_3 = copy.cells[4], copy.cells[6], copy.cells[8]
    assert stub_1.source == (
        "# Run the cells above first.\n"
        "# Exercise 1: Add (the task is in the text above).\n"
        "# Replace each `...` with your code or answer; the last lines grade it "
        "(✓ or ✗ and a hint).\n"
        "from mamllib import exercises\n\n\n"
        "def add(a, b):\n"
        '    """a + b, for two numbers."""\n'
        "    ...\n\n\n"
        "choice = ...\n"
        'exercises.grade("addition", add)\n'
        'exercises.grade("which", choice)'
    )
    assert stub_1.outputs == [] and stub_1.execution_count is None
    assert stub_1.metadata == {
        "tags": ["exercise", "nbval-ignore-output"],
        "slideshow": {"slide_type": "skip"},
    }
    assert "No automatic check" in stub_2.source and "Exercise 2: Think about it" in stub_2.source
    assert "1 + 1" not in stub_2.source
    # no `**N. Title**` before it: numbered by position; code that does not parse is all removed
    assert (
        stub_3.source.splitlines()[1].startswith("# Exercise 3 (") and "%time" not in stub_3.source
    )

    # Unanswered, the stub grades without raising; answered, the same lines grade the answer.
    graded = []
    fake = types.SimpleNamespace(grade=lambda name, answer: graded.append((name, answer)))
    exec(stub_1.source.replace("from mamllib import exercises", ""), {"exercises": fake})
    assert graded[0][0] == "addition" and graded[0][1](1, 2) is None and graded[1] == ("which", ...)


def test_check_flags_missing_and_stale_copies(tmp_path, capsys):
    assert student.main(["01_sinusoid", "--out", str(tmp_path), "--check"]) == 1
    assert "01_sinusoid.ipynb (missing)" in capsys.readouterr().err
    assert student.main(["01_sinusoid", "--out", str(tmp_path)]) == 0
    assert student.main(["01_sinusoid", "--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / "01_sinusoid.ipynb"
    target.write_text(target.read_text().replace("Student copy", "My copy"))
    assert student.main(["--out", str(tmp_path), "--check", "01_sinusoid"]) == 1
    assert "01_sinusoid.ipynb (stale)" in capsys.readouterr().err


def test_unknown_notebook_is_named_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        student.main(["04_nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'04_nope'" in err and all(path.stem in err for path in NOTEBOOKS)
