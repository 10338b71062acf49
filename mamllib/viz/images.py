"""The Omniglot chapter's panels: tasks drawn as image mosaics (``plot_image_grid``,
``plot_episode``, ``plot_support``), a learner's predictions on a query set
(``plot_adaptation``) and one task's accuracy after each step (``plot_accuracy_steps``).

Each takes ``ax=None`` and returns the axes. The axes helper and the learners' colours are
``mamllib.viz.plots``'s, where the course's figures live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from torch import Tensor

from mamllib.batch import TaskBatch
from mamllib.i18n import tr, tr_label
from mamllib.viz.plots import axes_or_new, color_for, style_for

CORRECT, WRONG = "tab:green", "tab:red"
STRIP_BACKGROUND = 0.9  # grey where a class has probability 0, so the strip's extent shows


def class_colors(n: int) -> list[tuple[float, float, float]]:
    """One colour per class label of a task (the support frames and probability strips)."""
    cmap = plt.get_cmap("Dark2" if n <= 8 else "tab20")
    return [to_rgb(cmap(i % cmap.N)) for i in range(n)]


def _strokes(images) -> np.ndarray:
    """Float images in [0, 1] with strokes 1.0, ``[..., H, W]`` (a channel dim of 1 dropped)."""
    if isinstance(images, Tensor):
        images = images.detach().cpu()
        images = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        images = images.numpy()
    images = np.asarray(images, dtype=float)
    if images.ndim >= 3 and images.shape[-3] == 1:
        images = images[..., 0, :, :]
    return images


@dataclass
class _Mosaic:
    """Thumbnails laid out on a grid as one RGB image (one ``imshow`` draws them all)."""

    rows: int
    cols: int
    side: int
    band: int = 0  # pixels above each thumbnail for a label
    strip: int = 0  # pixels below each thumbnail for a probability strip
    pad: int = 2  # frame thickness
    gap: int = 3

    @property
    def box(self) -> int:
        return self.side + 2 * self.pad

    @property
    def cell_w(self) -> int:
        return self.box + self.gap

    @property
    def cell_h(self) -> int:
        return self.band + self.box + (self.strip + 1 if self.strip else 0) + self.gap

    def origin(self, r: int, c: int) -> tuple[int, int]:
        """Top-left pixel (y, x) of the frame of cell (r, c)."""
        return r * self.cell_h + self.band, c * self.cell_w

    def centre(self, r: int, c: int) -> tuple[float, float]:
        y, x = self.origin(r, c)
        return y + self.box / 2 - 0.5, x + self.box / 2 - 0.5

    def canvas(self) -> np.ndarray:
        return np.ones((self.rows * self.cell_h - self.gap, self.cols * self.cell_w - self.gap, 3))

    def put(self, canvas: np.ndarray, r: int, c: int, image: np.ndarray, frame=None) -> None:
        y, x = self.origin(r, c)
        if frame is not None:
            canvas[y : y + self.box, x : x + self.box] = to_rgb(frame)
        p = self.pad
        canvas[y + p : y + p + self.side, x + p : x + p + self.side] = (1.0 - image)[..., None]

    def put_strip(self, canvas: np.ndarray, r: int, c: int, probs: np.ndarray, colors) -> None:
        """Segment k, in class k's colour, is as saturated as the probability of class k."""
        y, x = self.origin(r, c)
        y += self.box + 1
        edges = np.linspace(0, self.box, len(probs) + 1).round().astype(int)
        for k, prob in enumerate(probs):
            tint = STRIP_BACKGROUND * (1.0 - prob) + prob * np.asarray(colors[k])
            canvas[y : y + self.strip, x + edges[k] : x + edges[k + 1]] = tint

    def show(self, canvas: np.ndarray, ax: Axes) -> None:
        ax.imshow(canvas, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)


