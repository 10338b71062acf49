"""Student copies (``python -m mamllib.tools.student``): up to date, no solutions, every exercise."""

import ast

import nbformat
import pytest

from mamllib.exercises import check
from mamllib.tools import student
from mamllib.tools.course import select_notebooks

NOTEBOOKS = select_notebooks()


def _tagged(nb, tag):
    return [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]


def test_committed_copies_are_up_to_date(capsys):
    assert student.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_copy_has_no_solution_code_but_every_exercise_and_its_check(path):
    original = nbformat.read(path, as_version=4)
    copy = nbformat.read(student.STUDENT / path.name, as_version=4)
    text = "\n".join(cell.source for cell in copy.cells)
    solutions, stubs = _tagged(original, "solution"), _tagged(copy, "exercise")
    assert solutions and len(stubs) == len(solutions)
    assert not _tagged(copy, "solution")
    for solution, stub in zip(solutions, stubs):
        assert stub.outputs == [] and stub.execution_count is None
        assert 'raise NotImplementedError("exercise ' in stub.source
        for node in ast.parse(solution.source).body:
            segment = ast.get_source_segment(solution.source, node)
            if "check(" in segment:
                assert segment in stub.source  # the self-check stays
            else:
                assert segment not in stub.source
                # and nowhere in the copy, unless it is a one-liner such as `torch.manual_seed(0)`
                if "\n" in segment:
                    assert segment not in text, segment
    # Every exercise's text is still there, right before its stub; everything else is unchanged.
    assert copy.cells[0].id == student.NOTE_ID and f"notebooks/{path.name}" in copy.cells[0].source
    rest = copy.cells[1:]
    assert len(rest) == len(original.cells)
    for before, after in zip(original.cells, rest):
        if "solution" in before.metadata.get("tags", []):
            continue
        assert after == before
    for index, cell in enumerate(rest):
        if "exercise" in cell.metadata.get("tags", []):
            number = cell.source.split(":", 1)[0].removeprefix("# Exercise ")
            assert student.exercise_title(rest[index - 1].source)[0] == number


def _made_up_notebook():
    nb = nbformat.v4.new_notebook()
    plot = nbformat.v4.new_code_cell("x = 2", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="hello\n")])  # fmt: skip
    solution_1 = nbformat.v4.new_code_cell(
        "def add(a, b):\n    return a + b\n\n\n"
        "total = add(x, 3)\n"
        'check("addition", total, 5)\n'
        'assert total == 5, "the answer"\n',
        execution_count=2,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="✓ addition\n")],
        metadata={"tags": ["solution", "nbval-ignore-output"], "slideshow": {"slide_type": "skip"}},
    )
    solution_2 = nbformat.v4.new_code_cell("print(add(1, 1))", metadata={"tags": ["solution"]})
    solution_3 = nbformat.v4.new_code_cell("%time y = 1", metadata={"tags": ["solution"]})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A made-up lesson"),
        plot,
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n**1. Add.** Add `x` and 3, call it `total`."
        ),
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
        "# Exercise 1: Add (the task is in the cell above).\n"
        "# Replace the `raise` line with your solution.\n"
        "# The check below expects you to define: total.\n"
        'raise NotImplementedError("exercise 1: write your solution here")\n\n\n'
        'check("addition", total, 5)'
    )
    assert stub_1.outputs == [] and stub_1.execution_count is None
    assert stub_1.metadata == {
        "tags": ["exercise", "nbval-ignore-output"],
        "slideshow": {"slide_type": "skip"},
    }
    assert "No automatic check" in stub_2.source and "Exercise 2: Think about it" in stub_2.source
    assert "add(1, 1)" not in stub_2.source
    # no `**N. Title**` before it: numbered by position; code that does not parse is all removed
    assert stub_3.source.startswith("# Exercise 3 (") and "%time" not in stub_3.source

    # The stub stops with a clear message until the student answers; then the kept check runs.
    with pytest.raises(NotImplementedError, match="exercise 1"):
        exec(stub_1.source, {"check": check})
    answer = stub_1.source.replace(
        'raise NotImplementedError("exercise 1: write your solution here")', "total = x + 3"
    )
    exec(answer, {"check": check, "x": 2})
    with pytest.raises(AssertionError, match="addition"):
        exec(answer, {"check": check, "x": 1})


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
