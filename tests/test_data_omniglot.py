"""Omniglot's data layer on the real data: locating, checking, decoding, caching.

The set is decoded once per session (tens of seconds on the 2-core CPU) into the cache
dir from ``MAMLLIB_CACHE``, or a temporary one; everything else reads that cache.
References are independent of the code under test: PIL on the zip entries for the
decoding. The one decoding in a fresh process (a plain script, no ``__main__`` guard)
is in tests/test_data_download.py, after a download.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from mamllib.data import (
    DataNotFoundError,
    OmniglotData,
    find_omniglot,
    load_omniglot,
    omniglot,
    set_data_dir,
)
from mamllib.data.decode import PngSet, decode_pngs
from mamllib.data.location import default_dir

SETS = ("images_background", "images_evaluation")
ZIPS = [f"{s}.zip" for s in SETS]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    env = os.environ.get("MAMLLIB_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("omniglot_cache")


@pytest.fixture(scope="session")
def root() -> Path:
    return find_omniglot()


@pytest.fixture(scope="session")
def data(root, cache_dir) -> OmniglotData:
    start = time.perf_counter()
    loaded = load_omniglot(root, cache_dir=cache_dir)
    print(f"\nload_omniglot (decode or cache) took {time.perf_counter() - start:.1f} s")
    return loaded


@pytest.fixture(scope="session")
def images(data):
    return data.float_images("cpu")


@pytest.fixture(autouse=True)
def no_chosen_data_dir():
    yield
    set_data_dir(None)


def link_zips(root: Path, folder: Path) -> Path:
    """``folder`` holding (links to) the two zips of ``root``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ZIPS:
        (folder / name).symlink_to(root / name)
    return folder


# --------------------------------------------------------------------------- loading


def test_counts(data):
    assert len(data) == 1623
    assert data.images.shape == (1623, 20, 28, 28) and data.images.dtype == torch.uint8
    assert len(set(data.alphabets)) == 50
    assert int(data.background.sum()) == 964
    # background set first, then evaluation; alphabets never shared between the sets
    assert data.background[:964].all() and not data.background[964:].any()
    assert len(set(data.alphabets[:964])) == 30 and len(set(data.alphabets[964:])) == 20
    assert not set(data.alphabets[:964]) & set(data.alphabets[964:])
    names = list(zip(data.alphabets, data.characters))
    assert len(set(names)) == 1623
    assert names[:964] == sorted(names[:964]) and names[964:] == sorted(names[964:])


def test_pixels(data, images):
    assert images.shape == (1623, 20, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() == 0.0 and images.max() == 1.0
    # strokes are 1.0 on a 0.0 background: thin strokes make the mean small
    assert images.mean() < 0.5
    assert (images.amax(dim=(2, 3, 4)) > 0.5).all(), "every drawing has a stroke"


def test_decoding_matches_pil_reference(data, root):
    """A few drawings decoded by hand from the zips: resize with Lanczos, invert."""
    for index in (0, 240, 963, 964, 1622):
        source = SETS[0] if data.background[index] else SETS[1]
        folder = f"{source}/{data.alphabets[index]}/{data.characters[index]}/"
        with zipfile.ZipFile(root / f"{source}.zip") as archive:
            entries = sorted(
                n for n in archive.namelist() if n.startswith(folder) and n.endswith(".png")
            )
            for drawing in (0, 19):
                with Image.open(io.BytesIO(archive.read(entries[drawing]))) as png:
                    grey = png.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
                expected = 255 - torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8)
                assert torch.equal(data.images[index, drawing].flatten(), expected)


def test_cache_round_trip(data, root, cache_dir, monkeypatch):
    assert (cache_dir / "omniglot_28.pt").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached load must not decode")

    monkeypatch.setattr(omniglot, "_decode", no_decoding)
    start = time.perf_counter()
    again = load_omniglot(root, cache_dir=cache_dir)
    print(f"\ncached load_omniglot took {time.perf_counter() - start:.2f} s")
    assert torch.equal(again.images, data.images)
    assert torch.equal(again.background, data.background)
    assert again.alphabets == data.alphabets and again.characters == data.characters


