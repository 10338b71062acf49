"""Omniglot tasks on the real data: the character splits and the episode sampler.

The set comes from ``mamllib.data.load_omniglot`` (decoded once per machine into the
cache dir from ``MAMLLIB_CACHE``, or a temporary one; tests/test_data_omniglot.py tests
the loading). References are independent of the code under test: ``torch.rot90`` and
plain loops for the episodes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mamllib.data import OmniglotData, load_omniglot
from mamllib.tasks.omniglot import OmniglotTasks, split_characters


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    env = os.environ.get("MAMLLIB_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("omniglot_cache")


@pytest.fixture(scope="session")
def data(cache_dir) -> OmniglotData:
    return load_omniglot(cache_dir=cache_dir)


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
