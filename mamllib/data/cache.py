"""A decoded data set kept as one torch file, tied to the files it was made from.

The key (a format version, the decoding's settings, each source file's size and
time) is stored with the tensors: a cache made from other files or other settings is
rebuilt, and so is one that cannot be read. Writes are atomic, so a crash or a second
process never leaves half a file under the final name.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")


def read_cache(path: Path, key: dict, build: Callable[[dict], T], name: str) -> T | None:
    """What ``build`` makes of the cache at ``path``, if it was made for ``key``.

    Args:
        path: the cache file.
        key: what the cache must have been made from.
        build: turns the stored dict into the data; may raise to reject it.
        name: the data set, for the warning.

    Returns:
        The data, or None when there is no cache, it was made for another key, or it
        cannot be read or built from (then with a warning: it is rebuilt, never trusted).
    """
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["key"] != key:
            return None  # made from another copy of the data or with other settings
        return build(blob)
    except Exception as error:
        warnings.warn(
            f"ignoring unreadable {name} cache {path} ({error!r}); rebuilding it", stacklevel=3
        )
        return None


def write_cache(path: Path, key: dict, contents: dict, name: str) -> None:
    """Save ``contents`` and ``key`` to ``path`` atomically (a temp file, then a rename).

    A cache that cannot be written (a read-only folder, a full disk) only warns: the
    data is in memory already, the next load decodes again.
    """
    blob = {"key": key, **contents}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(blob, file)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as error:
        warnings.warn(f"could not write the {name} cache {path} ({error})", stacklevel=3)
