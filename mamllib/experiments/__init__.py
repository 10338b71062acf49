"""One module per domain: its frozen config, how to build its learner, one training step.

An experiment class has ``name``, ``model_name``, ``config_cls``, ``build_learner``,
``train_step()``, ``evaluate()``, ``headline(metrics)``, ``state()`` and
``load_state(state, source)``; ``mamllib.train.fit`` runs any of them.
"""

from mamllib.experiments.navigation import NavigationConfig, NavigationExperiment
from mamllib.experiments.omniglot import OmniglotConfig, OmniglotExperiment
from mamllib.experiments.sinusoid import SinusoidConfig, SinusoidExperiment

EXPERIMENTS: dict[str, type] = {
    "sinusoid": SinusoidExperiment,
    "omniglot": OmniglotExperiment,
    "navigation": NavigationExperiment,
}

__all__ = [
    "EXPERIMENTS",
    "NavigationConfig",
    "NavigationExperiment",
    "OmniglotConfig",
    "OmniglotExperiment",
    "SinusoidConfig",
    "SinusoidExperiment",
]
