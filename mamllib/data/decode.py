"""Decoding many small PNGs, from a zip or a folder, into square grey images.

Threads, not processes: Pillow releases the GIL while it decodes and resizes, and a
thread pool needs nothing from its caller. A process pool does: with "spawn" it
re-imports the caller's main script (a plain script without an ``if __name__ ==
"__main__"`` guard crashes), and "fork" can hang a Jupyter kernel whose threads held a
lock at the moment of the fork.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from PIL import Image

_CHUNK = 1024  # images per job: few enough jobs to start, enough to balance the threads


class PngSet(NamedTuple):
    """PNG files to decode, in order, from one zip or one folder."""

    path: Path  # a zip, or a folder whose parent the entries are relative to
    is_zip: bool
    entries: list[str]  # paths inside the zip, or relative to ``path.parent``


def decode_pngs(sets: list[PngSet], image_size: int, num_workers: int | None = None) -> bytes:
    """Decode every PNG to ``image_size``² 8-bit grey, resized with Lanczos.

    A 1-bit PNG is converted to 8-bit grey before resizing, so that the filter really
    anti-aliases (Pillow resizes 1-bit images with nearest neighbour whatever filter
    is asked for).

    Args:
        sets: the PNGs, in the order their pixels are wanted.
        image_size: side of the output images.
        num_workers: decoding threads; default one per available CPU (at most 8).

    Returns:
        The pixels, ``image_size``² bytes per PNG, in order (0 = black).

    Raises:
        ValueError: a PNG cannot be read or decoded (the message names it).
    """
    jobs = [
        (png_set.path, png_set.is_zip, png_set.entries[start : start + _CHUNK])
        for png_set in sets
        for start in range(0, len(png_set.entries), _CHUNK)
    ]
    workers = min(num_workers or default_workers(), len(jobs))
    if workers <= 1:
        return b"".join(decode_chunk(*job, image_size) for job in jobs)
    with ThreadPoolExecutor(workers, thread_name_prefix="mamllib-decode") as pool:
        return b"".join(pool.map(lambda job: decode_chunk(*job, image_size), jobs))


def default_workers() -> int:
    """Available CPUs (this process's affinity where the OS tells), at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, 8))


def decode_chunk(path: Path, is_zip: bool, entries: list[str], image_size: int) -> bytes:
    """Decode some PNGs of one zip or folder to ``image_size``² grey bytes each."""
    pixels = bytearray()
    archive = zipfile.ZipFile(path) if is_zip else None  # one per job: threads share none
    try:
        for entry in entries:
            try:
                raw = archive.read(entry) if archive else (path.parent / entry).read_bytes()
                with Image.open(io.BytesIO(raw)) as image:
                    grey = image.convert("L")
                small = grey.resize((image_size, image_size), Image.Resampling.LANCZOS)
            except (
                OSError,
                EOFError,
                SyntaxError,
                ValueError,
                zipfile.BadZipFile,
                zlib.error,
            ) as error:
                raise ValueError(f"{path}: cannot decode {entry} ({error})") from None
            pixels += small.tobytes()
    finally:
        if archive:
            archive.close()
    return bytes(pixels)
