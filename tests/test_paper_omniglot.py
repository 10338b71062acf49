"""``mamllib.paper.omniglot``: the shipped checkpoints, re-evaluated against their recorded
results (transductive and non-transductive); merging a partial re-evaluation, the printed
summary and the tables."""

import json
import math

import matplotlib.pyplot as plt
import pytest

from mamllib.baselines import scratch_learner
from mamllib.experiments import load_learner
from mamllib.experiments.omniglot import OmniglotConfig
from mamllib.paper.omniglot import (
    LEARNERS,
    SHARED_PRETRAIN,
    checkpoint_paths,
    evaluate,
    evaluate_learners,
    figures,
    merge_results,
    meta_test_episodes,
    shipped_checkpoints,
    summary,
    table_markdown,
)
from mamllib.paper.query_batching import (
    NON_TRANSDUCTIVE_LABEL,
    PAPER_BATCHING,
    PROTOCOL,
    describe,
    evaluate_protocols,
)
from mamllib.paths import ROOT

RESULTS = ROOT / "results" / "omniglot.json"
TASKS = {"5-way 1-shot": 100, "20-way 1-shot": 50}  # other, fewer test tasks than the recorded 600


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS.read_text())


def test_results_are_for_the_shipped_checkpoints(recorded):
    shipped = shipped_checkpoints()
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
    shipped = shipped_checkpoints()["20-way 1-shot"]
    assert {"MAML", "MAML (first-order)", "pre-trained"} <= set(shipped)


@pytest.mark.parametrize("setting", ["5-way 1-shot", "20-way 1-shot"])
def test_checkpoint_reproduces_its_recorded_accuracy(recorded, setting):
    """A fresh estimate on other test tasks agrees with the recorded one within their CIs."""
    learner, ckpt = load_learner(shipped_checkpoints()[setting]["MAML"])
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
    assert checkpoint_paths(20, 1, tmp_path)["pre-trained"] == tmp_path / SHARED_PRETRAIN
    own = tmp_path / "omniglot_20way1shot_pretrain.pt"
    own.write_bytes(b"")
    assert checkpoint_paths(20, 1, tmp_path)["pre-trained"] == own
    assert checkpoint_paths(5, 5, tmp_path)["pre-trained"] == tmp_path / SHARED_PRETRAIN
    for setting, paths in shipped_checkpoints().items():
        assert paths["pre-trained"].is_file(), setting


def test_merge_replaces_only_the_re_evaluated_setting(recorded):
    new = json.loads(json.dumps(recorded))
    new["hardware"] = "another machine"
    new["settings"] = {"5-way 1-shot": new["settings"]["5-way 1-shot"]}
    new["settings"]["5-way 1-shot"]["curves"]["MAML"]["mean"][-1] = 0.5
    merged = merge_results(recorded, new)
    assert set(merged["settings"]) == set(recorded["settings"])
    assert merged["settings"]["5-way 1-shot"]["curves"]["MAML"]["mean"][-1] == 0.5
    assert merged["settings"]["5-way 1-shot"]["evaluated_on"] == "another machine"
    kept = merged["settings"]["20-way 1-shot"]
    assert kept["curves"] == recorded["settings"]["20-way 1-shot"]["curves"]
    assert kept["evaluated_on"] == recorded["settings"]["20-way 1-shot"].get(
        "evaluated_on", recorded["hardware"]
    )
    assert recorded["settings"]["5-way 1-shot"]["curves"]["MAML"]["mean"][-1] != 0.5  # not mutated


def test_merge_refuses_a_different_number_of_tasks(recorded):
    new = {**recorded, "num_tasks": recorded["num_tasks"] + 1}
    with pytest.raises(ValueError, match=f"{recorded['num_tasks'] + 1} test tasks"):
        merge_results(recorded, new)


def test_summary_states_each_learner_and_maml_lead(recorded):
    text = summary(recorded)
    for setting, r in recorded["settings"].items():
        assert setting in text
        s, curves = r["steps"], r["curves"]
        lead = 100 * (curves["MAML"]["mean"][s] - curves["pre-trained"]["mean"][s])
        assert f"MAML minus pre-trained after {s} steps: {lead:+.1f} points" in text
        for label in curves:
            assert (
                f"{100 * curves[label]['mean'][s]:5.1f} ± {100 * curves[label]['ci95'][s]:.1f}%"
                in text
            )
            honest = r["non_transductive"].get(label)
            assert honest is None or f"(non-transductive {describe(honest)})" in text
    assert text.index("5-way 1-shot") < text.index("20-way 1-shot")  # the paper's order


def test_evaluate_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="valid: .*5-way 1-shot"):
        evaluate(num_tasks=2, settings=["3-way 1-shot"])


def test_accuracy_table_has_the_published_numbers():
    curve = {"mean": [0.2, 0.9, 0.95, 0.97], "ci95": [0.01] * 4, "num_tasks": 600}
    table = table_markdown({"MAML": curve, "pre-trained": curve})
    assert "600 test tasks" in table and "97.0 ± 1.0" in table
    assert "98.7 ± 0.4" in table and "98.3" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1


