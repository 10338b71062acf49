"""The shipped Omniglot checkpoints, re-evaluated against their recorded results."""

import json
import math

import pytest

from mamllib.experiments.omniglot import (
    OmniglotConfig,
    evaluate_learners,
    meta_test_episodes,
    scratch_learner,
)
from mamllib.reproduce import ROOT, omniglot_checkpoints
from mamllib.train import load_learner

RESULTS = ROOT / "results" / "omniglot.json"
TASKS = {"5-way 1-shot": 100, "20-way 1-shot": 50}  # other, fewer test tasks than the recorded 600


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS.read_text())


def test_results_are_for_the_shipped_checkpoints(recorded):
    shipped = omniglot_checkpoints()
    assert "MAML" in shipped["5-way 1-shot"]
    for setting, paths in shipped.items():
        saved = recorded["settings"][setting]["checkpoints"]
        assert set(saved) == set(paths)
        for label, path in paths.items():
            assert saved[label]["iteration"] == load_learner(path)[1]["iteration"], (
                f"results/omniglot.json is stale for {setting} {label}: "
                "rerun python -m mamllib.reproduce omniglot"
            )


def test_twenty_way_runs_are_shipped():
    shipped = omniglot_checkpoints()["20-way 1-shot"]
    assert {"MAML", "MAML (first-order)", "pre-trained"} <= set(shipped)


@pytest.mark.parametrize("setting", ["5-way 1-shot", "20-way 1-shot"])
def test_checkpoint_reproduces_its_recorded_accuracy(recorded, setting):
    """A fresh estimate on other test tasks agrees with the recorded one within their CIs."""
    learner, ckpt = load_learner(omniglot_checkpoints()[setting]["MAML"])
    config = OmniglotConfig(**ckpt["config"])
    batch = meta_test_episodes(config, TASKS[setting], seed=7)
    fresh = evaluate_learners({"MAML": learner}, batch, config.eval_inner_steps, config.inner_lr)
    fresh, saved = fresh["MAML"], recorded["settings"][setting]["curves"]["MAML"]
    bound = math.hypot(fresh["ci95"][-1], saved["ci95"][-1])
    assert abs(fresh["mean"][-1] - saved["mean"][-1]) <= bound, (fresh["mean"], saved["mean"])


def test_maml_learns_to_classify_new_characters(recorded):
    curves = recorded["settings"]["5-way 1-shot"]["curves"]
    assert abs(curves["MAML"]["mean"][0] - 0.2) < 0.05  # chance before adapting
    assert curves["MAML"]["mean"][-1] > 0.95
    assert curves["MAML"]["mean"][-1] - curves["scratch"]["mean"][-1] > 0.3


def test_maml_learns_twenty_way_tasks(recorded):
    """Twenty new characters from one drawing each: far above chance (5%) and scratch."""
    curves = recorded["settings"]["20-way 1-shot"]["curves"]
    for label in ("MAML", "MAML (first-order)"):
        assert abs(curves[label]["mean"][0] - 0.05) < 0.03, label  # chance before adapting
        assert curves[label]["mean"][-1] > 0.85, label
        assert curves[label]["mean"][-1] - curves["scratch"]["mean"][-1] > 0.4, label


def test_scratch_is_better_than_chance_but_far_from_maml():
    config = OmniglotConfig()
    batch = meta_test_episodes(config, 20, seed=11)
    curve = evaluate_learners({"scratch": scratch_learner(config)}, batch, 3, 0.4)["scratch"][
        "mean"
    ]
    assert abs(curve[0] - 1 / config.n_way) < 0.15
    assert curve[-1] > curve[0]


def test_pretrained_network_is_shared_across_settings(tmp_path):
    """Pre-training never sees N-way tasks, so a setting without its own uses the shared one."""
    from mamllib.experiments.omniglot import SHARED_PRETRAIN, checkpoint_paths

    assert checkpoint_paths(20, 1, tmp_path)["pre-trained"] == tmp_path / SHARED_PRETRAIN
    own = tmp_path / "omniglot_20way1shot_pretrain.pt"
    own.write_bytes(b"")
    assert checkpoint_paths(20, 1, tmp_path)["pre-trained"] == own
    assert checkpoint_paths(5, 5, tmp_path)["pre-trained"] == tmp_path / SHARED_PRETRAIN
    for setting, paths in omniglot_checkpoints().items():
        assert paths["pre-trained"].is_file(), setting
