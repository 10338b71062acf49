"""mamllib.progress_bar: one tqdm configuration; outside a notebook the bar goes to stderr."""

from __future__ import annotations

from mamllib.progress_bar import in_notebook, progress


def test_outside_a_notebook_the_bar_goes_to_stderr(capsys):
    assert not in_notebook()
    assert list(progress(range(3), desc="tasks")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "tasks: 100%" in captured.err and "3/3" in captured.err


def test_a_disabled_bar_prints_nothing(capsys):
    assert sum(progress(range(4), enabled=False)) == 6
    assert capsys.readouterr() == ("", "")