def test_table_one_has_a_row_per_setting_in_the_papers_order(recorded):
    """The same writer, given ``evaluate``'s results: the paper's Table 1 beside ours, each
    learner after the setting's test-time steps, with how far an unfinished run got."""
    lines = table_markdown(recorded).splitlines()
    assert len(lines) == 2 + 2 * len(recorded["settings"])  # transductive, non-transductive
    assert len({line.count("|") for line in lines}) == 1
    assert lines[2].startswith("| 5-way 1-shot, 3 steps, transductive | 98.7 ± 0.4 | 98.3 | ")
    assert lines[3].startswith("| 5-way 1-shot, 3 steps, non-transductive | — | — | ")
    assert lines[4].startswith("| 20-way 1-shot, 5 steps, transductive | 95.8 ± 0.3 | 89.4 | ")
    twenty = recorded["settings"]["20-way 1-shot"]
    maml, ckpt = twenty["curves"]["MAML"], twenty["checkpoints"]["MAML"]
    assert (
        f"| {100 * maml['mean'][-1]:.1f} ± {100 * maml['ci95'][-1]:.1f} (after "
        f"{ckpt['iteration']:,} of {ckpt['iterations_planned']:,} iterations) |" in lines[4]
    )
    honest = recorded["settings"]["5-way 1-shot"]["non_transductive"]["MAML"]
    assert f" | {100 * honest['mean']:.1f} ± {100 * honest['ci95']:.1f} | " in lines[3]
    for line, r in zip(
        lines[3::2], sorted(recorded["settings"].values(), key=lambda r: r["n_way"])
    ):
        for honest in r["non_transductive"].values():  # a subset of the query images is said
            assert describe(honest) in line


def test_describe_says_which_query_images_it_counted():
    accuracy = {"mean": 0.9123, "ci95": 0.0042, "num_tasks": 600}
    assert describe(accuracy) == "91.2 ± 0.4"
    counted = {**accuracy, "counted": "the first 4 of the 15 query images of each class"}
    assert describe(counted) == "91.2 ± 0.4 (the first 4 of the 15 query images of each class)"


def test_table_without_non_transductive_numbers_has_one_row_per_setting(recorded):
    """Results from before the non-transductive protocol still make a table."""
    old = json.loads(json.dumps(recorded))
    for r in old["settings"].values():
        r.pop("non_transductive"), r.pop("query_batching", None)
    lines = table_markdown(old).splitlines()
    assert len(lines) == 2 + len(old["settings"])
    assert "non-transductive" not in table_markdown(old)
    drawn = figures(old)
    assert list(drawn) == ["omniglot_accuracy_vs_steps.png"]
    plt.close(drawn["omniglot_accuracy_vs_steps.png"])


def test_figures_are_the_accuracy_per_step_and_per_query_batching(recorded):
    drawn = figures(recorded)
    assert list(drawn) == ["omniglot_accuracy_vs_steps.png", "omniglot_query_batching.png"]
    for figure in drawn.values():
        assert figure.dpi == 120
        plt.close(figure)


def test_results_state_the_protocol_and_the_non_transductive_numbers(recorded):
    """Every shipped network has its accuracy by both protocols; where the query batchings
    were measured, on the same test tasks: the paper's batching reproduces the last point of
    the transductive curve."""
    assert recorded["protocol"] == PROTOCOL
    assert "transductive" in PROTOCOL["transductive"] and "TaskNorm" in PROTOCOL["non_transductive"]
    for setting, paths in shipped_checkpoints().items():
        r = recorded["settings"][setting]
        assert set(paths) <= set(r["non_transductive"]), setting
        for label, by in r.get("query_batching", {}).items():
            assert r["non_transductive"][label] == by[NON_TRANSDUCTIVE_LABEL]
            # the same tasks: equal up to an argmax tie or two that rounding (1 or 2 threads)
            # flips in an untrained network (scratch: 0.5521 against 0.5522)
            paper = r["curves"][label]["mean"][-1]
            assert by[PAPER_BATCHING]["mean"] == pytest.approx(paper, abs=1e-3)
            assert by[PAPER_BATCHING]["num_tasks"] == recorded["num_tasks"]
    assert set(recorded["settings"]["5-way 1-shot"]["query_batching"]) >= set(LEARNERS) - {
        "scratch"
    }


def test_one_query_image_at_a_time_breaks_the_transductive_network(recorded):
    """The lesson of the query batching: alone, a query image is classified near chance;
    with the support set only, MAML stays far above it, a little below the paper's protocol."""
    for setting, r in recorded["settings"].items():
        honest, paper = r["non_transductive"]["MAML"]["mean"], r["curves"]["MAML"]["mean"][-1]
        assert 0.85 < honest < paper, setting
        if "query_batching" in r:
            assert r["query_batching"]["MAML"]["one at a time"]["mean"] < 1 / r["n_way"] + 0.2


def test_fresh_non_transductive_accuracy_agrees_with_the_recorded_one(recorded):
    """On other test tasks, within the two CIs; and ``evaluate`` writes the protocol."""
    learner, ckpt = load_learner(shipped_checkpoints()["5-way 1-shot"]["MAML"])
    config = OmniglotConfig(**ckpt["config"])
    batch = meta_test_episodes(config, 60, seed=7)
    fresh = evaluate_protocols({"MAML": learner}, batch, config)["non_transductive"]["MAML"]
    saved = recorded["settings"]["5-way 1-shot"]["non_transductive"]["MAML"]
    assert abs(fresh["mean"] - saved["mean"]) <= math.hypot(fresh["ci95"], saved["ci95"])
    assert evaluate(num_tasks=2, settings=["5-way 1-shot"])["protocol"] == PROTOCOL
