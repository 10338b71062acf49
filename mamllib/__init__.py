"""mamllib: Model-Agnostic Meta-Learning, small, fast and tested.

The algorithm lives in ``mamllib.maml``; domains supply task distributions
(``mamllib.tasks``) and models (``mamllib.models``).
"""

from __future__ import annotations

import os

import mamllib.fast  # noqa: F401 - registers the speed paths with mamllib.maml
from mamllib.batch import TaskBatch
from mamllib.maml import MAML, MAMLConfig, adapt, meta_loss, meta_step, predict
from mamllib.models import MLP
from mamllib.tasks import SinusoidTasks

__version__ = "0.1.0"


def fast_mode() -> bool:
    """True when ``MAMLLIB_FAST=1``: tests and CI shrink budgets, never the code path."""
    return os.environ.get("MAMLLIB_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}


def class_mode() -> bool:
    """True when ``MAMLLIB_CLASS=1``: a lecture's variant of the notebooks, with smaller
    evaluations so that every cell finishes in under a minute on a 2-core CPU (the
    notebooks' setup cells also let a lecturer set ``CLASS_MODE = True`` by hand)."""
    return os.environ.get("MAMLLIB_CLASS", "0").strip().lower() in {"1", "true", "yes", "on"}


def set_threads(threads: int = 1) -> int:
    """Use ``threads`` CPU threads for torch; returns the previous count.

    The course's networks are small. Measured on a 2-core CPU (``python -m
    mamllib.tools.bench_threads``, README "Speed"): with another program keeping one core busy,
    as on a student's laptop, one thread ran every notebook workload 2-5x faster than
    two; on an idle machine the sinusoid and navigation networks ran as fast on one,
    and only the Omniglot conv net gained from two (1.6x). Every notebook's setup cell
    and the training and reproduction commands (``--threads``) use one thread.
    """
    import torch

    from mamllib.checks import check_int

    check_int("threads", threads, 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def default_device() -> torch.device:  # noqa: F821 - torch imported lazily below
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = [
    "MAML",
    "MAMLConfig",
    "MLP",
    "SinusoidTasks",
    "TaskBatch",
    "adapt",
    "class_mode",
    "default_device",
    "fast_mode",
    "meta_loss",
    "meta_step",
    "predict",
    "set_threads",
]
