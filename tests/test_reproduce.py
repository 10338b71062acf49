"""``python -m mamllib.reproduce``: the command line over ``mamllib.paper``. Its user errors
are one line, exit status 2, before any work; each domain writes its results, figures and
table; ``omniglot --setting`` re-evaluates one setting and keeps the others."""

import json

import pytest

from mamllib.paper.omniglot import evaluate, shipped_checkpoints
from mamllib.paths import ROOT
from mamllib.reproduce import main

RESULTS = ROOT / "results" / "omniglot.json"


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS.read_text())


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


def test_partial_re_evaluation_end_to_end(tmp_path):
    """Evaluate 20-way alone, then re-evaluate 5-way through the command line: the file holds
    both, and the 20-way numbers are kept as they were."""
    (tmp_path / "omniglot.json").write_text(
        json.dumps(evaluate(num_tasks=4, settings=["20-way 1-shot"]))
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
        *shipped_checkpoints()["5-way 1-shot"],
        "scratch",
    }
    assert (tmp_path / "omniglot_accuracy_vs_steps.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sinusoid", "--tasks", "1"], "--tasks must be >= 2, got 1"),
        (["navigation", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["maze"], "invalid choice: 'maze'"),
    ],
)
def test_bad_arguments_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "domain, names",
    [
        ("sinusoid", ["sinusoid_fits.png", "sinusoid_mse_vs_steps.png"]),
        (
            "navigation",
            ["navigation_returns.png", "navigation_step_size.png", "navigation_trajectories.png"],
        ),
    ],
)
def test_a_domain_writes_its_results_figures_and_table(domain, names, tmp_path, capsys):
    results, drawn = tmp_path / "results", tmp_path / "figures"
    argv = [domain, "--tasks", "2", "--results", str(results), "--figures", str(drawn)]
    assert main(argv) == 0
    written = json.loads((results / f"{domain}.json").read_text())
    assert written.get("num_tasks", written.get("num_goals")) == 2
    assert sorted(p.name for p in drawn.iterdir()) == names  # no temporary files left
    assert all((drawn / name).read_bytes().startswith(b"\x89PNG") for name in names)
    table = capsys.readouterr().out
    assert "| MAML, paper |" in table and "on CPU" in table
