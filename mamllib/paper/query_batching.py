"""How Omniglot's query images are batched, and why it matters: the evaluation protocols.

The paper's Conv4 normalises with the statistics of the batch it sees (no running
statistics), so the accuracy on a task's query images depends on how they pass through
the network. The paper's protocol sends all of a task's query images together
(transductive); ``NON_TRANSDUCTIVE_LABEL`` sends each with the support set only.
``mamllib.paper.omniglot.evaluate`` reports both, and the accuracy under other batchings,
as ``PROTOCOL`` describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F

from mamllib.batch import TaskBatch
from mamllib.evaluate import (
    NON_TRANSDUCTIVE,
    TRANSDUCTIVE,
    QueryBatching,
    accuracy,
    query_batching_metrics,
    summarize,
)
from mamllib.maml import MAML

PAPER_BATCHING = "all together (the paper)"
NON_TRANSDUCTIVE_LABEL = "each with the support set only (non-transductive)"
# Groups of query images per vmap chunk: on the 2-core CPU (one torch thread, shared), the
# non-transductive pass of a 20-way task (300 groups of 21 images) took 1.3 s in chunks of 8,
# 2.0 s of 16, 5.3 s of 32 and 4.2 s all at once.
QUERY_CHUNK = 8
PROTOCOL = {
    "transductive": (
        '"curves": transductive, the paper\'s protocol: after the inner steps on the support '
        "set, all 15 query images of every class of a task (75 at 5-way, 300 at 20-way) pass "
        "through the network together, and its batch norm normalises them with their own batch "
        "statistics (no running statistics, as in the paper), so each query image's prediction "
        "depends on the other query images of its task"
    ),
    "non_transductive": (
        '"non_transductive": after the same inner steps on the same test tasks, each query '
        "image passes through the network with the task's support set only (N·K + 1 images), "
        "so batch norm's statistics come from the support set and that one image, never from "
        "the other query images (one of the normalisations TaskNorm, Bronskill et al. 2020, "
        'studies); an entry with "counted" classified only those query images of every task '
        "(each on its own, so it estimates the same accuracy, less precisely)"
    ),
    "query_batching": (
        '"query_batching": the accuracy after the inner steps on the same query images passed '
        "through the network 1 per class together (N images a pass), 5 per class (5·N), all "
        'together (transductive, the paper\'s protocol: the last point of "curves"), each with '
        "the support set only (non-transductive), or one at a time"
    ),
}


def query_batchings(n_way: int, per_class: int) -> dict[str, QueryBatching]:
    """The ways of batching a task's N·Q query images that ``evaluate`` compares (``PROTOCOL``)."""
    fives = per_class > 5 and per_class % 5 == 0
    return {
        "1 per class together": QueryBatching(n_way),
        **({"5 per class together": QueryBatching(5 * n_way)} if fives else {}),
        PAPER_BATCHING: TRANSDUCTIVE,
        NON_TRANSDUCTIVE_LABEL: NON_TRANSDUCTIVE,
        "one at a time": QueryBatching(1),
    }


def evaluate_query_batching(
    learners: Mapping[str, MAML],
    batch: TaskBatch,
    steps: int,
    inner_lr: float,
    batchings: Mapping[str, QueryBatching],
    *,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Query accuracy after ``steps`` inner updates, mean ± 95% CI, for each learner and
    each way of batching the query images (``mamllib.evaluate.query_batching_metrics``).

    Returns:
        label -> batching -> ``mamllib.evaluate.summarize`` of the accuracy.
    """
    results = {}
    for label, learner in learners.items():
        accuracies = query_batching_metrics(
            learner.model, learner.params, batch, F.cross_entropy, inner_lr=inner_lr,
            steps=steps, batchings=batchings, metric_fn=accuracy, buffers=learner.buffer_dict,
            chunk_size=QUERY_CHUNK, progress=progress, desc=label,
        )  # fmt: skip
        results[label] = {name: summarize(values) for name, values in accuracies.items()}
    return results


def evaluate_protocols(
    learners: Mapping[str, MAML], batch: TaskBatch, config: Any, *, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """A setting's ``"non_transductive"`` and ``"query_batching"`` results (``PROTOCOL``).

    Args:
        learners: label -> learner, adapted with ``config``'s α and test-time steps.
        batch: the setting's test tasks.
        config: the setting's ``OmniglotConfig``.

    Returns:
        ``"non_transductive"``: label -> ``summarize`` of the accuracy; ``"query_batching"``:
        label -> batching (``query_batchings``) -> the same.
    """
    batchings = query_batchings(config.n_way, config.eval_query)
    by_batching = evaluate_query_batching(
        learners, batch, config.eval_inner_steps, config.inner_lr, batchings, progress=progress
    )
    return {
        "non_transductive": {label: b[NON_TRANSDUCTIVE_LABEL] for label, b in by_batching.items()},
        "query_batching": by_batching,
    }


def describe(summary: Mapping[str, Any]) -> str:
    """A ``summarize`` of accuracies as "mean ± 95% CI" in %, with the query images it
    counted (its ``"counted"``) when not all of them."""
    text = f"{100 * summary['mean']:.1f} ± {100 * summary['ci95']:.1f}"
    return f"{text} ({summary['counted']})" if "counted" in summary else text
