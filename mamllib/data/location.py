"""Where data sets live and where decoded copies are cached, resolved at call time.

One data location serves every loader: ``set_data_dir(path)`` for this process, else
``$MAMLLIB_DATA``, else a ``mamllib`` folder in the user's cache directory. Decoded
tensors go to a separate cache folder (``$MAMLLIB_CACHE``, else the same default), so
the data location may be read-only, e.g. a shared copy on a lab machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

DATA_ENV = "MAMLLIB_DATA"
CACHE_ENV = "MAMLLIB_CACHE"

_chosen: Path | None = None  # set_data_dir's choice, for this process only


class DataNotFoundError(FileNotFoundError):
    """A data set is missing, or could not be fetched; the message says what to run.

    The message is one line, and IPython/Jupyter show only that line instead of a
    traceback: the fix is in the message, not in the library's call stack.
    """

    __module__ = "mamllib.data"  # the name it is imported by, as tracebacks print it

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def default_dir() -> Path:
    """The user's cache folder for mamllib, the default data and cache location.

    ``%LOCALAPPDATA%\\mamllib`` on Windows, else ``$XDG_CACHE_HOME/mamllib`` (when set
    to an absolute path, as the XDG spec asks), else ``~/.cache/mamllib``.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(base):
            base = str(Path.home() / ".cache")
    return Path(base) / "mamllib"


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Choose the data location for this process (a notebook's kernel, a script).

    It wins over ``$MAMLLIB_DATA``. Processes started from here do not inherit it;
    set ``$MAMLLIB_DATA`` for those.

    Args:
        path: the folder; ``None`` goes back to ``$MAMLLIB_DATA`` or the default.
    """
    global _chosen
    _chosen = None if path is None else Path(path).expanduser().absolute()


class Location(NamedTuple):
    """A data location and where that choice came from."""

    path: Path
    kind: str  # "argument", "set_data_dir", "environment" or "default"

    @property
    def origin(self) -> str:
        """Where the choice came from, in words, for messages."""
        return _ORIGINS[self.kind]


_ORIGINS = {
    "argument": "the folder given",
    "set_data_dir": "set by set_data_dir()",
    "environment": f"from ${DATA_ENV}",
    "default": f"the default data location; ${DATA_ENV} is not set",
}


def locate(root: str | os.PathLike | None = None) -> Location:
    """The data location to use: ``root``, else ``set_data_dir``'s folder, else
    ``$MAMLLIB_DATA``, else ``default_dir()``.

    Args:
        root: a folder given explicitly, e.g. a function's ``root=`` argument.
    """
    if root is not None:
        return Location(Path(root).expanduser(), "argument")
    if _chosen is not None:
        return Location(_chosen, "set_data_dir")
    if os.environ.get(DATA_ENV):
        return Location(Path(os.environ[DATA_ENV]).expanduser(), "environment")
    return Location(default_dir(), "default")


def data_dir() -> Path:
    """The data location: ``set_data_dir``'s folder, else ``$MAMLLIB_DATA``, else
    ``default_dir()`` (``~/.cache/mamllib`` on Linux). Data set ``X`` lives in
    ``data_dir() / X``."""
    return locate().path


def cache_dir() -> Path:
    """Where decoded tensors are cached: ``$MAMLLIB_CACHE``, else ``default_dir()``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return default_dir()
