"""``python -m mamllib.tools.bench``: it runs, checks the paths agree, and reports each.

No timing assertions: the CI machine is small and shared.
"""

from __future__ import annotations

import json

import pytest
import torch

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


class FlushRecorder:
    """A stdout that remembers what had been flushed (what a terminal or a pipe has seen)."""

    def __init__(self) -> None:
        self.written, self.flushed = "", ""

    def write(self, text: str) -> int:
        self.written += text
        return len(text)

    def flush(self) -> None:
        self.flushed = self.written


def test_rows_are_printed_as_they_are_measured(monkeypatch):
    """Each row reaches the terminal before the next measurement starts, the first workload's
    rows before the last workload is measured."""
    out = FlushRecorder()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr(bench, "check_gradients", lambda workload, device: (True, 0.0))
    seen_when_measuring = {}

    def measure_in_child(workload, path, device, settings, threads):
        seen_when_measuring[workload.name, path] = out.flushed
        rate = {"loop": 1.0, "vmap": 4.0, "hybrid": 2.0}[path]
        return {"workload": workload.name, "path": path, "iters_per_s": rate,
                "ms_per_iter": 1e3 / rate, "peak_mb": 1.5, "peak_measure": "ru_maxrss"}  # fmt: skip

    monkeypatch.setattr(bench, "_run_child", measure_in_child)
    assert main(["--quick", "--device", "cpu", "--workloads", "W1,T1-20w5s"]) == 0

    def rows(text, workload):
        return [line.split("|")[1].strip() for line in text.splitlines()
                if line.split("|")[0].strip() == workload]  # fmt: skip

    assert rows(seen_when_measuring["W1", "loop"], "W1") == []
    assert rows(seen_when_measuring["W1", "vmap"], "W1") == ["loop"]
    assert rows(seen_when_measuring["W1", "hybrid"], "W1") == ["loop", "vmap"]
    assert rows(seen_when_measuring["T1-20w5s", "loop"], "W1") == ["loop", "vmap", "hybrid"]
    assert rows(seen_when_measuring["T1-20w5s", "hybrid"], "T1-20w5s") == ["loop", "vmap"]
    final = out.flushed
    assert rows(final, "T1-20w5s") == ["loop", "vmap", "hybrid"]
    vmap_row = next(
        line for line in final.splitlines() if line.startswith("W1 ") and "vmap" in line
    )
    assert "4.00x" in vmap_row and "yes" in vmap_row  # the speed-up, known when it printed
    assert "graph" not in [p for w in ("W1", "T1-20w5s") for p in rows(final, w)]  # CPU


def test_the_table_lines_up_with_long_workload_names():
    rows = [{"workload": "T1-20w5s", "path": p, "grads_match": True, "grad_relative_diff": 0.0,
             "iters_per_s": 10.0, "ms_per_iter": 100.0, "speedup_vs_loop": 1.0}
            for p in ("loop", "graph")]  # fmt: skip
    lines = bench.format_table(rows).splitlines()
    assert len({line.index("|") for line in lines if "|" in line}) == 1
    assert lines[2].startswith("T1-20w5s | loop ")


def test_graph_is_measured_on_cuda_only():
    assert "graph" not in bench.bench_paths(torch.device("cpu"))
    assert bench.bench_paths(torch.device("cuda")) == ("loop", "vmap", "hybrid", "graph")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_row(tmp_path):
    out = tmp_path / "b.json"
    assert main(["--quick", "--device", "cuda", "--workloads", "T1-5w1s", "--json", str(out)]) == 0
    rows = {r["path"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"loop", "vmap", "hybrid", "graph"}
    graph = rows["graph"]
    assert graph["grads_match"] is True and graph["iters_per_s"] > 0
    assert graph["peak_measure"] == "cuda.max_memory_allocated" and graph["peak_mb"] > 0
    assert graph["speedup_vs_loop"] == pytest.approx(
        graph["iters_per_s"] / rows["loop"]["iters_per_s"]
    )
