"""The dashboards' skeleton: controls -> compute() -> View -> draw(), one update per hold."""

from dataclasses import dataclass

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from mamllib.viz.dashboard import Dashboard, diverged_text, group, status_table
from mamllib.viz.plots import color_for


@dataclass
class SumView:
    total: int


class SumDashboard(Dashboard):
    """The smallest dashboard: two sliders, their sum in the status and the title."""

    def __init__(self):
        super().__init__()
        self.a = W.IntSlider(value=1, min=0, max=10, description="a")
        self.b = W.IntSlider(value=2, min=0, max=10, description="b")
        self.computed = 0
        self.watch(self.a, self.b)
        self.update()

    def compute(self) -> SumView:
        self.computed += 1
        return SumView(self.a.value + self.b.value)

    def figure(self, view=None):
        view = view or self.view
        fig, ax = plt.subplots()
        ax.set_title(f"a + b = {view.total}")
        return fig

    def status_text(self, view: SumView) -> str:
        return f"sum {view.total}"

    def controls(self):
        return [group("inputs", self.a, self.b, note="(0 to 10)")]


@pytest.fixture
def board(figures):
    return SumDashboard()


def test_each_change_computes_draws_and_writes_the_status_once(board, figures):
    assert board.computed == 1 and board.view == SumView(3) and board.status.value == "sum 3"
    assert [f.axes[0].get_title() for f in figures] == ["a + b = 3"]
    board.a.value = 5
    assert board.computed == 2 and board.view == SumView(7) and board.status.value == "sum 7"
    assert figures[-1].axes[0].get_title() == "a + b = 7"
    assert not plt.get_fignums()  # each figure is closed once shown
    assert board.update() is board.view and board.computed == 3


def test_hold_changes_several_controls_with_one_update(board, figures):
    seen = []
    board.b.observe(lambda change: seen.append(change["new"]), names="value")
    with board.hold():
        board.a.value, board.b.value = 4, 6
        assert board.computed == 1 and board.view == SumView(3)  # nothing yet
        with board.hold():  # a nested hold leaves the update to the outer one
            board.b.value = 7
        assert board.computed == 1
    assert board.computed == 2 and board.view == SumView(11) and len(figures) == 2
    assert seen == [6, 7]  # other observers still see every change


def test_a_hold_that_raises_updates_nothing_and_lets_go(board):
    with pytest.raises(RuntimeError, match="stop"):
        with board.hold():
            board.a.value = 9
            raise RuntimeError("stop")
    assert board.computed == 1 and board.view == SumView(3)
    board.b.value = 0  # not held any more
    assert board.computed == 2 and board.view == SumView(9)


def test_widget_holds_the_controls_status_and_figure(board):
    box = board.widget()

    def children(widget):
        for child in getattr(widget, "children", ()):
            yield child
            yield from children(child)

    inside = list(children(box))
    assert {board.a, board.b, board.status, board.out} <= set(inside)
    titles = [w.value for w in inside if isinstance(w, W.HTML) and w is not board.status]
    assert titles == ["<b>inputs</b> (0 to 10)"]
    assert group("plain").children[0].value == "<b>plain</b>"


def test_status_table_colours_each_learner():
    html = status_table(["learner", "before", "after 1 step"],
                        {"MAML": ["1.000", "0.500"], "someone": ["2", "3"]})  # fmt: skip
    assert html == (
        "<table><tr><th>learner</th><th>before</th><th>after 1 step</th></tr>"
        f"<tr><td style='color:{color_for('MAML')}'>MAML</td><td>1.000</td><td>0.500</td></tr>"
        "<tr><td style='color:black'>someone</td><td>2</td><td>3</td></tr></table>"
    )
    assert status_table(["learner"], {}) == "<table><tr><th>learner</th></tr></table>"


def test_diverged_text_shows_a_finite_value_only():
    assert diverged_text(12345.6) == "diverged (12,346: α too large)"
    assert diverged_text(float("inf")) == diverged_text(float("nan")) == "diverged (α too large)"
    assert diverged_text() == "diverged (α too large)"
