"""``python -m mamllib.tools.bench``: it runs, checks the paths agree, and reports each.

No timing assertions: the CI machine is small and shared.
"""

from __future__ import annotations

import json

import pytest

from mamllib.tools import bench
from mamllib.tools.bench import main
from mamllib.workloads import WORKLOADS


@pytest.mark.slow
def test_quick_run_reports_every_path(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["--quick", "--device", "cpu", "--workloads", "W1", "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    assert report["ok"] is True
    rows = {r["path"]: r for r in report["results"] if r["workload"] == "W1"}
    assert set(rows) == {"vmap", "loop", "hybrid"}
    for row in rows.values():
        assert row["grads_match"] is True
        assert 0 <= row["grad_relative_diff"] < 1e-4
        assert row["iters_per_s"] > 0
        assert row["ms_per_iter"] == pytest.approx(1e3 / row["iters_per_s"])
        assert len(row["block_seconds"]) == report["settings"]["repeats"]
        assert row["peak_total_mb"] > 0
    assert rows["loop"]["speedup_vs_loop"] == pytest.approx(1.0)
    # The MLP's default is vmap (choose_path); exactly one row is marked.
    assert [p for p, r in rows.items() if r["default"]] == ["vmap"]

    table = capsys.readouterr().out
    assert "W1 " in table and "vmap" in table and "loop" in table and "hybrid" in table
    assert "default path vs the per-task loop: W1" in table


def test_unknown_workload_is_named(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--workloads", "W1,NOPE"])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "NOPE" in err
    assert all(name in err for name in WORKLOADS)  # the valid names are listed


def test_disagreeing_paths_are_not_timed(tmp_path, monkeypatch, capsys):
    def measure_in_child(*args, **kwargs):
        raise AssertionError("a workload whose paths disagree must not be timed")

    monkeypatch.setattr(bench, "check_gradients", lambda workload, device: (False, 0.5))
    monkeypatch.setattr(bench, "_run_child", measure_in_child)
    out = tmp_path / "b.json"
    assert main(["--quick", "--device", "cpu", "--workloads", "W1", "--json", str(out)]) != 0

    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert {r["path"] for r in report["results"]} == {"vmap", "loop", "hybrid"}
    for row in report["results"]:
        assert row["grads_match"] is False and row["grad_relative_diff"] == 0.5
        assert "iters_per_s" not in row and "differ" in row["error"]
    assert "ERROR" in capsys.readouterr().out
