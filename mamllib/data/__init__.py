"""Finding, verifying, decoding, caching and downloading data sets.

Every loader looks in one data location, resolved when it is called:
``set_data_dir(path)`` (for this process, e.g. a notebook's kernel), else
``$MAMLLIB_DATA``, else ``~/.cache/mamllib`` (``$XDG_CACHE_HOME/mamllib`` when set;
``%LOCALAPPDATA%\\mamllib`` on Windows). Omniglot lives in ``data_dir() / "omniglot"``.
Decoded tensors are cached apart, in ``cache_dir()`` (``$MAMLLIB_CACHE``, else the same
default), so the data location may be read-only.

From a shell, ``python -m mamllib.data omniglot`` fetches, checks and decodes Omniglot.
"""

from mamllib.data.download import download_omniglot
from mamllib.data.location import DataNotFoundError, cache_dir, data_dir, set_data_dir
from mamllib.data.omniglot import OmniglotData, find_omniglot, load_omniglot

__all__ = [
    "DataNotFoundError",
    "OmniglotData",
    "cache_dir",
    "data_dir",
    "download_omniglot",
    "find_omniglot",
    "load_omniglot",
    "set_data_dir",
]
