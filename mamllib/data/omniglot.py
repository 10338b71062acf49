"""Omniglot: finding, checking, decoding and caching the two zips of Lake et al.

Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015) has 1,623 handwritten characters from
50 alphabets, each drawn once by 20 different people: ``images_background.zip`` (30
alphabets, 964 characters) and ``images_evaluation.zip`` (20 alphabets, 659 characters),
105×105 1-bit PNGs. ``load_omniglot()`` finds them in the data location (see
``mamllib.data.location``), checks that the set is complete, decodes the 32,460 drawings
once and caches the result as one uint8 tensor.

Preprocessing: each 105×105 drawing is resized to 28×28 with a Lanczos filter (after
converting the 1-bit PNG to 8-bit grey, so the filter really anti-aliases; Pillow
resizes 1-bit images with nearest neighbour whatever filter is asked for, which is
what the paper's resize script got) and inverted so strokes are 1.0 and the
background 0.0.

References:
    Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through
    probabilistic program induction", Science 2015.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mamllib.checks import check_int
from mamllib.data.cache import read_cache, write_cache
from mamllib.data.decode import PngSet, decode_pngs
from mamllib.data.download import download_omniglot, fetch_command
from mamllib.data.location import DATA_ENV, DataNotFoundError, Location, locate
from mamllib.data.location import cache_dir as default_cache_dir

DRAWINGS = 20
# Characters per alphabet, background set first: what a complete copy must contain.
ALPHABETS = {
    "images_background": {
        "Alphabet_of_the_Magi": 20,
        "Anglo-Saxon_Futhorc": 29,
        "Arcadian": 26,
        "Armenian": 41,
        "Asomtavruli_(Georgian)": 40,
        "Balinese": 24,
        "Bengali": 46,
        "Blackfoot_(Canadian_Aboriginal_Syllabics)": 14,
        "Braille": 26,
        "Burmese_(Myanmar)": 34,
        "Cyrillic": 33,
        "Early_Aramaic": 22,
        "Futurama": 26,
        "Grantha": 43,
        "Greek": 24,
        "Gujarati": 48,
        "Hebrew": 22,
        "Inuktitut_(Canadian_Aboriginal_Syllabics)": 16,
        "Japanese_(hiragana)": 52,
        "Japanese_(katakana)": 47,
        "Korean": 40,
        "Latin": 26,
        "Malay_(Jawi_-_Arabic)": 40,
        "Mkhedruli_(Georgian)": 41,
        "N_Ko": 33,
        "Ojibwe_(Canadian_Aboriginal_Syllabics)": 14,
        "Sanskrit": 42,
        "Syriac_(Estrangelo)": 23,
        "Tagalog": 17,
        "Tifinagh": 55,
    },
    "images_evaluation": {
        "Angelic": 20,
        "Atemayar_Qelisayer": 26,
        "Atlantean": 26,
        "Aurek-Besh": 26,
        "Avesta": 26,
        "Ge_ez": 26,
        "Glagolitic": 45,
        "Gurmukhi": 45,
        "Kannada": 41,
        "Keble": 26,
        "Malayalam": 47,
        "Manipuri": 40,
        "Mongolian": 30,
        "Old_Church_Slavonic_(Cyrillic)": 45,
        "Oriya": 46,
        "Sylheti": 28,
        "Syriac_(Serto)": 23,
        "Tengwar": 25,
        "Tibetan": 42,
        "ULOG": 26,
    },
}
NUM_CHARACTERS = sum(sum(a.values()) for a in ALPHABETS.values())  # 1,623
# Bump when the decoded tensor changes meaning, so old caches are rebuilt.
_CACHE_FORMAT = 1


# --------------------------------------------------------------------------- locating


def _missing_sets(folder: Path) -> list[str]:
    return [s for s in ALPHABETS if not ((folder / f"{s}.zip").is_file() or (folder / s).is_dir())]


def find_omniglot(root: str | os.PathLike | None = None) -> Path:
    """The folder holding Omniglot's ``images_background`` and ``images_evaluation``.

    Looks in the data location's ``omniglot/`` folder and in the data location itself.
    Each set may be the original zip (``images_background.zip``) or its extracted folder
    (``images_background/<Alphabet>/characterNN/XXXX_YY.png``).

    Args:
        root: the folder to look in; default the data location (``set_data_dir``, else
            ``$MAMLLIB_DATA``, else ``~/.cache/mamllib``).

    Returns:
        The folder that holds both sets.

    Raises:
        DataNotFoundError: neither folder holds both sets; one line that says where it
            looked, where that place came from, and what to run.
    """
    location = locate(root)
    candidates = [location.path, location.path / "omniglot"]
    if location.kind != "argument":
        candidates.reverse()  # the documented place first; a folder given is taken as is
    for folder in candidates:
        if not _missing_sets(folder):
            return folder
    raise DataNotFoundError(_not_found(location, candidates, root))


def _not_found(location: Location, candidates: list[Path], root: str | os.PathLike | None) -> str:
    """One line: where it looked, why there, what to run."""
    places = candidates if location.kind == "argument" else candidates[:1]
    partial = "".join(
        f"; {folder} holds only {' and '.join(s for s in ALPHABETS if s not in missing)}"
        for folder in candidates
        if len(missing := _missing_sets(folder)) < len(ALPHABETS)
    )
    return (
        f"Omniglot is not in {' or '.join(map(str, places))} ({location.origin}{partial}). "
        f"Get it with `{fetch_command(root)}` (the two original zips, about 16 MB, from "
        f"github.com/brendenlake/omniglot) or load_omniglot(download=True), or set {DATA_ENV} "
        f"to a folder that holds omniglot/images_background.zip and images_evaluation.zip."
    )


# --------------------------------------------------------------------------- loading


@dataclass
class OmniglotData:
    """All of Omniglot as one tensor, characters in a stable order.

    Order: the background set first, then the evaluation set; within a set alphabets
    sorted by name, characters sorted within an alphabet, drawings sorted by file name.

    Attributes:
        images: uint8 ``[C, 20, H, W]``, 0 = background, 255 = stroke.
        alphabets: the alphabet of each character, ``C`` names.
        characters: each character's folder name (``character01``, ...), ``C`` names.
        background: bool ``[C]``, True for Lake's background set.
    """

    images: Tensor
    alphabets: list[str]
    characters: list[str]
    background: Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 [C, {DRAWINGS}, H, W], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        count = self.images.shape[0]
        if self.images.shape[1] != DRAWINGS:
            raise ValueError(f"each character needs {DRAWINGS} drawings, got {self.images.shape}")
        lengths = {
            "alphabets": len(self.alphabets),
            "characters": len(self.characters),
            "background": self.background.numel(),
        }
        if set(lengths.values()) != {count}:
            raise ValueError(f"metadata lengths {lengths} disagree with {count} characters")
        if self.background.dtype != torch.bool:
            raise ValueError(f"background must be a bool tensor, got {self.background.dtype}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def float_images(self, device: torch.device | str = "cpu") -> Tensor:
        """float32 ``[C, 20, 1, H, W]`` in [0, 1] on ``device`` (strokes 1.0)."""
        return self.images.to(device).unsqueeze(2).float().div_(255.0)


@dataclass(frozen=True)
class _Source:
    """One of the two sets: its zip, or its extracted folder."""

    name: str  # images_background or images_evaluation
    path: Path
    is_zip: bool

    def key(self) -> list:
        """What the cache remembers about this source to notice a changed copy."""
        if self.is_zip:
            stat = self.path.stat()
            return [self.name, "zip", stat.st_size, stat.st_mtime_ns]
        return [self.name, "folder", sum(1 for _ in self.path.rglob("*.png"))]


def _sources(root: Path) -> list[_Source]:
    sources = []
    for name in ALPHABETS:
        archive = root / f"{name}.zip"
        if archive.is_file():
            sources.append(_Source(name, archive, True))
        else:
            sources.append(_Source(name, root / name, False))
    return sources


def _entries(source: _Source) -> list[str]:
    """Relative paths ``<set>/<Alphabet>/<character>/<drawing>.png`` in a source."""
    if not source.is_zip:
        base = source.path.parent
        return [p.relative_to(base).as_posix() for p in source.path.rglob("*.png")]
    try:
        with zipfile.ZipFile(source.path) as archive:
            return [n for n in archive.namelist() if n.endswith(".png")]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(
            f"{source.path} is not a readable zip ({error}); it may be truncated or "
            f"corrupt. Replace it with a good copy (delete it; then `python -m mamllib.data omniglot` fetches the original)."
        ) from None


def _list_set(source: _Source) -> list[tuple[str, str, list[str]]]:
    """``(alphabet, character, sorted drawing paths)`` per character, checked complete."""
    characters: dict[tuple[str, str], list[str]] = {}
    for entry in _entries(source):
        parts = entry.split("/")
        if parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if len(parts) != 4 or parts[0] != source.name:
            raise ValueError(
                f"{source.path}: unexpected entry {entry!r}; expected "
                f"{source.name}/<Alphabet>/<character>/<drawing>.png"
            )
        characters.setdefault((parts[1], parts[2]), []).append(entry)

    expected = ALPHABETS[source.name]
    per_alphabet: dict[str, int] = {}
    for alphabet, _ in characters:
        per_alphabet[alphabet] = per_alphabet.get(alphabet, 0) + 1
    problems = []
    if len(per_alphabet) != len(expected) or sum(per_alphabet.values()) != sum(expected.values()):
        problems.append(
            f"found {len(per_alphabet)} alphabets and {sum(per_alphabet.values())} characters, "
            f"expected {len(expected)} alphabets and {sum(expected.values())} characters"
        )
    problems += [f"alphabet {a!r} is missing" for a in sorted(set(expected) - set(per_alphabet))]
    problems += [f"unexpected alphabet {a!r}" for a in sorted(set(per_alphabet) - set(expected))]
    problems += [
        f"alphabet {a!r} has {n} characters, expected {expected[a]}"
        for a, n in sorted(per_alphabet.items())
        if a in expected and n != expected[a]
    ]
    problems += [
        f"{a}/{c} has {len(files)} drawings, expected {DRAWINGS}"
        for (a, c), files in sorted(characters.items())
        if len(files) != DRAWINGS
    ]
    if problems:
        shown = "; ".join(problems[:6]) + (
            f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
        )
        raise ValueError(
            f"{source.path} is not a complete copy of Omniglot's {source.name}: {shown}. "
            f"Replace it with a good copy (delete it; then `python -m mamllib.data omniglot` fetches the original)."
        )
    return [(a, c, sorted(files)) for (a, c), files in sorted(characters.items())]


def _decode(sources: list[_Source], listings: list[list], image_size: int) -> OmniglotData:
    """Decode every drawing into an ``OmniglotData``, strokes 255."""
    sets = [
        PngSet(source.path, source.is_zip, [e for _, _, files in listing for e in files])
        for source, listing in zip(sources, listings)
    ]
    grey = torch.frombuffer(bytearray(decode_pngs(sets, image_size)), dtype=torch.uint8)
    images = 255 - grey.view(-1, DRAWINGS, image_size, image_size)
    rows = [
        (a, c, source.name) for source, listing in zip(sources, listings) for a, c, _ in listing
    ]
    return OmniglotData(
        images=images,
        alphabets=[a for a, _, _ in rows],
        characters=[c for _, c, _ in rows],
        background=torch.tensor([s == "images_background" for _, _, s in rows]),
    )


def _from_cache(blob: dict) -> OmniglotData:
    data = OmniglotData(blob["images"], blob["alphabets"], blob["characters"], blob["background"])
    if len(data) != NUM_CHARACTERS:
        raise ValueError(f"{len(data)} characters")
    return data


def load_omniglot(
    root: str | os.PathLike | None = None,
    image_size: int = 28,
    cache_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
) -> OmniglotData:
    """Load all 1,623 Omniglot characters × 20 drawings as ``image_size``² images.

    The first call checks the set (50 alphabets, 1,623 characters, 20 drawings each),
    decodes the 32,460 PNGs (seconds) and caches the result as
    ``<cache_dir>/omniglot_{image_size}.pt``; later calls read the cache (a cache made
    from other files, for another size, or unreadable is rebuilt).

    Args:
        root: where the zips are; see ``find_omniglot`` (default: the data location).
        image_size: side of the resized images (the paper: 28).
        cache_dir: where the cache lives; default ``mamllib.data.cache_dir()``
            (``$MAMLLIB_CACHE``, else ``~/.cache/mamllib``).
        download: fetch the original zips when they are missing (see
            ``download_omniglot``; into ``root``, else the data location's ``omniglot/``).

    Returns:
        ``OmniglotData`` with images uint8 ``[1623, 20, image_size, image_size]``.

    Raises:
        DataNotFoundError: no Omniglot where it looked, or the download failed (one
            line that says what to run).
        ValueError: a zip is unreadable or the set is incomplete (the message names
            the file and what is wrong).
    """
    check_int("image_size", image_size, 1)
    try:
        folder = find_omniglot(root)
    except DataNotFoundError:
        if not download:
            raise
        folder = download_omniglot(root)
    sources = _sources(folder)
    key = {"format": _CACHE_FORMAT, "image_size": image_size, "sources": [s.key() for s in sources]}
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    cache = folder / f"omniglot_{image_size}.pt"
    data = read_cache(cache, key, _from_cache, "Omniglot")
    if data is None:
        listings = [_list_set(source) for source in sources]  # all checks before decoding
        data = _decode(sources, listings, image_size)
        write_cache(cache, key, vars(data), "Omniglot")
    return data
