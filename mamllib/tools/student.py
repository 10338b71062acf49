"""Student copies of the notebooks: the exercises with their solutions taken out.

    python -m mamllib.tools.student            # writes student/01_sinusoid.ipynb, ...
    python -m mamllib.tools.student --check    # exits 1, listing the copies that are stale
    python -m mamllib.tools.student 02_omniglot --out /tmp/student

The course's notebooks (``notebooks/``) keep the outputs of a real run and the solution
of every exercise, in code cells tagged ``solution``. A student copy is the same notebook
with, at the top, a note saying where it comes from, and each ``solution`` cell replaced
by a stub:

- a first line ``# Run the cells above first.``, then the exercise's number and title
  (from the ``**N. Title.**`` of the markdown cell before it, which holds its text);
- the cell's imports, and each graded function with its signature and docstring and
  ``...`` for a body: the docstring is the specification (helpers are the solution's);
- each answer the cell grades that is a value (``trend = "a"``) as ``trend = ...``;
- the statements that grade the answers (``exercises.grade(...)``, see
  ``mamllib.exercises``), unchanged. Everything else is the solution and is removed.

Until the student answers, the stub prints one ``✗ ... not answered yet`` line per graded
answer and raises nothing, so *Run All* goes on past it. A cell that grades nothing
(an open question) keeps only its heading. The stub's outputs and execution count are
cleared, and its tag ``solution`` becomes ``exercise``; its other metadata (e.g. the slide
type) stay.

Every other cell is copied unchanged, outputs included. The copies live in ``student/``
at the repository's root, outside ``notebooks/``, which the test suite runs under nbval.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from mamllib.paths import NOTEBOOKS, STUDENT
from mamllib.tools.course import notebook_parser, select_notebooks

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
NOTE_ID = "student-copy-note"
_EXERCISE_TITLE = re.compile(r"\*\*(\d+)\.\s+(.+?)\*\*", re.S)


def _is_grade(node: ast.stmt) -> bool:
    """A statement that is one call of ``grade(...)`` (``exercises.grade(...)``)."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "grade"


def _function_stub(node: ast.FunctionDef, lines: list[str]) -> str:
    """The function's decorators, signature and docstring, with ``...`` for a body."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    body = node.body[0]
    has_doc = (
        isinstance(body, ast.Expr)
        and isinstance(body.value, ast.Constant)
        and isinstance(body.value.value, str)
    )
    kept = lines[first - 1 : (body.end_lineno if has_doc else body.lineno - 1)]
    indent = " " * body.col_offset
    return "\n".join([*kept, f"{indent}..."])


def stub_parts(source: str) -> tuple[list[str], list[str], list[str]]:
    """What a solution cell's stub keeps (see the module docstring).

    Returns:
        ``(definitions, answers, grades)``: the imports and the graded functions' stubs;
        the value answers the cell grades, as ``name = ...``; the grading statements.
        All empty when the code does not parse (IPython magics).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], [], []
    lines = source.splitlines()
    grades = [node for node in tree.body if _is_grade(node)]
    graded = {
        arg.id for node in grades for arg in node.value.args[1:2] if isinstance(arg, ast.Name)
    }
    definitions, answers = [], []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            definitions.append(ast.get_source_segment(source, node))
        elif isinstance(node, ast.FunctionDef) and node.name in graded:
            definitions.append(_function_stub(node, lines))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in graded:
                    answers.append(f"{target.id} = ...")
    return definitions, answers, [ast.get_source_segment(source, node) for node in grades]


def exercise_title(markdown: str) -> tuple[str, str] | None:
    """``(number, title)`` of the last ``**N. Title.**`` in a markdown cell, if any."""
    found = _EXERCISE_TITLE.findall(markdown)
    if not found:
        return None
    number, title = found[-1]
    return number, " ".join(title.split()).rstrip(".")


def stub_source(source: str, number: str, title: str | None) -> str:
    """The code of the stub that replaces a solution cell (see the module docstring)."""
    definitions, answers, grades = stub_parts(source)
    heading = f"# Exercise {number}" + (f": {title}" if title else "")
    lines = ["# Run the cells above first.", heading + " (the task is in the text above)."]
    if not grades:
        lines.append("# No automatic check here: write and run what the exercise asks for.")
        return "\n".join(lines)
    lines.append(
        "# Replace each `...` with your code or answer; the last lines grade it (✓ or ✗ and a hint)."
    )
    imports = [d for d in definitions if d.startswith(("import ", "from "))]
    functions = [d for d in definitions if d not in imports]
    blocks = ["\n".join(lines + imports), *functions, "\n".join(answers + grades)]
    return "\n\n\n".join(blocks)


def note_cell(name: str, folder: str = "notebooks", lang: str = "en") -> nbformat.NotebookNode:
    """The markdown cell at the top of a student copy of ``<folder>/<name>``, in ``lang``."""
    from mamllib.i18n import catalog

    source = (
        f"**Student copy** of `{folder}/{name}`, generated by `python -m mamllib.tools.student`. "
        "The exercises are left for you: each keeps the signatures and docstrings of the "
        "functions it asks for, and the lines that grade your answers — on inputs of their own, "
        "against mamllib — with ✓, or ✗ and a hint. Run the cells above an exercise first.\n\n"
        "Regenerating overwrites this file: save your work under another name "
        "(*File → Save Notebook As…*)."
    )
    translated = catalog(lang).get(NOTE_ID)
    if translated:
        source = translated.format(notebook=f"{folder}/{name}")
    cell = nbformat.v4.new_markdown_cell(source, metadata={"slideshow": {"slide_type": "skip"}})
    cell.id = NOTE_ID
    return cell


def student_copy(
    nb: nbformat.NotebookNode, name: str, folder: str = "notebooks", lang: str = "en"
) -> nbformat.NotebookNode:
    """The student copy of notebook ``nb`` (``<folder>/<name>``; its note in ``lang``);
    ``nb`` is not changed."""
    result = copy.deepcopy(nb)
    cells = [note_cell(name, folder, lang)]
    exercises = 0
    previous_markdown = ""
    for cell in result.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and SOLUTION_TAG in tags:
            exercises += 1
            found = exercise_title(previous_markdown)
            number, title = found if found else (str(exercises), None)
            cell.source = stub_source(cell.source, number, title)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata["tags"] = [EXERCISE_TAG if t == SOLUTION_TAG else t for t in tags]
        elif cell.cell_type == "markdown":
            previous_markdown = cell.source
        cells.append(cell)
    result.cells = cells
    nbformat.validate(result)
    return result


def render(path: Path) -> str:
    """The text of ``path``'s student copy, formatted as Jupyter saves notebooks."""
    nb = nbformat.read(path, as_version=4)
    return nbformat.writes(student_copy(nb, path.name)) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = notebook_parser("python -m mamllib.tools.student", __doc__, STUDENT)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a copy is missing or stale"
    )
    args = parser.parse_args(argv)
    try:
        paths = select_notebooks(args.notebooks, NOTEBOOKS)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    stale = []
    for path in paths:
        target = args.out / path.name
        text = render(path)
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(f"{target} ({'missing' if current is None else 'stale'})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    if stale:
        print(
            "student copies out of date (run `python -m mamllib.tools.student`):", file=sys.stderr
        )
        print("\n".join(f"  {line}" for line in stale), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(paths)} student copies up to date in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
