"""``python -m mamllib.tools.bench_threads``: its arguments and its report, without measuring.

The measurement itself (fresh processes, busy cores) is too slow for the suite: ``run``
is replaced by a fake that returns known times.
"""

from __future__ import annotations

import json

import pytest

from mamllib.tools import bench_threads
from mamllib.tools.bench_threads import WORKLOADS, format_table, main, parse_args


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--workloads", "sinusoid-train,NOPE"], "NOPE"),
        (["--workloads", ","], "--workloads"),
        (["--threads", "one"], "'one'"),
        (["--threads", "0,2"], "--threads must be comma-separated integers >= 1"),
        (["--load", "0"], "--load must be >= 1"),
        (["--repeats", "0"], "--repeats must be >= 1"),
    ],
)
def test_bad_arguments_are_named(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code != 0
    assert named in capsys.readouterr().err


def test_unknown_workload_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--workloads", "NOPE"])
    err = capsys.readouterr().err
    assert all(name in err for name in WORKLOADS)


def test_defaults_are_every_workload_on_one_and_two_threads():
    args = parse_args([])
    assert args.workloads == list(WORKLOADS)
    assert args.threads == [1, 2] and args.load == 1 and args.repeats == 3


def _rows(seconds: dict[tuple[str, int, int], float]) -> list[dict]:
    return [
        {"workload": w, "threads": t, "busy_processes": n, "seconds": s, "runs": [s]}
        for (w, t, n), s in seconds.items()
    ]


FAKE = {
    ("sinusoid-train", 1, 0): 2.0,
    ("sinusoid-train", 2, 0): 1.0,
    ("sinusoid-train", 1, 1): 2.0,
    ("sinusoid-train", 2, 1): 5.0,
}


def test_table_gives_seconds_and_the_ratio_to_the_first_thread_count():
    lines = format_table(_rows(FAKE), [1, 2], load=1).splitlines()
    assert lines[0] == (
        "workload | idle, 1 thr (s) | idle, 2 thr (s) | idle, 2 vs 1 thr"
        " | busy, 1 thr (s) | busy, 2 thr (s) | busy, 2 vs 1 thr"
    )
    assert lines[1] == "sinusoid-train | 2.00 | 1.00 | 0.50x time | 2.00 | 5.00 | 2.50x time"
    assert len(lines) == 2


def test_main_prints_the_table_and_writes_json(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(workloads, threads, load, repeats):
        calls.append((workloads, threads, load, repeats))
        return _rows(FAKE)

    monkeypatch.setattr(bench_threads, "run", fake_run)
    out = tmp_path / "sub" / "threads.json"
    assert main(["--workloads", "sinusoid-train", "--repeats", "2", "--json", str(out)]) == 0
    assert calls == [(["sinusoid-train"], [1, 2], 1, 2)]
    printed = capsys.readouterr().out
    assert "sinusoid-train | 2.00 | 1.00 | 0.50x time" in printed
    report = json.loads(out.read_text())
    assert report["load"] == 1 and report["repeats"] == 2
    assert report["workloads"] == {"sinusoid-train": WORKLOADS["sinusoid-train"]}
    assert report["results"] == _rows(FAKE)
