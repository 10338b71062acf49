"""What the figure tests look at: the labelled curves of an axes, how a line looks, and
whether a legend covers data."""

from matplotlib.axes import Axes
from matplotlib.lines import Line2D


def labelled_curves(ax: Axes) -> dict[str, Line2D]:
    """label -> Line2D of the labelled curves of ``ax`` (not the markers of the paper)."""
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def look(line: Line2D) -> tuple[str, str, str]:
    """(colour, line style, marker): what tells one curve from another."""
    return (str(line.get_color()), str(line.get_linestyle()), str(line.get_marker()))


def overlaps(fig, artist, ax: Axes) -> bool:
    """Whether ``artist``'s box overlaps the data area of ``ax`` (in display units)."""
    fig.canvas.draw()
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return box.overlaps(ax.get_window_extent())
