"""``python -m mamllib.reproduce omniglot``: partial re-evaluation, the printed summary and the
notebook's accuracy table."""

import json

import pytest

from mamllib.reproduce import (
    ROOT,
    accuracy_table_markdown,
    evaluate_omniglot,
    main,
    merge_omniglot_results,
    omniglot_checkpoints,
    omniglot_summary,
)

RESULTS = ROOT / "results" / "omniglot.json"


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS.read_text())


def test_merge_replaces_only_the_re_evaluated_setting(recorded):
    new = json.loads(json.dumps(recorded))
    new["hardware"] = "another machine"
    new["settings"] = {"5-way 1-shot": new["settings"]["5-way 1-shot"]}
    new["settings"]["5-way 1-shot"]["curves"]["MAML"]["mean"][-1] = 0.5
    merged = merge_omniglot_results(recorded, new)
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
        merge_omniglot_results(recorded, new)


def test_summary_states_each_learner_and_maml_lead(recorded):
    text = omniglot_summary(recorded)
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
    assert text.index("5-way 1-shot") < text.index("20-way 1-shot")  # the paper's order


@pytest.mark.parametrize(
    "argv, message",
    [
        (["omniglot", "--setting", "7-way 1-shot"], "['7-way 1-shot']; valid: ['20-way 1-shot'"),
        (["sinusoid", "--setting", "5-way 1-shot"], "omniglot only, not sinusoid"),
        (["omniglot", "--setting", "5-way 1-shot", "--tasks", "17"], "--tasks 17 differs"),
    ],
)
def test_bad_setting_arguments_fail_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_setting_needs_a_previous_evaluation(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["omniglot", "--setting", "5-way 1-shot", "--results", str(tmp_path)])
    assert "run without --setting first" in capsys.readouterr().err


def test_evaluate_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="valid: .*5-way 1-shot"):
        evaluate_omniglot(num_tasks=2, settings=["3-way 1-shot"])


def test_partial_re_evaluation_end_to_end(tmp_path):
    """Evaluate 20-way alone, then re-evaluate 5-way through the command line: the file holds
    both, and the 20-way numbers are kept as they were."""
    (tmp_path / "omniglot.json").write_text(
        json.dumps(evaluate_omniglot(num_tasks=4, settings=["20-way 1-shot"]))
    )
    before = json.loads((tmp_path / "omniglot.json").read_text())
    argv = ["omniglot", "--setting", "5-way 1-shot", "--tasks", "4"]
    assert main([*argv, "--results", str(tmp_path), "--figures", str(tmp_path)]) == 0
    after = json.loads((tmp_path / "omniglot.json").read_text())
    assert list(after["settings"]) == ["20-way 1-shot", "5-way 1-shot"]
    assert (
        after["settings"]["20-way 1-shot"]["curves"]
        == before["settings"]["20-way 1-shot"]["curves"]
    )
    assert set(after["settings"]["5-way 1-shot"]["curves"]) == {
        *omniglot_checkpoints()["5-way 1-shot"],
        "scratch",
    }
    assert (tmp_path / "omniglot_accuracy_vs_steps.png").stat().st_size > 10_000


def test_accuracy_table_has_the_published_numbers():
    summary = {"mean": [0.2, 0.9, 0.95, 0.97], "ci95": [0.01] * 4, "num_tasks": 600}
    table = accuracy_table_markdown({"MAML": summary, "pre-trained": summary})
    assert "600 test tasks" in table and "97.0 ± 1.0" in table
    assert "98.7 ± 0.4" in table and "98.3" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1
