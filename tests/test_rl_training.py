"""Navigation meta-training: it learns, resumes exactly, and rejects bad settings early."""

from __future__ import annotations

import pytest
import torch

from mamllib.checkpoints import load_checkpoint
from mamllib.experiments import EXPERIMENTS
from mamllib.experiments.navigation import NavigationConfig, NavigationExperiment, evaluate_policy
from mamllib.rl.env import sample_goals
from mamllib.train import fit, load_learner, parse_args


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


TINY = dict(meta_batch_size=2, episodes=3, horizon=10, hidden=(8,), eval_tasks=2,
            eval_episodes=2, eval_steps=1, eval_every=2, checkpoint_every=1, device="cpu")  # fmt: skip


def test_resume_ends_with_the_same_policy_as_an_uninterrupted_run(tmp_path):
    straight = fit(
        "navigation", NavigationConfig(iterations=4, **TINY), tmp_path / "a.pt", progress=False
    )
    fit("navigation", NavigationConfig(iterations=2, **TINY), tmp_path / "b.pt", progress=False)
    resumed = fit("navigation", NavigationConfig(iterations=4, **TINY), tmp_path / "b.pt",
                  resume=True, progress=False)  # fmt: skip
    a, b = straight.experiment.learner.state_dict(), resumed.experiment.learner.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history == resumed.history
    learner, ckpt = load_learner(tmp_path / "b.pt")
    assert ckpt["iteration"] == 4 and len(ckpt["sessions"]) == 2
    assert all(torch.equal(learner.state_dict()[k], a[k]) for k in a)


def test_command_line_flags_and_registration(tmp_path):
    assert EXPERIMENTS["navigation"] is NavigationExperiment
    name, config, args = parse_args(["navigation", "--out", str(tmp_path / "x.pt"), "--method",
                                     "pretrain", "--fvp-fraction", "0.25", "--hidden", "64", "64",
                                     "--no-center-advantages"])  # fmt: skip
    assert name == "navigation" and config.method == "pretrain" and config.fvp_fraction == 0.25
    assert config.hidden == (64, 64) and config.center_advantages is False
    defaults = NavigationConfig()
    assert (defaults.inner_lr, defaults.meta_batch_size, defaults.episodes, defaults.horizon,
            defaults.discount, defaults.max_kl, defaults.hidden) == (0.1, 20, 20, 100, 0.99, 0.01, (100, 100))  # fmt: skip
    assert defaults.eval_inner_lrs == (0.1, 0.05, 0.05)


def test_oracle_sees_the_goal(tmp_path):
    result = fit("navigation", NavigationConfig(method="pretrain", oracle=True, iterations=1, **TINY),
                 tmp_path / "o.pt", progress=False)  # fmt: skip
    assert result.experiment.learner.obs_dim == 4
    assert load_checkpoint(tmp_path / "o.pt")["config"]["oracle"] is True


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
