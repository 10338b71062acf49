"""Exercises that grade themselves (micrograd's ``cmp`` style, one step further).

    from mamllib import exercises

    def first_order_meta_gradient(model, theta, batch, alpha):
        ...

    exercises.grade("first_order_meta_gradient", first_order_meta_gradient)

``grade(name, answer)`` calls the student's function on inputs the grader draws itself —
fresh random networks, tasks and step sizes, several of them — and compares what it
returns with mamllib (or with an analytic answer); a value answer (``answer = "b"``) is
compared with the right choice. It prints one line: ``✓ ...`` when the answer is right,
``✗ ...`` and a hint when it is not. It never raises: a function that is still ``...``,
raises ``NotImplementedError`` or fails in any other way gets its ``✗`` line too, so
*Run All* goes on to the next cell. The exercises live per chapter in
``mamllib.exercises.sinusoid``, ``.omniglot`` and ``.navigation``; ``registry()`` lists them.

``check(name, mine, reference)`` compares two values and raises when they differ: the
notebooks use it in the text, where a from-scratch piece is set beside mamllib's.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import torch

CHAPTERS = ("sinusoid", "omniglot", "navigation")
PROBLEMS = 3  # random problems per exercise
EXERCISES: dict[str, tuple[str, Callable[[Any, torch.Generator], str]]] = {}


class Wrong(Exception):
    """Raised by a grader: the answer is wrong; the message is the hint."""


def exercise(title: str):
    """Register a grader ``grader(answer, generator) -> what was checked`` under its name."""

    def register(grader):
        EXERCISES[grader.__name__] = (title, grader)
        return grader

    return register


def registry() -> dict[str, tuple[str, Callable[[Any, torch.Generator], str]]]:
    """Every exercise: name -> (title, grader), the chapters' graders loaded."""
    for chapter in CHAPTERS:
        importlib.import_module(f"{__name__}.{chapter}")
    return EXERCISES


def grade(name: str, answer: Any, *, seed: int | None = None) -> None:
    """Grade ``answer`` (a function, or a value) for exercise ``name``; print ✓ or ✗.

    Args:
        name: the exercise, e.g. ``"inner_step"`` (the keys of ``registry()``).
        answer: what the exercise asks for; ``...`` while it is not answered.
        seed: seeds the grader's random inputs (default: fresh ones every call).
    """
    known = registry()
    if name not in known:
        print(f"✗ {name}: no such exercise (the exercises: {', '.join(sorted(known))})")
        return
    title, grader = known[name]
    seed = secrets.randbits(31) if seed is None else seed
    try:
        if answer is ... or answer is None:
            raise Wrong("not answered yet: replace the `...` with your answer, then run the cell")
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            checked = grader(answer, torch.Generator().manual_seed(seed))
    except Wrong as wrong:
        print(_one_line(f"✗ {title}: {wrong}"))
    except NotImplementedError:
        print(f"✗ {title}: not written yet: replace the `raise NotImplementedError` with your code")
    except Exception as error:  # the student's code failed: say how, in one line
        print(_one_line(f"✗ {title}: your code raised {type(error).__name__}: {error}"))
    else:
        print(_one_line(f"✓ {title}: {checked}"))


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call(function: Any, *args: Any) -> Any:
    """``function(*args)``, insisting that it is a function and that it returns something."""
    if not callable(function):
        raise Wrong(f"expected a function, got {type(function).__name__}")
    result = function(*args)
    if result is None:
        raise Wrong("your function returned None: write its body (is it still `...`?)")
    return result


