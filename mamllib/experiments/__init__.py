"""One module per domain: its frozen config, how to build its learner, one training step.

An experiment class has ``name``, ``model_name``, ``config_cls``, ``build_learner``,
``train_step()``, ``evaluate()``, ``headline(metrics)``, ``state()`` and
``load_state(state, source)``; ``mamllib.train.fit`` runs any of them.

Here too is the one rule for reading a checkpoint of any of them back: its config is the
one it was trained with, a field this version does not know is an error, and a field
added since takes its default (``saved_config``). ``load_learner`` rebuilds the trained
learner of any domain with it; ``resumable_checkpoint`` checks that a run can continue one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from mamllib.checkpoints import CheckpointError, load_checkpoint, load_state_strict
from mamllib.experiments.navigation import NavigationConfig, NavigationExperiment
from mamllib.experiments.omniglot import OmniglotConfig, OmniglotExperiment
from mamllib.experiments.sinusoid import SinusoidConfig, SinusoidExperiment

EXPERIMENTS: dict[str, type] = {
    "sinusoid": SinusoidExperiment,
    "omniglot": OmniglotExperiment,
    "navigation": NavigationExperiment,
}
# Config fields a resumed run may change: they do not change what is being learned.
RESUMABLE_CHANGES = ("iterations", "path", "device", "eval_every", "checkpoint_every")


def saved_config(cls: type, ckpt: dict[str, Any], path: str | Path) -> Any:
    """The config a checkpoint was trained with; fields added since then take their defaults.

    Args:
        cls: the experiment class (a value of ``EXPERIMENTS``) the checkpoint belongs to.
        ckpt: the checkpoint dict (``mamllib.checkpoints.load_checkpoint``).
        path: where it was read, for the message.

    Returns:
        ``cls.config_cls(**ckpt["config"])``.

    Raises:
        CheckpointError: the checkpoint's config has a field this version does not know.
    """
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(ckpt["config"]) - known)
    if unknown:
        raise CheckpointError(f"{path} has config fields this version does not know: {unknown}")
    return cls.config_cls(**ckpt["config"])


def load_learner(
    path: str | Path, map_location: str | torch.device = "cpu", *, experiment: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """A trained learner of any experiment, and its checkpoint.

    Args:
        path: a checkpoint written by ``mamllib.train.fit``.
        map_location: the device the learner is built on.
        experiment: the experiment the checkpoint must be of (``"navigation"``); any if None.

    Returns:
        ``(learner, checkpoint)``: the experiment's ``build_learner`` (a ``MAML`` learner,
        θ and α for Meta-SGD; for navigation the policy) with the saved weights, in eval
        mode, and the checkpoint dict (``"config"``, ``"iteration"``, ``"history"``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a corrupt file, an unknown experiment or another one than
            ``experiment``, a model that does not fit.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    name = ckpt.get("experiment")
    if name not in EXPERIMENTS:
        raise CheckpointError(
            f"{path} is from an unknown experiment {name!r}; valid: {sorted(EXPERIMENTS)}"
        )
    if experiment is not None and name != experiment:
        raise CheckpointError(f"{path} holds a {name!r} checkpoint, expected {experiment!r}")
    cls = EXPERIMENTS[name]
    if ckpt["model"] != cls.model_name:
        raise CheckpointError(
            f"{path} holds a {ckpt['model']!r} model, expected {cls.model_name!r}"
        )
    config = saved_config(cls, ckpt, path)
    learner = cls.build_learner(config, map_location)
    load_state_strict(learner, ckpt["state"]["learner"], str(path))
    learner.eval()
    return learner, ckpt


def resumable_checkpoint(
    cls: type, config: Any, out: Path, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """The checkpoint at ``out`` if ``config`` can continue it; else a one-line error.

    Raises:
        CheckpointError: ``out`` is corrupt, not a training checkpoint of this experiment,
            or its config differs from ``config`` in more than ``RESUMABLE_CHANGES``.
        ValueError: ``out`` is already past ``config.iterations``.
    """
    ckpt = load_checkpoint(out, expect_model=cls.model_name, map_location=device)
    missing = [
        k for k in ("config", "iteration", "history", "wall_time_s", "state") if k not in ckpt
    ]
    if missing:
        raise CheckpointError(
            f"cannot resume {out}: it is not a training checkpoint (no {', '.join(missing)})"
        )
    diff = _config_diff(
        dataclasses.asdict(saved_config(cls, ckpt, out)), dataclasses.asdict(config)
    )
    for key in RESUMABLE_CHANGES:
        diff.pop(key, None)
    if diff:
        raise CheckpointError(
            f"cannot resume {out}: its config differs from the requested one in "
            + ", ".join(f"{k} (saved {a!r}, requested {b!r})" for k, (a, b) in sorted(diff.items()))
            + "; pass the saved values ("
            + " ".join(_flag(k, a) for k, (a, _) in sorted(diff.items()))
            + "), or --overwrite to start over"
        )
    if ckpt["iteration"] > config.iterations:
        raise ValueError(
            f"{out} is already at iteration {ckpt['iteration']}, past the requested "
            f"iterations={config.iterations}; pass --iterations {ckpt['iteration']} or more to "
            "continue it"
        )
    return ckpt


def _config_diff(saved: dict[str, Any], wanted: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    diff = {}
    for key in set(saved) | set(wanted):
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            a, b = list(a), list(b)
        if a != b:
            diff[key] = (a, b)
    return diff


def _flag(field: str, value: Any) -> str:
    """``field=value`` as the command line spells it (``--inner-lr 0.01``, ``--no-first-order``)."""
    name = field.replace("_", "-")
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    if isinstance(value, (list, tuple)):
        return f"--{name} " + " ".join(map(str, value))
    return f"--{name} {value}"


__all__ = [
    "EXPERIMENTS",
    "RESUMABLE_CHANGES",
    "NavigationConfig",
    "NavigationExperiment",
    "OmniglotConfig",
    "OmniglotExperiment",
    "SinusoidConfig",
    "SinusoidExperiment",
    "load_learner",
    "resumable_checkpoint",
    "saved_config",
]