def rebuild_from(tmp_path, root, data, monkeypatch) -> list[int]:
    """Load with a decoder that returns ``data`` and counts its calls."""
    calls = []

    def fake_decode(*args, **kwargs):
        calls.append(1)
        return data

    monkeypatch.setattr(omniglot, "_decode", fake_decode)
    assert torch.equal(load_omniglot(root, cache_dir=tmp_path).images, data.images)
    return calls


def test_stale_cache_is_rebuilt(tmp_path, root, cache_dir, data, monkeypatch):
    blob = torch.load(cache_dir / "omniglot_28.pt", weights_only=True)
    blob["key"]["sources"][0][2] += 1  # the background zip "changed size"
    torch.save(blob, tmp_path / "omniglot_28.pt")
    assert rebuild_from(tmp_path, root, data, monkeypatch) == [1]
    # the rebuilt cache is current: the next load reads it
    assert rebuild_from(tmp_path, root, data, monkeypatch) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omniglot_28.pt"], "no temp files left"


def test_corrupt_cache_is_rebuilt(tmp_path, root, data, monkeypatch):
    (tmp_path / "omniglot_28.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable Omniglot cache"):
        assert rebuild_from(tmp_path, root, data, monkeypatch) == [1]
    assert rebuild_from(tmp_path, root, data, monkeypatch) == []


def test_missing_root_says_what_and_how(tmp_path, monkeypatch):
    for call in (lambda: find_omniglot(tmp_path), lambda: load_omniglot(tmp_path)):
        with pytest.raises(FileNotFoundError) as error:
            call()
        assert isinstance(error.value, DataNotFoundError)
        message = str(error.value)
        assert "\n" not in message
        for needed in ("images_background.zip", "images_evaluation.zip", str(tmp_path)):
            assert needed in message
        for fix in (
            "MAMLLIB_DATA",
            f"python -m mamllib.data omniglot --dir {tmp_path}",
            "download=True",
        ):
            assert fix in message
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$MAMLLIB_DATA"):
        find_omniglot()


def test_root_from_environment(root, monkeypatch):
    monkeypatch.setenv("MAMLLIB_DATA", str(root))
    assert find_omniglot() == root


