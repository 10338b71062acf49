"""Omniglot few-shot classification (the paper's Section 5.2): splits and tasks.

Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015) has 1,623 handwritten characters
from 50 alphabets, each drawn once by 20 different people. A task 𝒯ᵢ is N-way
K-shot: N characters, each rotated by a multiple of 90° (a rotated character is a
new class, as in the paper), with K support images per class to adapt on and
``k_query`` query images per class to be graded on.

The pieces, in the order a notebook uses them:
    ``mamllib.data.load_omniglot()``  decode the two original zips once to a cached uint8 tensor
    ``split_characters()``            the paper's 1,200 / 423 character split, or Lake's
    ``OmniglotTasks``                 batched episode sampling, on the CPU or the GPU

References:
    Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", ICML 2017. Lake, Salakhutdinov & Tenenbaum, "Human-level concept
    learning through probabilistic program induction", Science 2015.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mamllib.batch import TaskBatch
from mamllib.checks import check_int
from mamllib.data.omniglot import DRAWINGS, OmniglotData

__all__ = ["OmniglotTasks", "split_characters"]
SPLITS = ("random", "lake")


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
        size = x.shape[-3:]

        def labels(per_class: int) -> Tensor:  # [T, N·per_class]: 0,..,0, 1,..,1, ...
            n = torch.arange(n_way, device=device)
            return n.view(1, n_way, 1).expand(num_tasks, n_way, per_class).reshape(num_tasks, -1)

        return TaskBatch(
            x[:, :, :k_shot].reshape(num_tasks, n_way * k_shot, *size),
            labels(k_shot),
            x[:, :, k_shot:].reshape(num_tasks, n_way * k_query, *size),
            labels(k_query),
            {"classes": classes, "rotations": rotations, "drawings": drawings},
        )