def integer(low: int, high: int, generator: torch.Generator) -> int:
    """A random integer in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def uniform(low: float, high: float, generator: torch.Generator) -> float:
    """A random float in [low, high)."""
    return low + (high - low) * float(torch.rand((), generator=generator))


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value).detach().double()
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(f"{what} should be a tensor or a number, got {type(value).__name__}") from None


def _pairs(mine: Any, reference: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both answers as two flat vectors, entry by entry; ``Wrong`` if their shapes differ."""
    if isinstance(reference, Mapping):
        if not isinstance(mine, Mapping) or set(mine) != set(reference):
            got = sorted(mine) if isinstance(mine, Mapping) else type(mine).__name__
            raise Wrong(f"{what} should be a dict with keys {sorted(reference)}, got {got}")
        pairs = [(f"{what}[{k!r}]", mine[k], reference[k]) for k in reference]
    else:
        pairs = [(what, mine, reference)]
    flat_mine, flat_reference = [], []
    for label, a, b in pairs:
        a, b = _as_tensor(a, label), _as_tensor(b, "mamllib's answer")
        if a.shape != b.shape:
            raise Wrong(f"{label} has shape {tuple(a.shape)}, expected {tuple(b.shape)}")
        flat_mine.append(a.reshape(-1))
        flat_reference.append(b.reshape(-1))
    return torch.cat(flat_mine), torch.cat(flat_reference)


def is_close(mine: Any, reference: Any, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Whether two tensors (or dicts of them) agree: ‖mine − ref‖ ≤ atol·√n + rtol·‖ref‖."""
    try:
        a, b = _pairs(mine, reference, "the answer")
    except Wrong:
        return False
    return bool((a - b).norm() <= atol * max(1, b.numel()) ** 0.5 + rtol * b.norm())


def compare(
    mine: Any,
    reference: Any,
    what: str,
    *,
    known: Mapping[str, Any] = {},  # noqa: B006 - read only
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Raise ``Wrong`` unless ``mine`` matches ``reference`` (tensors, numbers or dicts of them).

    Args:
        what: names the answer in the hint (``"θ'"``).
        known: hint -> a plausible wrong answer; matching one gives that hint.
    """
    a, b = _pairs(mine, reference, what)
    if is_close(mine, reference, rtol, atol):
        return
    for hint, wrong in known.items():
        if is_close(mine, wrong, rtol, atol):
            raise Wrong(hint)
    error = ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
    raise Wrong(f"{what}: not what mamllib gives (relative error {error:.2g})")


def choice(answer: Any, right: str, hints: Mapping[str, str]) -> str:
    """Grade a multiple-choice answer: ``right`` is the letter; ``hints`` one per wrong letter."""
    letter = str(answer).strip().strip("()").lower()
    if letter == right:
        return f"({right}) is right"
    if letter in hints:
        raise Wrong(f"not ({letter}): {hints[letter]}")
    raise Wrong(f"answer with one letter: {', '.join(sorted([right, *hints]))}")


def check(name: str, mine, reference, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert that ``mine`` equals ``reference`` (tensors, or dicts of tensors) and say so.

    Raises:
        AssertionError: naming the exercise, the mismatching entry and the difference.
    """
    if isinstance(reference, Mapping):
        if not isinstance(mine, Mapping) or set(mine) != set(reference):
            got = sorted(mine) if isinstance(mine, Mapping) else type(mine).__name__
            raise AssertionError(
                f"{name}: expected a dict with keys {sorted(reference)}, got {got}"
            )
        pairs = [(f"{name}[{k!r}]", mine[k], reference[k]) for k in reference]
    else:
        pairs = [(name, mine, reference)]
    worst = 0.0
    for label, a, b in pairs:
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        if a.shape != b.shape:
            raise AssertionError(f"{label}: shape {tuple(a.shape)}, expected {tuple(b.shape)}")
        diff = (a.detach().double() - b.detach().double()).abs().max().item() if a.numel() else 0.0
        if not torch.allclose(a.detach().double(), b.detach().double(), rtol=rtol, atol=atol):
            raise AssertionError(f"{label}: differs from mamllib by up to {diff:.3g}")
        worst = max(worst, diff)
    print(f"✓ {name}: matches mamllib (max |difference| {worst:.1e})")