def test_truncated_zip_is_named(tmp_path, root):
    shutil.copy(root / "images_background.zip", tmp_path)
    whole = (root / "images_evaluation.zip").read_bytes()
    (tmp_path / "images_evaluation.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"images_evaluation\.zip.*truncated or corrupt"):
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache")


def copy_zip_without(source: Path, target: Path, prefix: str) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if not info.filename.startswith(prefix):
                dst.writestr(info.filename, src.read(info))


@pytest.mark.parametrize(
    ("dropped", "message"),
    [
        ("images_background/Bengali/", r"found 29 alphabets .* expected 30 .*'Bengali' is missing"),
        (
            "images_background/Braille/character01/0192_20.png",
            r"Braille/character01 has 19 drawings, expected 20",
        ),
    ],
    ids=["missing-alphabet", "missing-drawing"],
)
def test_incomplete_zip_is_named(tmp_path, root, dropped, message):
    copy_zip_without(root / "images_background.zip", tmp_path / "images_background.zip", dropped)
    shutil.copy(root / "images_evaluation.zip", tmp_path)
    with pytest.raises(ValueError, match=r"images_background\.zip") as error:
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache")
    error.match(message)


def test_extracted_folder_is_checked(tmp_path, root):
    """A set may be an extracted folder; it is checked like a zip."""
    shutil.copy(root / "images_background.zip", tmp_path)
    with zipfile.ZipFile(root / "images_evaluation.zip") as archive:
        archive.extractall(tmp_path)
    shutil.rmtree(tmp_path / "images_evaluation" / "Tengwar")
    with pytest.raises(ValueError, match=r"images_evaluation is not .* found 19 alphabets"):
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache")


def test_extracted_folder_decodes_like_the_zip(tmp_path, root, data):
    index = 1622
    folder = f"images_evaluation/{data.alphabets[index]}/{data.characters[index]}/"
    with zipfile.ZipFile(root / "images_evaluation.zip") as archive:
        entries = sorted(
            n for n in archive.namelist() if n.startswith(folder) and n.endswith(".png")
        )
        archive.extractall(tmp_path, entries)
    grey = decode_pngs([PngSet(tmp_path / "images_evaluation", False, entries)], 28)
    decoded = 255 - torch.frombuffer(bytearray(grey), dtype=torch.uint8).view(20, 28, 28)
    assert torch.equal(decoded, data.images[index])


def test_bad_load_arguments(root):
    with pytest.raises(ValueError, match="image_size"):
        load_omniglot(root, image_size=0)
    with pytest.raises(TypeError, match="image_size"):
        load_omniglot(root, image_size=28.0)


# --------------------------------------------------------------------------- locating


def test_found_in_the_folder_or_its_omniglot_folder(root, tmp_path, monkeypatch):
    direct = link_zips(root, tmp_path / "direct")
    assert find_omniglot(direct) == direct
    nested = link_zips(root, tmp_path / "nested" / "omniglot")
    assert find_omniglot(nested.parent) == nested
    monkeypatch.setenv("MAMLLIB_DATA", str(nested.parent))
    assert find_omniglot() == nested
    monkeypatch.setenv("MAMLLIB_DATA", str(direct))
    assert find_omniglot() == direct
    set_data_dir(nested.parent)
    assert find_omniglot() == nested
    assert find_omniglot(direct) == direct, "an argument wins over set_data_dir"


def test_set_data_dir_reaches_every_later_load(root, tmp_path, data, monkeypatch):
    """Set once (in a notebook); library code then calls ``load_omniglot()`` without root."""
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match=r"\$MAMLLIB_DATA"):
        load_omniglot(cache_dir=tmp_path / "cache")
    set_data_dir(link_zips(root, tmp_path / "chosen" / "omniglot").parent)
    assert rebuild_from(tmp_path / "cache", None, data, monkeypatch) == [1]


@pytest.mark.parametrize(
    ("how", "origin", "command"),
    [
        ("default", "(the default data location; $MAMLLIB_DATA is not set)", "omniglot`"),
        ("environment", "(from $MAMLLIB_DATA)", "omniglot`"),
        ("set_data_dir", "(set by set_data_dir())", "omniglot --dir {place}`"),
    ],
)
def test_missing_data_says_where_it_looked_and_why(tmp_path, monkeypatch, how, origin, command):
    monkeypatch.delenv("MAMLLIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if how == "environment":
        monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "data"))
    elif how == "set_data_dir":
        set_data_dir(tmp_path / "data")
    folder = default_dir() if how == "default" else tmp_path / "data"
    place = folder / "omniglot"
    with pytest.raises(DataNotFoundError) as error:
        find_omniglot()
    message = str(error.value)
    assert message.startswith(f"Omniglot is not in {place} {origin}. Get it with ")
    assert f"`python -m mamllib.data {command.format(place=place)}" in message
    assert "\n" not in message


def test_half_a_copy_is_named(root, tmp_path):
    (tmp_path / "images_background.zip").symlink_to(root / "images_background.zip")
    with pytest.raises(DataNotFoundError, match=f"{tmp_path} holds only images_background"):
        find_omniglot(tmp_path)


def test_notebooks_show_one_line(tmp_path):
    """IPython prints ``_render_traceback_``'s lines instead of the traceback."""
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    shell.user_ns["find_omniglot"] = find_omniglot
    with io.StringIO() as out, contextlib.redirect_stdout(out):
        shell.run_cell(f"find_omniglot({str(tmp_path)!r})")
        shown = out.getvalue().strip()
    assert shown.startswith(f"DataNotFoundError: Omniglot is not in {tmp_path} or ")
    assert "\n" not in shown and "Traceback" not in shown
