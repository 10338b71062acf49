"""Self-checking exercises: compare your answer with mamllib's (micrograd's ``cmp`` style)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


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
