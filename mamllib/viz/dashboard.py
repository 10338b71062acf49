"""The skeleton every chapter's dashboard is built on: controls -> compute() -> View -> draw().

A dashboard owns its controls (ipywidgets), a status line or table (``status``) and an
output area for its figure (``out``). When a watched control changes, ``update()`` calls
``compute()``, which adapts the learners and returns a plain dataclass, the View (no
drawing: tests and exercises read it), then ``draw(view)``, which shows ``figure(view)``
and writes ``status_text(view)``. ``hold()`` changes several controls with one update.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

from mamllib.i18n import tr, tr_label
from mamllib.viz.plots import color_for

# The label of a first-order MAML learner: the order toggle of the sinusoid and Omniglot
# dashboards shows it instead of "MAML".
FIRST_ORDER = "MAML (first-order)"


def diverged_text(value: float = math.nan) -> str:
    """How every dashboard says that SGD with a fixed α diverged; ``value``, the metric it
    reached, is shown when it is finite (an MSE in the thousands)."""
    reached = f"{value:,.0f}: " if math.isfinite(value) else ""
    return tr("diverged ({reached}α too large)", reached=reached)


def status_table(header: Sequence[str], rows: Mapping[str, Sequence[str]]) -> str:
    """An HTML table of one row per learner, its label in the learner's colour.

    Args:
        header: the column titles, the label column's first.
        rows: label -> the row's cells after the label (``len(header) - 1`` strings); the
            label picks the colour, and is shown in the reader's language (``tr_label``).

    Returns:
        ``<table>`` HTML for an ``ipywidgets.HTML``.
    """
    head = "".join(f"<th>{title}</th>" for title in header)
    body = "".join(
        f"<tr><td style='color:{color_for(label) or 'black'}'>{tr_label(label)}</td>"
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "</tr>"
        for label, cells in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def group(title: str, *controls: W.Widget, note: str = "") -> W.VBox:
    """A column of controls under a bold title (and a plain ``note`` after it)."""
    return W.VBox([W.HTML(f"<b>{title}</b>" + (f" {note}" if note else "")), *controls])


class Dashboard:
    """Controls -> ``compute()`` -> View -> ``draw(view)``; ``widget()`` lays them out.

    A subclass creates its controls, calls ``Dashboard.__init__`` first, ``watch``es the
    controls that change what is computed, and ends its constructor with ``update()``. It
    implements ``compute``, ``figure``, ``status_text`` and ``controls``.

    Attributes:
        view: what the last ``update()`` computed (``None`` before the first).
        status: the HTML beside the controls (``status_text(view)``).
        out: the output area the figure is shown in.
    """

    def __init__(self) -> None:
        self.view: Any = None
        self.status = W.HTML()
        self.out = W.Output()
        self._holding = False

    # ----------------------------------------------------------------- what a chapter writes

    def compute(self) -> Any:
        """Adapt the learners for the current controls; no drawing. Returns the View."""
        raise NotImplementedError

    def figure(self, view: Any = None) -> Figure:
        """The dashboard's figure for ``view`` (default: the current one)."""
        raise NotImplementedError

    def status_text(self, view: Any) -> str:
        """The status HTML for ``view``."""
        raise NotImplementedError

    def controls(self) -> list[W.Widget]:
        """The columns of controls, left to right (``group`` makes one)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the skeleton

    def watch(self, *controls: W.Widget) -> None:
        """Update whenever one of ``controls`` changes its value."""
        for control in controls:
            control.observe(lambda _: self.update(), names="value")

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls with one update at the end (none if the block raises).

        Only this dashboard's updates wait: other observers of the controls (links, a
        student's callbacks) stay attached and see every change.
        """
        if self._holding:  # inside another hold: that one updates
            yield
            return
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self.update()

    def update(self) -> Any:
        """Recompute and redraw (not while held). Returns the View."""
        if self._holding:
            return self.view
        self.view = self.compute()
        self.draw(self.view)
        return self.view

    def draw(self, view: Any) -> None:
        """Show ``figure(view)`` in the output area and write the status.

        In a notebook a drawing error is shown in the output area (ipywidgets' ``Output``
        catches it there), and the status is still written.
        """
        with self.out:
            self.out.clear_output(wait=True)  # no flicker: the old figure stays until the new
            fig = self.figure(view)
            plt.show()
            plt.close(fig)  # outside the inline backend every figure would stay open
        self.status.value = self.status_text(view)

    def widget(self) -> W.Widget:
        """The controls and the status in a row, the figure below."""
        return W.VBox([W.HBox([*self.controls(), self.status]), self.out])

    def show(self) -> None:
        """Display the dashboard (in a notebook cell)."""
        display(self.widget())
