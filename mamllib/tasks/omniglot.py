"""Omniglot few-shot classification (the paper's Section 5.2).

Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015) has 1,623 handwritten characters
from 50 alphabets, each drawn once by 20 different people. A task 𝒯ᵢ is N-way
K-shot: N characters, each rotated by a multiple of 90° (a rotated character is a
new class, as in the paper), with K support images per class to adapt on and
``k_query`` query images per class to be graded on.

The pieces, in the order a notebook uses them:
    ``load_omniglot()``      decode the two original zips once to a cached uint8 tensor
    ``split_characters()``   the paper's 1,200 / 423 character split, or Lake's
    ``OmniglotTasks``        batched episode sampling, on the CPU or the GPU

Preprocessing: each 105×105 drawing is resized to 28×28 with a Lanczos filter (after
converting the 1-bit PNG to 8-bit grey, so the filter really anti-aliases; Pillow
resizes 1-bit images with nearest neighbour whatever filter is asked for, which is
what the paper's resize script got) and inverted so strokes are 1.0 and the
background 0.0.

References:
    Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", ICML 2017. Lake, Salakhutdinov & Tenenbaum, "Human-level concept
    learning through probabilistic program induction", Science 2015.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import tempfile
import warnings
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from mamllib.checks import check_int
from mamllib.tasks.base import TaskBatch

ROOT_ENV = "MAMLLIB_OMNIGLOT_ROOT"
CACHE_ENV = "MAMLLIB_CACHE"
DOWNLOAD_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
# md5 of the ORIGINAL zips (what download_omniglot fetches). The copies shipped in
# ../shared are repacked and have other md5s, so loading never checks these.
ORIGINAL_MD5 = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
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
SPLITS = ("random", "lake")
# Bump when the decoded tensor changes meaning, so old caches are rebuilt.
_CACHE_FORMAT = 1
_CHUNK = 1024  # images per worker job


# --------------------------------------------------------------------------- locating


def _default_root() -> Path:
    """``<repo root>/../shared/data/omniglot``, where the course's copy lives."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "omniglot"


def _missing_sets(root: Path) -> list[str]:
    return [s for s in ALPHABETS if not ((root / f"{s}.zip").is_file() or (root / s).is_dir())]


def find_omniglot_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding Omniglot's ``images_background`` and ``images_evaluation``.

    Each set may be the original zip (``images_background.zip``) or its extracted
    folder (``images_background/<Alphabet>/characterNN/XXXX_YY.png``).

    Args:
        root: where to look; if None, ``$MAMLLIB_OMNIGLOT_ROOT``; if that is unset,
            ``<repo root>/../shared/data/omniglot``.

    Returns:
        The root as a ``Path``.

    Raises:
        FileNotFoundError: if the chosen place lacks either set; the message says
            where it looked and how to fix it.
    """
    if root is not None:
        path, origin = Path(root).expanduser(), "the root= argument"
    elif os.environ.get(ROOT_ENV):
        path, origin = Path(os.environ[ROOT_ENV]).expanduser(), f"${ROOT_ENV}"
    else:
        path, origin = _default_root(), f"the default location (${ROOT_ENV} is not set)"
    missing = _missing_sets(path)
    if not missing:
        return path
    wanted = " and ".join(f"{s}.zip (or the folder {s}/)" for s in missing)
    raise FileNotFoundError(
        f"Omniglot not found: looked for {wanted} in {path}, from {origin}. "
        f"Fix: pass root= to the folder that holds images_background.zip and "
        f"images_evaluation.zip, or set {ROOT_ENV} to it, or, on a machine with internet, "
        f"call mamllib.tasks.omniglot.download_omniglot(root) to fetch the original zips "
        f"from github.com/brendenlake/omniglot."
    )


def download_omniglot(root: str | os.PathLike) -> Path:
    """Download the two original zips from github.com/brendenlake/omniglot into ``root``.

    An explicit opt-in for machines with internet: nothing in mamllib calls it. Zips
    already in ``root`` are kept. The downloads are checked against the original md5s
    (the ones ``torchvision.datasets.Omniglot`` uses); loading never checks md5s.

    Returns:
        ``root`` as a ``Path``, ready for ``load_omniglot(root)``.
    """
    try:
        from torchvision.datasets.utils import download_url
    except ImportError as error:
        raise ImportError(
            "download_omniglot needs torchvision (pip install torchvision), or download "
            f"{DOWNLOAD_URL}/images_background.zip and images_evaluation.zip by hand"
        ) from error
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for name, md5 in ORIGINAL_MD5.items():
        if not (root / f"{name}.zip").is_file():
            download_url(f"{DOWNLOAD_URL}/{name}.zip", str(root), f"{name}.zip", md5)
    return root


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
            f"corrupt. Replace it with a good copy (download_omniglot fetches the originals)."
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
            f"Replace it with a good copy (download_omniglot fetches the originals)."
        )
    return [(a, c, sorted(files)) for (a, c), files in sorted(characters.items())]


def _decode_chunk(path: str, is_zip: bool, entries: list[str], image_size: int) -> bytes:
    """Decode PNGs to ``image_size``² grey bytes, 0 = stroke (runs in a worker process)."""
    pixels = bytearray()
    archive = zipfile.ZipFile(path) if is_zip else None
    base = Path(path).parent
    try:
        for entry in entries:
            try:
                raw = archive.read(entry) if archive else (base / entry).read_bytes()
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


def _workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, 8))


def _decode(
    sources: list[_Source], listings: list[list], image_size: int, num_workers: int | None
) -> OmniglotData:
    """Decode every drawing, in parallel processes, into an ``OmniglotData``."""
    jobs = []
    for source, listing in zip(sources, listings):
        entries = [e for _, _, files in listing for e in files]
        for start in range(0, len(entries), _CHUNK):
            jobs.append((str(source.path), source.is_zip, entries[start : start + _CHUNK]))
    workers = min(num_workers or _workers(), len(jobs))
    if workers > 1:
        # "spawn", not Linux's default fork: the caller may be a Jupyter kernel or another
        # process with threads running, and a forked child can inherit a lock one of them
        # held and hang; spawned workers start clean (at the cost of importing this module).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            chunks = list(pool.map(_decode_chunk, *zip(*jobs), [image_size] * len(jobs)))
    else:
        chunks = [_decode_chunk(*job, image_size) for job in jobs]
    grey = torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8)
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


def default_cache_dir() -> Path:
    """Where ``load_omniglot`` keeps its cache by default: ``$MAMLLIB_CACHE``, else
    ``~/.cache/mamllib``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "mamllib"


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


