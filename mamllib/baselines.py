"""Baselines MAML is compared with.

Pre-training (the paper's "pretrained" baseline): one network trained on all tasks
jointly, with no inner loop, then fine-tuned at test time with the same α and steps as
MAML. Its objective is the plain supervised loss over every example of every task in the
meta-batch; it is what MAML's objective becomes with zero inner steps.

Training from scratch (``scratch_learner``, the paper's Omniglot baseline): a randomly
initialised network, fine-tuned at test time like MAML; it shows what the initialisation
is worth.

Pixel-space nearest neighbour (``pixel_nearest_neighbour_accuracy``): labels each Omniglot
query image like its nearest support image; it learns nothing, a floor for any method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mamllib.batch import TaskBatch
from mamllib.maml import MAML, LossFn, predict
from mamllib.models import Conv4


def multitask_loss(
    model: nn.Module,
    params: Mapping[str, Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    buffers: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """The pre-training objective: ``loss_fn`` over all support and query examples of all tasks.

    The tasks' data are pooled into one data set, so the network learns the best
    prediction *on average over tasks* (for sinusoids of random phase: nearly flat).
    """
    device = next(iter(params.values())).device
    batch = batch.to(device)
    x = torch.cat([batch.x_support, batch.x_query], dim=1).flatten(0, 1)
    y = torch.cat([batch.y_support, batch.y_query], dim=1).flatten(0, 1)
    return loss_fn(predict(model, params, x, buffers), y)


def scratch_learner(config: Any, seed: int = 0, device: torch.device | str = "cpu") -> MAML:
    """The "training from scratch" baseline: a randomly initialised ``Conv4`` (seeded).

    Args:
        config: an ``OmniglotConfig`` (its ``n_way``, ``hidden`` and MAML settings).
        seed: seeds the initial weights.
        device: where the learner lives.

    Returns:
        An N-way ``MAML`` learner in eval mode, adapted with the config's α.
    """
    torch.manual_seed(seed)
    model = Conv4(config.n_way, hidden=config.hidden)
    return MAML(model, F.cross_entropy, config.maml_config()).to(device).eval()


def pixel_nearest_neighbour_accuracy(batch: TaskBatch) -> Tensor:
    """``[T]`` query accuracy of labelling each query image like its nearest support image.

    Distances are Euclidean in pixel space; nothing is learned. A floor for any method.
    """
    xs, xq = batch.x_support.flatten(2).double(), batch.x_query.flatten(2).double()
    distances = torch.cdist(xq, xs, compute_mode="donot_use_mm_for_euclid_dist")
    predicted = batch.y_support.gather(1, distances.argmin(-1))
    return (predicted == batch.y_query).float().mean(1)
