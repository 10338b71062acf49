"""Omniglot data layer on the real data: loading, caching, clear errors, splits, episodes.

The set is decoded once per session (tens of seconds on the 2-core CPU) into the cache
dir from ``MAMLLIB_CACHE``, or a temporary one; everything else reads that cache.
References are independent of the code under test: PIL on the zip entries for the
decoding, ``torch.rot90`` and plain loops for the episodes.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from mamllib.tasks import omniglot
from mamllib.tasks.omniglot import (
    OmniglotData,
    OmniglotTasks,
    find_omniglot_root,
    load_omniglot,
    split_characters,
)

SETS = ("images_background", "images_evaluation")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    env = os.environ.get("MAMLLIB_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("omniglot_cache")


@pytest.fixture(scope="session")
def root() -> Path:
    return find_omniglot_root()


@pytest.fixture(scope="session")
def data(root, cache_dir) -> OmniglotData:
    start = time.perf_counter()
    loaded = load_omniglot(root, cache_dir=cache_dir)
    print(f"\nload_omniglot (decode or cache) took {time.perf_counter() - start:.1f} s")
    return loaded


@pytest.fixture(scope="session")
def images(data):
    return data.float_images("cpu")


@pytest.fixture(scope="session")
def splits(data):
    return split_characters(data)


@pytest.fixture(scope="session")
def tasks(images, splits):
    return OmniglotTasks(images, splits["train"])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
    for call in (lambda: find_omniglot_root(tmp_path), lambda: load_omniglot(tmp_path)):
        with pytest.raises(FileNotFoundError) as error:
            call()
        message = str(error.value)
        for needed in ("images_background.zip", "images_evaluation.zip", str(tmp_path)):
            assert needed in message
        for fix in ("MAMLLIB_OMNIGLOT_ROOT", "root=", "download_omniglot"):
            assert fix in message
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$MAMLLIB_OMNIGLOT_ROOT"):
        find_omniglot_root()


def test_root_from_environment(root, monkeypatch):
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_ROOT", str(root))
    assert find_omniglot_root() == root


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
    grey = omniglot._decode_chunk(str(tmp_path / "images_evaluation"), False, entries, 28)
    decoded = 255 - torch.frombuffer(bytearray(grey), dtype=torch.uint8).view(20, 28, 28)
    assert torch.equal(decoded, data.images[index])


def test_bad_load_arguments(root):
    with pytest.raises(ValueError, match="image_size"):
        load_omniglot(root, image_size=0)
    with pytest.raises(TypeError, match="image_size"):
        load_omniglot(root, image_size=28.0)


# --------------------------------------------------------------------------- splits


def test_random_split(data, splits):
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert (len(train), len(val), len(test)) == (1100, 100, 423)
    union = torch.cat([train, val, test])
    assert torch.equal(union.sort().values, torch.arange(1623)), "disjoint and complete"
    assert all(torch.equal(a, b) for a, b in zip(splits.values(), split_characters(data).values()))
    other = split_characters(data, seed=1)
    assert not torch.equal(other["test"], test)
    # irrespective of alphabet: both of Lake's sets end up in meta-test
    assert data.background[test].any() and (~data.background[test]).any()


def test_lake_split(data):
    split = split_characters(data, "lake", n_val=64)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (900, 64, 659)
    assert data.background[torch.cat([split["train"], split["val"]])].all()
    assert torch.equal(split["test"], torch.arange(964, 1623))
    assert not set(split["train"].tolist()) & set(split["val"].tolist())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"split": "alphabet"}, ValueError, r"'alphabet'.*\['random', 'lake'\]"),
        ({"n_train": 1623}, ValueError, r"n_train must be in \[1, 1622\].*1623"),
        ({"n_train": 0}, ValueError, "n_train"),
        ({"n_val": 1200}, ValueError, r"n_val must be in \[0, 1199\].*1200"),
        ({"n_val": -1}, ValueError, "n_val"),
        ({"split": "lake", "n_train": 900}, ValueError, "n_train applies to split='random'"),
        ({"seed": 0.5}, TypeError, "seed"),
    ],
)
def test_bad_split_arguments(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        split_characters(data, **kwargs)


# --------------------------------------------------------------------------- episodes


def reference_images(images, batch, k_shot):
    """Each episode image rebuilt one by one from ``info`` with ``torch.rot90``."""
    info = batch.info
    support, query = [], []
    for t in range(batch.num_tasks):
        s, q = [], []
        for n, (c, r) in enumerate(zip(info["classes"][t], info["rotations"][t])):
            rotated = [
                torch.rot90(images[c, d], int(r), dims=(-2, -1)) for d in info["drawings"][t, n]
            ]
            s += rotated[:k_shot]
            q += rotated[k_shot:]
        support.append(torch.stack(s))
        query.append(torch.stack(q))
    return torch.stack(support), torch.stack(query)


@pytest.mark.parametrize(("n_way", "k_shot", "k_query"), [(5, 1, 1), (5, 5, 15), (20, 1, 5)])
def test_episode_shapes_labels_and_images(images, splits, tasks, n_way, k_shot, k_query):
    T = 6
    batch = tasks.sample(T, n_way, k_shot, k_query, generator=gen(0))
    assert batch.x_support.shape == (T, n_way * k_shot, 1, 28, 28)
    assert batch.x_query.shape == (T, n_way * k_query, 1, 28, 28)
    labels = torch.arange(n_way)
    assert batch.y_support.dtype == torch.int64
    assert torch.equal(batch.y_support, labels.repeat_interleave(k_shot).expand(T, -1))
    assert torch.equal(batch.y_query, labels.repeat_interleave(k_query).expand(T, -1))

    classes, drawings = batch.info["classes"], batch.info["drawings"]
    assert classes.shape == (T, n_way) and drawings.shape == (T, n_way, k_shot + k_query)
    assert all(len(set(row.tolist())) == n_way for row in classes), "distinct classes per task"
    assert set(classes.flatten().tolist()) <= set(splits["train"].tolist())
    assert all(len(set(d.tolist())) == k_shot + k_query for d in drawings.flatten(0, 1))

    # support and query of one label: the same character, the same rotation, its drawings
    support, query = reference_images(images, batch, k_shot)
    assert torch.equal(batch.x_support, support)
    assert torch.equal(batch.x_query, query)


def test_query_images_are_not_support_images(data, tasks):
    """By pixels: a query image never repeats a support image of its class.

    One pair of drawings in the data is pixel-identical (a single Braille dot), so
    a match is allowed only where the two stored drawings are themselves identical.
    """
    k_shot, k_query = 5, 15
    batch = tasks.sample(40, 5, k_shot, k_query, generator=gen(1))
    flat = data.images.flatten(2)
    for t in range(batch.num_tasks):
        for n in range(5):
            s = batch.x_support[t, n * k_shot : (n + 1) * k_shot].flatten(1)
            q = batch.x_query[t, n * k_query : (n + 1) * k_query].flatten(1)
            same = (q[:, None] == s[None]).all(-1).nonzero().tolist()
            c, d = int(batch.info["classes"][t, n]), batch.info["drawings"][t, n]
            for i, j in same:
                assert torch.equal(flat[c, d[k_shot + i]], flat[c, d[j]])


def test_rotations(images, splits):
    rotated = OmniglotTasks(images, splits["train"]).sample(64, 5, 1, 1, generator=gen(2))
    assert set(rotated.info["rotations"].flatten().tolist()) == {0, 1, 2, 3}
    upright = OmniglotTasks(images, splits["train"], rotate=False).sample(
        64, 5, 1, 1, generator=gen(2)
    )
    assert (upright.info["rotations"] == 0).all()
    support, query = reference_images(images, upright, 1)
    assert torch.equal(upright.x_support, support) and torch.equal(upright.x_query, query)


def test_sampling_is_deterministic(tasks):
    a = tasks.sample(8, 5, 1, 3, generator=gen(3))
    b = tasks.sample(8, 5, 1, 3, generator=gen(3))
    c = tasks.sample(8, 5, 1, 3, generator=gen(4))
    assert torch.equal(a.x_support, b.x_support) and torch.equal(a.x_query, b.x_query)
    assert all(torch.equal(a.info[k], b.info[k]) for k in a.info)
    assert not torch.equal(a.info["classes"], c.info["classes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((4, 0, 1, 1), r"n_way \(N\) must be >= 1, got 0"),
        ((4, 1101, 1, 1), r"n_way \(N\) must be in \[1, 1100\].*1101"),
        ((4, 5, 0, 1), r"k_shot \(K\) must be >= 1, got 0"),
        ((4, 5, 1, 0), r"k_query must be >= 1, got 0"),
        ((4, 5, 5, 16), r"k_shot \+ k_query must be <= 20.*5 \+ 16 = 21"),
        ((0, 5, 1, 1), r"num_tasks must be >= 1, got 0"),
    ],
)
def test_bad_sampling_arguments(tasks, args, message):
    with pytest.raises(ValueError, match=message):
        tasks.sample(*args)


def test_bad_task_construction(images):
    with pytest.raises(ValueError, match="repeated"):
        OmniglotTasks(images, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1622\]"):
        OmniglotTasks(images, torch.tensor([0, 1623]))
    with pytest.raises(ValueError, match="float tensor"):
        OmniglotTasks(images.to(torch.uint8), torch.tensor([0, 1]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampling_on_cuda(data, splits):
    images = data.float_images("cuda")
    tasks = OmniglotTasks(images, splits["train"])
    batch = tasks.sample(16, 20, 1, 5, generator=torch.Generator("cuda").manual_seed(0))
    assert batch.x_support.device.type == "cuda" and batch.y_query.device.type == "cuda"
    support, query = reference_images(images, batch, 1)
    assert torch.equal(batch.x_support, support) and torch.equal(batch.x_query, query)
    with pytest.raises(ValueError, match="generator is on cpu"):
        tasks.sample(2, 5, 1, 1, generator=gen(0))
