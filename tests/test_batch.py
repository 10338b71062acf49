"""TaskBatch, the algorithm's input: malformed meta-batches fail on construction, with a
message that names the bad part; sub-batches and device moves keep the parts together."""

from __future__ import annotations

import pytest
import torch

from mamllib.batch import TaskBatch


def parts(T=2, ks=3, q=4, x_feat=(1,), y_feat=(1,)):
    return {
        "x_support": torch.zeros(T, ks, *x_feat),
        "y_support": torch.zeros(T, ks, *y_feat),
        "x_query": torch.zeros(T, q, *x_feat),
        "y_query": torch.zeros(T, q, *y_feat),
    }


def test_task_batch_valid():
    b = TaskBatch(**parts())
    assert b.num_tasks == 2


@pytest.mark.parametrize("name", ["x_support", "y_support", "x_query", "y_query"])
def test_task_batch_different_num_tasks(name):
    p = parts()
    p[name] = torch.zeros(3, *p[name].shape[1:])
    with pytest.raises(ValueError, match=rf"number of tasks T.*'{name}': \(3,"):
        TaskBatch(**p)


@pytest.mark.parametrize("split", ["support", "query"])
def test_task_batch_x_y_count_mismatch(split):
    p = parts()
    p[f"y_{split}"] = torch.zeros(2, 9, 1)
    with pytest.raises(
        ValueError,
        match=rf"x_{split} and y_{split} disagree on the number of examples.*\(2, 9, 1\)",
    ):
        TaskBatch(**p)


def test_task_batch_input_feature_mismatch():
    p = parts()
    p["x_query"] = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match=r"same example shape.*x_query \(2, 4, 3\)"):
        TaskBatch(**p)


def test_task_batch_target_feature_mismatch():
    p = parts()
    p["y_support"] = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match=r"same example shape.*y_support \(2, 3, 2\)"):
        TaskBatch(**p)


def test_task_batch_no_support_examples():
    with pytest.raises(ValueError, match=r"at least one support example"):
        TaskBatch(**parts(ks=0))


def test_task_batch_missing_task_dimension():
    p = parts()
    p["x_support"] = torch.zeros(3)
    with pytest.raises(
        ValueError, match=r"x_support must have shape \[T, examples, \.\.\.\], got \(3,\)"
    ):
        TaskBatch(**p)


def test_task_batch_not_a_tensor():
    p = parts()
    p["y_query"] = [[0.0]]
    with pytest.raises(TypeError, match=r"y_query must be a tensor, got list"):
        TaskBatch(**p)


def test_task_batch_no_query_examples():
    with pytest.raises(
        ValueError, match=r"at least one query example per task, got x_query \(2, 0, 1\)"
    ):
        TaskBatch(**parts(q=0))


def test_task_batch_indexing_keeps_the_task_dimension_and_the_info():
    p = parts(T=3)
    p["x_support"] = torch.arange(3.0).view(3, 1, 1).expand(3, 3, 1)
    b = TaskBatch(**p, info={"amplitude": torch.tensor([1.0, 2.0, 3.0])})
    one, last, two = b[1], b[-1], b[:2]
    assert one.num_tasks == last.num_tasks == 1 and two.num_tasks == 2
    assert one.x_support[0, 0, 0] == 1.0 and last.x_support[0, 0, 0] == 2.0
    assert one.info["amplitude"].tolist() == [2.0] and last.info["amplitude"].tolist() == [3.0]
    assert b.to("cpu") is b  # already there: no copy
