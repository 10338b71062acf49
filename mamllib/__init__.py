"""mamllib: Model-Agnostic Meta-Learning, small, fast and tested.

The algorithm lives in ``mamllib.maml``; domains supply task distributions
(``mamllib.tasks``) and models (``mamllib.models``).
"""

from __future__ import annotations

import os

from mamllib.maml import MAML, MAMLConfig, adapt, meta_loss, meta_step, predict
from mamllib.models import MLP
from mamllib.tasks import SinusoidTasks, TaskBatch

__version__ = "0.1.0"


def fast_mode() -> bool:
    """True when ``MAMLLIB_FAST=1``: tests and CI shrink budgets, never the code path."""
    return os.environ.get("MAMLLIB_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}


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
    "default_device",
    "fast_mode",
    "meta_loss",
    "meta_step",
    "predict",
]
