"""Fetching Omniglot's two original zips, checksummed, into the data location.

A file is written to ``<name>.part`` and renamed only once its md5 matched, so a bad or
interrupted download never leaves anything the loader would take for data.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mamllib.data.location import DATA_ENV, DataNotFoundError, data_dir, locate
from mamllib.progress_bar import progress as progress_bar

OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
URL_ENV = "MAMLLIB_OMNIGLOT_URL"  # a mirror that serves the same two files
# md5 of the ORIGINAL zips (torchvision.datasets.Omniglot checks the same ones). Copies
# repacked elsewhere (the course's shared one) have other md5s: only downloads are checked.
ORIGINAL_MD5 = {
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
}
TIMEOUT_S = 60  # per connection attempt and per read: a stalled server fails, never hangs
_BLOCK = 1 << 16


def fetch_command(root: str | os.PathLike | None = None) -> str:
    """The shell command that fetches Omniglot to where ``download_omniglot(root)`` would.

    Args:
        root: the folder given to the caller, if any.

    Returns:
        ``python -m mamllib.data omniglot``, with ``--dir`` when a new shell would not
        find the same place by itself (an explicit folder, or ``set_data_dir``).
    """
    location = locate(root)
    if location.kind in ("environment", "default"):
        return "python -m mamllib.data omniglot"
    folder = location.path if location.kind == "argument" else location.path / "omniglot"
    return f"python -m mamllib.data omniglot --dir {folder}"


def download_omniglot(
    root: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    checksums: dict[str, str] | None = None,
    progress: bool = True,
) -> Path:
    """Fetch Omniglot's ``images_background.zip`` and ``images_evaluation.zip``.

    Zips already in the folder are kept, not fetched again. Each new one is checked
    against its md5 before it takes its final name.

    Args:
        root: the folder the zips go into; default ``data_dir() / "omniglot"``.
        base_url: where the files are; default ``$MAMLLIB_OMNIGLOT_URL``, else
            github.com/brendenlake/omniglot's ``python/`` folder.
        checksums: md5 per file name; default the original zips' (a mirror that
            serves other bytes, or a test, passes its own).
        progress: show a progress bar per file.

    Returns:
        The folder, ready for ``load_omniglot``.

    Raises:
        DataNotFoundError: a network or HTTP error, or a checksum mismatch; one line
            naming the command to retry with and ``$MAMLLIB_DATA``.
    """
    folder = data_dir() / "omniglot" if root is None else Path(root).expanduser()
    base = base_url or os.environ.get(URL_ENV) or OMNIGLOT_URL
    md5s = ORIGINAL_MD5 if checksums is None else checksums
    missing = [name for name in md5s if not (folder / name).is_file()]
    if not missing:
        return folder
    source = "github.com/brendenlake/omniglot" if base == OMNIGLOT_URL else base
    size = ", about 16 MB," if len(missing) == len(ORIGINAL_MD5) else ""
    print(f"Fetching Omniglot: {' and '.join(missing)}{size} from {source} into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    retry = _retry_advice(root, base_url)
    for name in missing:
        _fetch(urllib.parse.urljoin(base.rstrip("/") + "/", name), folder / name, md5s[name],
               retry=retry, progress=progress)  # fmt: skip
    return folder


def _retry_advice(root: str | os.PathLike | None, base_url: str | None) -> str:
    command = fetch_command(root) + (f" --url {base_url}" if base_url else "")
    return (
        f"Retry with `{command}`, or copy images_background.zip and images_evaluation.zip "
        f"from a machine that has them into a folder and set {DATA_ENV} to it."
    )


def _fetch(url: str, path: Path, md5: str, *, retry: str, progress: bool) -> None:
    """Download ``url`` to ``path`` through ``<path>.part``, renamed once its md5 matched.

    Hand-written rather than torchvision's ``download_url``, which opens connections
    without a timeout (a stalled server hangs a notebook forever), retries a failed https
    download over plain http, and writes straight to the final name.

    Raises:
        DataNotFoundError: the download failed or its md5 is not ``md5``.
    """
    part = path.with_name(path.name + ".part")
    try:
        digest = _stream(url, part, progress)
    except BaseException as error:
        part.unlink(missing_ok=True)
        if isinstance(error, (OSError, http.client.HTTPException)):  # URLError is an OSError
            raise DataNotFoundError(f"Could not fetch {url} ({_reason(error)}). {retry}") from None
        raise
    if digest != md5:
        part.unlink()
        raise DataNotFoundError(
            f"{url} has md5 {digest}, expected {md5}: the download is corrupt or the mirror "
            f"serves other files. {retry}"
        )
    os.replace(part, path)


def _stream(url: str, part: Path, progress: bool) -> str:
    """Copy ``url`` into ``part`` (replacing a stale one) with a progress bar; its md5."""
    digest = hashlib.md5()
    with (
        urllib.request.urlopen(url, timeout=TIMEOUT_S) as response,
        open(part, "wb") as file,
        progress_bar(total=response.length, desc=part.name.removesuffix(".part"), unit="B",
                     unit_scale=True, enabled=progress) as bar,
    ):  # fmt: skip
        while block := response.read(_BLOCK):
            file.write(block)
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
