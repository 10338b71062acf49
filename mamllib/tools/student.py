"""Student copies of the notebooks: the exercises with their solutions taken out.

    python -m mamllib.tools.student            # writes student/01_sinusoid.ipynb, ...
    python -m mamllib.tools.student --check    # exits 1, listing the copies that are stale
    python -m mamllib.tools.student 02_omniglot --out /tmp/student

The course's notebooks (``notebooks/``) keep the outputs of a real run and the solution
of every exercise, in code cells tagged ``solution``. A student copy is the same notebook
with, at the top, a note saying where it comes from and where the solutions are, and
each ``solution`` cell replaced by a stub:

- The top-level statements that call ``check(...)`` (``mamllib.exercises.check``, which
  compares an answer with mamllib's) are kept, so the student's work checks itself.
  Everything else in the cell is the solution and is removed — ``assert`` lines too,
  since they state what the student should find out (e.g. which way a ratio goes).
- Above the kept checks, a comment names the exercise (its number and title, from the
  ``**N. Title.**`` of the markdown cell before it, which holds the exercise's text) and
  the names the checks expect the student to define (those the removed code bound),
  then ``raise NotImplementedError("exercise N: ...")`` marks the place to write the
  answer: running the cell before then stops with that message rather than a NameError.
- The stub's outputs and execution count are cleared, and its tag ``solution`` becomes
  ``exercise``; its other metadata (e.g. the slide type) stay.

Every other cell is copied unchanged, outputs included. Cells that do not parse as
Python (IPython magics) lose all their code. The copies live in ``student/`` at the
repository's root, outside ``notebooks/``, which the test suite runs under nbval.
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


def _calls_check(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "check":
                return True
    return False


def _bound_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
        elif isinstance(sub, ast.alias):
            names.add((sub.asname or sub.name).split(".")[0])
    return names


def split_solution(source: str) -> tuple[list[str], list[str]]:
    """Split a solution cell's code into the checks to keep and the names they need.

    Returns:
        ``(checks, needed)``: the source of each top-level statement that calls
        ``check(...)``, in order, and the names those statements use, and do not bind
        themselves, that the rest of the cell binds: what the student must define, in
        order of first use.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []
    lines = source.splitlines()
    kept = [node for node in tree.body if _calls_check(node)]
    removed = [node for node in tree.body if not _calls_check(node)]
    local = set().union(*(_bound_names(node) for node in kept))  # e.g. a loop's variable
    bound = set().union(*(_bound_names(node) for node in removed)) - local
    needed: list[str] = []
    for node in kept:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in bound and sub.id not in needed:
                needed.append(sub.id)
    checks = ["\n".join(lines[node.lineno - 1 : node.end_lineno]) for node in kept]
    return checks, needed


def exercise_title(markdown: str) -> tuple[str, str] | None:
    """``(number, title)`` of the last ``**N. Title.**`` in a markdown cell, if any."""
    found = _EXERCISE_TITLE.findall(markdown)
    if not found:
        return None
    number, title = found[-1]
    return number, " ".join(title.split()).rstrip(".")


def stub_source(source: str, number: str, title: str | None) -> str:
    """The code of the stub that replaces a solution cell (see the module docstring)."""
    checks, needed = split_solution(source)
    heading = f"# Exercise {number}" + (f": {title}" if title else "")
    lines = [
        heading + " (the task is in the cell above).",
        "# Replace the `raise` line with your solution.",
    ]
    if checks:
        if needed:
            lines.append(f"# The check below expects you to define: {', '.join(needed)}.")
        else:
            lines.append("# The check below compares your answer with mamllib's.")
    else:
        lines.append("# No automatic check here: print what the exercise asks for.")
    lines.append(f'raise NotImplementedError("exercise {number}: write your solution here")')
    if checks:
        lines += ["", "", "\n\n".join(checks)]
    return "\n".join(lines)


def note_cell(name: str) -> nbformat.NotebookNode:
    """The markdown cell at the top of a student copy."""
    source = (
        f"**Student copy** of `notebooks/{name}`, generated by `python -m mamllib.tools.student`. "
        "The exercises at the end are left for you: each solution cell is replaced by a stub "
        "that keeps the exercise's self-check. The solutions are in the original notebook, "
        f"`notebooks/{name}` (the cells tagged `{SOLUTION_TAG}`).\n\n"
        "Regenerating overwrites this file: save your work under another name "
        "(*File → Save Notebook As…*)."
    )
    cell = nbformat.v4.new_markdown_cell(source, metadata={"slideshow": {"slide_type": "skip"}})
    cell.id = NOTE_ID
    return cell


def student_copy(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student copy of notebook ``nb`` (file name ``name``); ``nb`` is not changed."""
    result = copy.deepcopy(nb)
    cells = [note_cell(name)]
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
