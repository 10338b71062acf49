"""``mamllib.experiments``: each domain's config and training step, and the one rule that
reads any domain's checkpoint back (``saved_config``, ``load_learner``); ``fit`` and resume
are tested in test_train.py."""

from dataclasses import asdict

import pytest
import torch

from mamllib.checkpoints import CheckpointError
from mamllib.experiments import (
    EXPERIMENTS,
    SinusoidExperiment,
    load_learner,
    saved_config,
)
from mamllib.experiments.navigation import NavigationConfig, NavigationExperiment, evaluate_policy
from mamllib.experiments.omniglot import (
    ROTATIONS,
    OmniglotConfig,
    OmniglotExperiment,
    accuracy_curve,
    few_shot_head,
)
from mamllib.experiments.sinusoid import SinusoidConfig
from mamllib.maml import MAML
from mamllib.paths import CHECKPOINTS
from mamllib.rl.env import sample_goals
from mamllib.rl.policy import GaussianMLPPolicy

# ----------------------------------------------------------------------------- the load rule


def test_saved_config_refuses_unknown_fields_and_defaults_new_ones():
    config = SinusoidConfig(k_shot=5, hidden=(20, 20))
    assert saved_config(SinusoidExperiment, {"config": asdict(config)}, "run.pt") == config
    older = {k: v for k, v in asdict(config).items() if k != "eval_steps"}
    assert saved_config(SinusoidExperiment, {"config": older}, "run.pt").eval_steps == 10
    newer = {**asdict(config), "warp_drive": 9, "flux": 1}
    with pytest.raises(CheckpointError, match=r"run.pt has config fields .* know: \['flux', 'warp"):
        saved_config(SinusoidExperiment, {"config": newer}, "run.pt")


@pytest.mark.parametrize(
    "file, experiment, kind",
    [
        ("sinusoid_maml.pt", "sinusoid", MAML),
        ("omniglot_5way1shot_maml.pt", "omniglot", MAML),
        ("navigation_maml.pt", "navigation", GaussianMLPPolicy),
    ],
)
def test_load_learner_rebuilds_every_domains_learner(file, experiment, kind):
    learner, ckpt = load_learner(CHECKPOINTS / file, experiment=experiment)
    assert isinstance(learner, kind) and not learner.training
    assert ckpt["experiment"] == experiment and ckpt["iteration"] > 0
    config = saved_config(EXPERIMENTS[experiment], ckpt, file)
    rebuilt = EXPERIMENTS[experiment].build_learner(config)
    assert set(rebuilt.state_dict()) == set(learner.state_dict())
    other = "navigation" if experiment != "navigation" else "sinusoid"
    with pytest.raises(CheckpointError, match=f"'{experiment}' checkpoint, expected '{other}'"):
        load_learner(CHECKPOINTS / file, experiment=other)


# ----------------------------------------------------------------------------- Omniglot


@pytest.fixture(scope="module")
def experiment():
    config = OmniglotConfig(meta_batch_size=4, eval_tasks=10, iterations=4, device="cpu", hidden=16)
    return OmniglotExperiment(config)


def test_experiment_splits_and_training_step(experiment):
    splits = experiment.splits
    assert len(splits["train"]) == 1100 and len(splits["val"]) == 100 and len(splits["test"]) == 423
    before = {k: v.clone() for k, v in experiment.learner.params.items()}
    loss = experiment.train_step()
    assert loss > 0
    assert any(not torch.equal(before[k], v) for k, v in experiment.learner.params.items())
    metrics = experiment.evaluate()
    assert len(metrics["val_accuracy"]) == experiment.config.eval_inner_steps + 1
    assert abs(metrics["val_accuracy"][0] - 0.2) < 0.15  # chance level before adapting


def test_pretrain_batch_labels_are_character_and_rotation():
    config = OmniglotConfig(
        method="pretrain", meta_batch_size=2, eval_tasks=4, device="cpu", hidden=8
    )
    exp = OmniglotExperiment(config)
    assert exp.learner.model.head.out_features == ROTATIONS * 1100
    x, y = exp.pretrain_batch(64)
    assert x.shape == (64, 1, 28, 28) and y.max() < ROTATIONS * 1100
    # Undo each image's rotation: it must be a stored drawing of its labelled character.
    train = exp.splits["train"]
    for image, label in zip(x[:8], y[:8]):
        character, rotation = divmod(label.item(), ROTATIONS)
        upright = torch.rot90(image, -rotation, dims=(-2, -1))
        drawings = exp.images[train[character]]
        assert (drawings - upright).abs().flatten(1).max(1).values.min() < 1e-6
    learner = few_shot_head(exp.learner, 5)
    assert learner.model.head.weight.abs().sum() == 0
    batch = exp.val_batch
    curve = accuracy_curve(learner, batch, steps=1)
    assert torch.allclose(
        curve[:, 0], torch.full_like(curve[:, 0], 0.2)
    )  # zero head: argmax picks class 0


# ----------------------------------------------------------------------------- navigation


@pytest.mark.parametrize("method", ["maml", "pretrain"])
def test_a_few_meta_iterations_improve_the_post_adaptation_return(method):
    config = NavigationConfig(
        method=method, meta_batch_size=8, episodes=8, horizon=50, hidden=(32, 32),
        eval_tasks=8, eval_episodes=8, eval_steps=1, fvp_fraction=0.5, device="cpu",
    )  # fmt: skip
    experiment = NavigationExperiment(config)
    goals = sample_goals(16, torch.Generator().manual_seed(123))

    def post_adaptation_returns():  # [16] after one step, same goals and action noise each time
        return evaluate_policy(experiment.learner, config, goals, seed=0).returns[:, 1]

    before = post_adaptation_returns()
    losses = [experiment.train_step() for _ in range(4)]
    gain = post_adaptation_returns() - before
    assert experiment.last_step["accepted"] == 1.0 and experiment.last_step["kl"] <= 0.01
    # Paired over goals: the mean gain is well above its standard error.
    assert gain.mean() > 3 * gain.std() / 4, gain
    assert losses[-1] < losses[0]  # −(post-adaptation return) of the training batches


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"inner_lr": -0.1}, r"inner_lr \(α\) must be a positive finite number, got -0.1"),
        ({"episodes": 0}, "episodes must be >= 1, got 0"),
        ({"fvp_fraction": 1.5}, r"fvp_fraction must be in \(0, 1\], got 1.5"),
        ({"discount": 0.0}, r"discount must be in \(0, 1\], got 0.0"),
        ({"max_kl": 0.0}, "max_kl must be a positive finite number, got 0.0"),
        ({"inner_steps": 2}, "inner_steps=2"),
        ({"oracle": True}, "oracle=True needs method='pretrain'"),
        ({"learn_inner_lr": True}, "learn_inner_lr=True"),
        ({"path": "loop"}, "path='loop'"),
        ({"path": "hybrid"}, r"path='hybrid' is not available for navigation.*'auto', 'vmap'"),
        ({"hidden": (100, 0)}, "hidden layer width must be >= 1, got 0"),
    ],
)
def test_bad_config_raises_naming_the_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        NavigationConfig(**overrides)
