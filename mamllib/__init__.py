"""mamllib: Model-Agnostic Meta-Learning, small, fast and tested.

One namespace for a reader (``import mamllib`` or ``from mamllib import MAML, fit``):

- the algorithm (``mamllib.maml``): ``MAMLConfig``, ``inner_step``, ``adapt``,
  ``meta_loss``, ``MAML``, ``meta_step``, ``predict``, and its input, ``TaskBatch``;
- models, tasks and data: ``MLP``, ``Conv4``, ``BatchNorm``; ``SinusoidTasks``,
  ``OmniglotTasks``, ``split_characters``; ``load_omniglot``, ``set_data_dir``;
- training and evaluation: ``fit``, the experiments' configs, ``load_learner``,
  ``adaptation_path``, ``adaptation_curve``, ``mean_ci95``, ``summarize_curve``;
- reinforcement learning (``mamllib.rl``): the environment, the policy, rollouts, the
  policy-gradient inner step, TRPO;
- the course's helpers: ``check``, ``progress``, ``set_threads``, ``fast_mode``,
  ``class_mode``, ``default_device``, ``set_language`` (``"en"`` or ``"zh"``: the
  dashboards' and figures' language).

Figures and dashboards are in ``mamllib.viz``, the paper's reproduction in
``mamllib.paper``; the maintainers' commands in ``mamllib.tools``. Everything beyond the
algorithm is imported on first use, so ``import mamllib`` stays light.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import mamllib.fast  # noqa: F401 - registers the speed paths with mamllib.maml
from mamllib.batch import TaskBatch
from mamllib.maml import MAML, MAMLConfig, adapt, inner_step, meta_loss, meta_step, predict
from mamllib.models import MLP

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first used
_LAZY = {
    **dict.fromkeys(("BatchNorm", "Conv4"), "mamllib.models"),
    **dict.fromkeys(("SinusoidTasks",), "mamllib.tasks.sinusoid"),
    **dict.fromkeys(("OmniglotTasks", "split_characters"), "mamllib.tasks.omniglot"),
    **dict.fromkeys(
        ("DataNotFoundError", "data_dir", "load_omniglot", "set_data_dir"), "mamllib.data"
    ),
    **dict.fromkeys(
        ("adaptation_curve", "adaptation_path", "accuracy", "mean_ci95", "summarize_curve"),
        "mamllib.evaluate",
    ),
    **dict.fromkeys(("fit",), "mamllib.train"),
    **dict.fromkeys(("load_learner",), "mamllib.experiments"),
    **dict.fromkeys(("SinusoidConfig",), "mamllib.experiments.sinusoid"),
    **dict.fromkeys(("OmniglotConfig", "accuracy_curve"), "mamllib.experiments.omniglot"),
    **dict.fromkeys(
        ("NavigationConfig", "NavigationExperiment", "evaluate_policy"),
        "mamllib.experiments.navigation",
    ),
    **dict.fromkeys(
        ("multitask_loss", "pixel_nearest_neighbour_accuracy", "scratch_learner"),
        "mamllib.baselines",
    ),
    **dict.fromkeys(("flat", "hessian_term"), "mamllib.analysis"),
    **dict.fromkeys(("check",), "mamllib.exercises"),
    **dict.fromkeys(("progress",), "mamllib.progress_bar"),
    **dict.fromkeys(("set_language",), "mamllib.i18n"),
    **dict.fromkeys(
        (
            "GaussianMLPPolicy",
            "PointNavigation",
            "advantages",
            "discounted_returns",
            "linear_feature_baseline",
            "meta_objective",
            "policy_gradient_step",
            "reinforce_loss",
            "rollout",
            "rollout_steps",
            "sample_goals",
            "sample_meta_batch",
            "trpo_step",
        ),
        "mamllib.rl",
    ),  # fmt: skip
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mamllib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next use finds it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    mamllib.tools.bench_threads``, README "Speed"): with another program keeping one core
    busy, as on a student's laptop, one thread ran every notebook workload 2-5x faster
    than two; on an idle machine the sinusoid and navigation networks ran as fast on one,
    and only the Omniglot conv net gained from two (1.6x). Every notebook's setup cell
    and the training and reproduction commands (``--threads``) use one thread.
    """
    import torch

    from mamllib.checks import check_int

    check_int("threads", threads, 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def default_device() -> Any:
    """``cuda`` when torch sees a GPU, else ``cpu`` (a ``torch.device``)."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = [
    "MAML",
    "MAMLConfig",
    "MLP",
    "TaskBatch",
    "adapt",
    "class_mode",
    "default_device",
    "fast_mode",
    "inner_step",
    "meta_loss",
    "meta_step",
    "predict",
    "set_threads",
    *sorted(_LAZY),
]