def _read_cache(path: Path, key: dict) -> OmniglotData | None:
    """The cached data if ``path`` holds a readable cache made for ``key``, else None."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["key"] != key:
            return None  # made from another copy of the data or another image size
        data = OmniglotData(
            blob["images"], blob["alphabets"], blob["characters"], blob["background"]
        )
        if len(data) != NUM_CHARACTERS:
            raise ValueError(f"{len(data)} characters")
    except Exception as error:  # any unreadable cache is rebuilt, never trusted
        warnings.warn(
            f"ignoring unreadable Omniglot cache {path} ({error!r}); rebuilding it", stacklevel=3
        )
        return None
    return data


def _write_cache(path: Path, key: dict, data: OmniglotData) -> None:
    """Save atomically (temp file + rename), so a crash never leaves half a cache."""
    blob = {
        "key": key,
        "images": data.images,
        "alphabets": data.alphabets,
        "characters": data.characters,
        "background": data.background,
    }
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
        warnings.warn(f"could not write the Omniglot cache {path} ({error})", stacklevel=3)


def load_omniglot(
    root: str | os.PathLike | None = None,
    image_size: int = 28,
    cache_dir: str | os.PathLike | None = None,
    *,
    num_workers: int | None = None,
) -> OmniglotData:
    """Load all 1,623 Omniglot characters × 20 drawings as ``image_size``² images.

    The first call checks the set (50 alphabets, 1,623 characters, 20 drawings each),
    decodes the 32,460 PNGs in parallel and caches the result as
    ``<cache_dir>/omniglot_{image_size}.pt``; later calls read the cache (a cache made
    from other files, for another size, or unreadable is rebuilt).

    Args:
        root: see ``find_omniglot_root``.
        image_size: side of the resized images (the paper: 28).
        cache_dir: where the cache lives; default ``$MAMLLIB_CACHE``, else
            ``~/.cache/mamllib``.
        num_workers: decoding processes; default one per available CPU (at most 8).

    Returns:
        ``OmniglotData`` with images uint8 ``[1623, 20, image_size, image_size]``.

    Raises:
        FileNotFoundError: no Omniglot at the root (the message says how to get it).
        ValueError: a zip is unreadable or the set is incomplete (the message names
            the file and what is wrong).
    """
    check_int("image_size", image_size, 1)
    if num_workers is not None:
        check_int("num_workers", num_workers, 1)
    sources = _sources(find_omniglot_root(root))
    key = {"format": _CACHE_FORMAT, "image_size": image_size, "sources": [s.key() for s in sources]}
    cache = _cache_dir(cache_dir) / f"omniglot_{image_size}.pt"
    data = _read_cache(cache, key)
    if data is None:
        listings = [_list_set(source) for source in sources]  # all checks before decoding
        data = _decode(sources, listings, image_size, num_workers)
        _write_cache(cache, key, data)
    return data


# --------------------------------------------------------------------------- splits


def split_characters(
    data: OmniglotData,
    split: str = "random",
    seed: int = 0,
    n_train: int | None = None,
    n_val: int = 100,
) -> dict[str, Tensor]:
    """Split the characters into meta-training, validation and meta-test classes.

    ``"random"`` is the paper's split: 1,200 characters for meta-training, chosen
    irrespective of alphabet, the remaining 423 for testing. All character indices
    are permuted with ``torch.Generator().manual_seed(seed)``; the first ``n_train``
    are meta-training, of which the last ``n_val`` are held out as validation.
    ``"lake"`` is Lake et al.'s: the 964 background characters for training (the
    last ``n_val`` of a seeded permutation of them held out), the 659 evaluation
    characters (20 other alphabets) for testing.

    Args:
        data: the loaded set.
        split: ``"random"`` or ``"lake"``.
        seed: seed of the permutation (the default 0 is the course's split).
        n_train: meta-training characters including validation, for ``"random"`` only
            (default 1,200, the paper); Lake's split fixes it to the background set.
        n_val: validation characters taken out of meta-training.

    Returns:
        ``{"train", "val", "test"}``: sorted int64 character indices into ``data``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    check_int("n_val", n_val, 0)
    generator = torch.Generator().manual_seed(seed)
    if split == "random":
        n_train = 1200 if n_train is None else n_train
        check_int("n_train", n_train, 1)
        if n_train >= len(data):
            raise ValueError(
                f"n_train must be in [1, {len(data) - 1}] to leave test characters, got {n_train}"
            )
        order = torch.randperm(len(data), generator=generator)
        meta_train, test = order[:n_train], order[n_train:]
    else:
        if n_train is not None:
            raise ValueError(
                "n_train applies to split='random' only; Lake's split trains on the "
                f"{int(data.background.sum())} background characters"
            )
        background = data.background.nonzero().squeeze(1)
        meta_train = background[torch.randperm(len(background), generator=generator)]
        test = (~data.background).nonzero().squeeze(1)
    if n_val >= len(meta_train):
        raise ValueError(
            f"n_val must be in [0, {len(meta_train) - 1}] to leave training characters, got {n_val}"
        )
    cut = len(meta_train) - n_val
    return {
        "train": meta_train[:cut].sort().values,
        "val": meta_train[cut:].sort().values,
        "test": test.sort().values,
    }


# --------------------------------------------------------------------------- tasks


class OmniglotTasks:
    """The distribution p(𝒯) of N-way K-shot Omniglot tasks over some characters.

    A task picks N distinct characters from ``class_ids``, rotates each by a random
    multiple of 90° (``rotate=True``; the rotated character is the class, the same
    rotation for its support and query images), and K + Q distinct drawings of each:
    the first K are the support set, the next Q the query set. Sampling is batched
    over tasks and runs where the images are (keep the whole set on the GPU).

    Args:
        images: float ``[C, 20, 1, H, W]`` with H = W, e.g. ``data.float_images(device)``.
        class_ids: int64 ``[M]``, the characters (indices into ``images``) to draw
            classes from, e.g. ``split_characters(data)["train"]``.
        rotate: augment with rotations by 0°, 90°, 180°, 270°.
    """

    def __init__(self, images: Tensor, class_ids: Tensor, rotate: bool = True) -> None:
        if not isinstance(images, Tensor) or images.dim() != 5 or not images.is_floating_point():
            raise ValueError(
                "images must be a float tensor [C, 20, 1, H, W] (data.float_images(device)), got "
                f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}"
            )
        if (
            images.shape[1] != DRAWINGS
            or images.shape[2] != 1
            or images.shape[3] != images.shape[4]
        ):
            raise ValueError(
                f"images must have shape [C, {DRAWINGS}, 1, H, H], got {tuple(images.shape)}"
            )
        if (
            not isinstance(class_ids, Tensor)
            or class_ids.dim() != 1
            or class_ids.dtype != torch.int64
        ):
            raise ValueError("class_ids must be a 1-D int64 tensor of character indices")
        if class_ids.numel() == 0:
            raise ValueError("class_ids is empty: there are no characters to draw tasks from")
        if class_ids.min() < 0 or class_ids.max() >= images.shape[0]:
            raise ValueError(
                f"class_ids must lie in [0, {images.shape[0] - 1}], got "
                f"[{int(class_ids.min())}, {int(class_ids.max())}]"
            )
        if class_ids.unique().numel() != class_ids.numel():
            raise ValueError("class_ids contains repeated characters")
        self.images = images
        self.class_ids = class_ids.to(images.device)
        self.rotate = rotate
        # Rotating by k·90° is a fixed permutation of the pixels: turns[k, p] is the
        # pixel that lands on p, so one gather rotates every class by its own k.
        side = images.shape[-1]
        pixels = torch.arange(side * side, device=images.device).view(side, side)
        self._turns = torch.stack([torch.rot90(pixels, k).flatten() for k in range(4)])

    @property
    def num_classes(self) -> int:
        """Characters available (before rotation)."""
        return self.class_ids.numel()

    def sample(
        self,
        num_tasks: int,
        n_way: int,
        k_shot: int,
        k_query: int,
        *,
        generator: torch.Generator | None = None,
    ) -> TaskBatch:
        """Draw ``num_tasks`` N-way K-shot tasks, all at once.

        Labels: the n-th class of a task is label n; examples are class-major (all K
        images of label 0, then label 1, ...).

        Args:
            num_tasks: T.
            n_way: N, classes per task, in [1, number of characters].
            k_shot: K, support images per class.
            k_query: Q, query images per class; K + Q <= 20.
            generator: random numbers, on the images' device.

        Returns:
            ``TaskBatch`` with x_support ``[T, N·K, 1, H, W]``, y_support ``[T, N·K]``,
            x_query ``[T, N·Q, 1, H, W]``, y_query ``[T, N·Q]`` (int64 labels), and
            ``info``: ``classes`` ``[T, N]`` (character indices), ``rotations``
            ``[T, N]`` (k of ``torch.rot90(·, k, dims=(-2, -1))``, 0..3) and
            ``drawings`` ``[T, N, K + Q]`` (support drawings first).
        """
        check_int("num_tasks", num_tasks, 1)
        check_int("n_way (N)", n_way, 1)
        check_int("k_shot (K)", k_shot, 1)
        check_int("k_query", k_query, 1)
        if n_way > self.num_classes:
            raise ValueError(
                f"n_way (N) must be in [1, {self.num_classes}] (the characters available), got {n_way}"
            )
        if k_shot + k_query > DRAWINGS:
            raise ValueError(
                f"k_shot + k_query must be <= {DRAWINGS} (drawings per character), got "
                f"{k_shot} + {k_query} = {k_shot + k_query}"
            )
        device = self.images.device
        if generator is not None and generator.device.type != device.type:
            raise ValueError(
                f"generator is on {generator.device} but the images are on {device}; "
                f"use torch.Generator(device={str(device)!r})"
            )
        shots = k_shot + k_query
        keys = torch.rand(num_tasks, self.num_classes, generator=generator, device=device)
        classes = self.class_ids[keys.argsort(dim=1)[:, :n_way]]  # [T, N], distinct per task
        keys = torch.rand(num_tasks, n_way, DRAWINGS, generator=generator, device=device)
        drawings = keys.argsort(dim=2)[:, :, :shots]  # [T, N, K+Q], distinct per class
        if self.rotate:
            rotations = torch.randint(4, (num_tasks, n_way), generator=generator, device=device)
        else:
            rotations = torch.zeros(num_tasks, n_way, dtype=torch.int64, device=device)

        x = self.images[classes.unsqueeze(2), drawings]  # [T, N, K+Q, 1, H, W]
        if self.rotate:
            source = self._turns[rotations][:, :, None, None, :].expand(*x.shape[:-2], -1)
            x = x.flatten(-2).gather(-1, source).view(x.shape)
        labels = torch.arange(n_way, device=device).expand(num_tasks, n_way)
        size = x.shape[-3:]
        return TaskBatch(
            x[:, :, :k_shot].reshape(num_tasks, n_way * k_shot, *size),
            labels.repeat_interleave(k_shot, dim=1),
            x[:, :, k_shot:].reshape(num_tasks, n_way * k_query, *size),
            labels.repeat_interleave(k_query, dim=1),
            {"classes": classes, "rotations": rotations, "drawings": drawings},
        )
