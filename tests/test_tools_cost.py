"""``python -m mamllib.tools.cost``: it writes the report and its figure, and names bad input.

No timing assertions: the CI machine is small and shared.
"""

from __future__ import annotations

import json

import matplotlib.image
import pytest
import torch

from mamllib.tools import cost


def test_cli_quick_writes_json_and_png(tmp_path, capsys):
    out, png = tmp_path / "cost.json", tmp_path / "cost.png"
    argv = ["--workload", "W1", "--meta-batch-size", "2", "--quick"]
    assert cost.main([*argv, "--json", str(out), "--figure", str(png)]) == 0

    report = json.loads(out.read_text())
    assert report["workload"] == "W1" and report["meta_batch_size"] == 2
    assert report["path"] == "loop" and report["torch"] == torch.__version__
    assert report["hardware"].startswith("CPU") and report["settings"]["quick"] is True
    rows = report["results"]
    assert {(r["order"], r["steps"]) for r in rows} == {
        (o, s) for o in ("second-order", "first-order") for s in (1, 2, 3)
    }
    for r in rows:
        assert r["ms_per_iter"] > 0 and len(r["ms_samples"]) == 1
        assert r["saved_mb"] == pytest.approx(r["saved_bytes"] / 2**20)
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert "second-order" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, named", [(["--workload", "NOPE"], "NOPE"), (["--max-steps", "0"], "got 0")]
)
def test_cli_bad_input(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        cost.main(argv)
    assert exc.value.code != 0
    assert named in capsys.readouterr().err