def plot_image_grid(
    images,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Images ``[R, C, (1,) H, W]`` (strokes 1.0, or uint8 255) as a grid, dark on white."""
    images = _strokes(images)
    rows, cols, side = images.shape[0], images.shape[1], images.shape[-1]
    ax = axes_or_new(ax, (0.5 * cols + 1.5, 0.5 * rows + 0.6))
    mosaic = _Mosaic(rows, cols, side, pad=0, gap=2)
    canvas = mosaic.canvas()
    for r in range(rows):
        for c in range(cols):
            mosaic.put(canvas, r, c, images[r, c])
    mosaic.show(canvas, ax)
    if row_labels is not None:
        ax.set_yticks([mosaic.centre(r, 0)[0] for r in range(rows)], list(row_labels))
        ax.tick_params(axis="y", length=0)
    if col_labels is not None:
        ax.set_xticks([mosaic.centre(0, c)[1] for c in range(cols)], list(col_labels))
        ax.tick_params(axis="x", length=0)
    if title:
        ax.set_title(title)
    return ax


def _by_class(x: Tensor, y: Tensor, n_way: int) -> list[list[int]]:
    """Indices of the examples of each label, in order."""
    return [(y == k).nonzero().flatten().tolist() for k in range(n_way)]


def plot_episode(
    batch: TaskBatch,
    task_index: int = 0,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One task of a ``TaskBatch``: a row per class, its support then its query images.

    Support frames are in the class's colour; a gap separates the query images.
    """
    xs, ys = batch.x_support[task_index], batch.y_support[task_index]
    xq, yq = batch.x_query[task_index], batch.y_query[task_index]
    n_way = int(ys.max()) + 1
    support, query = _by_class(xs, ys, n_way), _by_class(xq, yq, n_way)
    k, q = max(map(len, support)), max(map(len, query))
    images_s, images_q = _strokes(xs), _strokes(xq)
    colors = class_colors(n_way)
    ax = axes_or_new(ax, (0.55 * (k + q + 1) + 2, 0.6 * n_way + 0.8))
    mosaic = _Mosaic(n_way, k + 1 + q, images_s.shape[-1], pad=2, gap=3)
    canvas = mosaic.canvas()
    for r in range(n_way):
        for c, i in enumerate(support[r]):
            mosaic.put(canvas, r, c, images_s[i], frame=colors[r])
        for c, i in enumerate(query[r]):
            mosaic.put(canvas, r, k + 1 + c, images_q[i], frame="0.85")
    mosaic.show(canvas, ax)
    names = class_names or [tr("class {r}", r=r) for r in range(n_way)]
    ax.set_yticks([mosaic.centre(r, 0)[0] for r in range(n_way)], list(names))
    for r, label in enumerate(ax.get_yticklabels()):
        label.set_color(colors[r])
    ax.tick_params(length=0)

    def middle(first: int, last: int) -> float:
        return (mosaic.centre(0, first)[1] + mosaic.centre(0, last)[1]) / 2

    ax.set_xticks([middle(0, k - 1), middle(k + 1, k + q)],
                  [tr("support (K = {k})", k=k), tr("query ({q} per class)", q=q)])  # fmt: skip
    ax.xaxis.set_ticks_position("top")
    return ax


def plot_support(
    x_support: Tensor,
    y_support: Tensor,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The support images of one task, one row per class, framed in the class colours
    (``title`` default: "support set", translated)."""
    n_way = int(y_support.max()) + 1
    support = _by_class(x_support, y_support, n_way)
    k = max(map(len, support))
    images = _strokes(x_support)
    colors = class_colors(n_way)
    ax = axes_or_new(ax, (0.6 * k + 1.5, 0.6 * n_way + 0.6))
    mosaic = _Mosaic(n_way, k, images.shape[-1], pad=2, gap=4)
    canvas = mosaic.canvas()
    for r in range(n_way):
        for c, i in enumerate(support[r]):
            mosaic.put(canvas, r, c, images[i], frame=colors[r])
    mosaic.show(canvas, ax)
    names = class_names or [str(r) for r in range(n_way)]
    ax.set_yticks([mosaic.centre(r, 0)[0] for r in range(n_way)], list(names), fontsize=9)
    for r, label in enumerate(ax.get_yticklabels()):
        label.set_color(colors[r])
    ax.tick_params(length=0)
    ax.set_title(tr("support set") if title is None else title, fontsize=10)
    return ax


def plot_adaptation(
    x_query: Tensor,
    y_query: Tensor,
    probabilities: Tensor,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A learner's predictions on one task's query set: one row per true class.

    Each query image is framed green when predicted right and red when wrong, with the
    predicted label above it and, below it, a strip of the per-class probabilities
    (segment k, in class k's colour, is as saturated as p(k)).

    Args:
        x_query: ``[N·Q, 1, H, W]``; y_query: ``[N·Q]`` true labels.
        probabilities: ``[N·Q, N]`` softmax outputs (NaN where adaptation diverged).
    """
    probs = probabilities.detach().cpu().double()
    n_way = probs.shape[-1]
    rows = _by_class(x_query, y_query, n_way)
    q = max(map(len, rows))
    images = _strokes(x_query)
    colors = class_colors(n_way)
    ax = axes_or_new(ax, (0.55 * q + 1, 0.75 * n_way + 0.6))
    mosaic = _Mosaic(n_way, q, images.shape[-1], band=9, strip=5, pad=2, gap=3)
    canvas = mosaic.canvas()
    finite = torch.isfinite(probs).all(-1)
    predicted = probs.nan_to_num(-1.0).argmax(-1)
    for r in range(n_way):
        for c, i in enumerate(rows[r]):
            ok = bool(finite[i]) and int(predicted[i]) == r
            mosaic.put(canvas, r, c, images[i], frame=CORRECT if ok else WRONG)
            if finite[i]:
                mosaic.put_strip(canvas, r, c, probs[i].numpy(), colors)
    mosaic.show(canvas, ax)
    for r in range(n_way):
        for c, i in enumerate(rows[r]):
            y, x = mosaic.origin(r, c)
            text = str(int(predicted[i])) if finite[i] else "?"
            ok = bool(finite[i]) and int(predicted[i]) == r
            ax.text(x + mosaic.box / 2, y - 1, text, ha="center", va="bottom", fontsize=7,
                    fontweight="bold", color=CORRECT if ok else WRONG)  # fmt: skip
    ax.set_yticks([mosaic.centre(r, 0)[0] for r in range(n_way)], [str(r) for r in range(n_way)])
    for r, label in enumerate(ax.get_yticklabels()):
        label.set_color(colors[r])
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_accuracy_steps(
    accuracy: Mapping[str, Sequence[float]],
    marked_step: int | None = None,
    chance: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One task's query accuracy (fractions) after 0..S steps, one line per learner.

    The baselines are dashed with hollow markers over MAML's line, so equal curves stay
    visible.
    """
    ax = axes_or_new(ax)
    for label, values in accuracy.items():
        maml = label.startswith("MAML")
        if maml:
            ax.plot(range(len(values)), [100 * v for v in values], "o-", ms=5, lw=2.2,
                    color=color_for(label), zorder=3, label=tr_label(label))  # fmt: skip
        else:
            ax.plot(range(len(values)), [100 * v for v in values], "--", ms=7, lw=1.3,
                    marker=style_for(label)["marker"], mfc="none", mew=1.5,
                    color=color_for(label), zorder=4, label=tr_label(label))  # fmt: skip
    if chance is not None:
        ax.axhline(100 * chance, color="0.5", ls=":", lw=1, label=tr("chance"))
    if marked_step is not None:
        ax.axvline(marked_step, color="0.3", lw=1, alpha=0.4)
    steps = max(len(v) for v in accuracy.values()) - 1
    ax.set(xlabel=tr("number of gradient steps"), ylabel=tr("query accuracy (%)"),
           ylim=(0, 104), xlim=(-0.3, max(steps, 1) + 0.3))  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax
