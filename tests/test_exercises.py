"""mamllib.exercises.check: a self-check passes on the same answer and names what differs."""

from __future__ import annotations

import pytest
import torch

from mamllib.exercises import check


def test_check_passes_and_says_so(capsys):
    check("one step", {"w": torch.ones(2)}, {"w": torch.ones(2) + 1e-9})
    assert capsys.readouterr().out.startswith("✓ one step: matches mamllib")


@pytest.mark.parametrize(
    ("mine", "reference", "message"),
    [
        (
            {"w": torch.ones(2)},
            {"w": torch.zeros(2)},
            r"one step\['w'\]: differs from mamllib by up to 1",
        ),
        ({"w": torch.ones(2)}, {"v": torch.ones(2)}, r"expected a dict with keys \['v'\]"),
        (torch.ones(3), torch.ones(2), r"shape \(3,\), expected \(2,\)"),
    ],
)
def test_check_names_what_differs(mine, reference, message):
    with pytest.raises(AssertionError, match=message):
        check("one step", mine, reference)
