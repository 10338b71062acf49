"""``mamllib.workloads``: the paper's shapes, the same θ and batch on every build."""

from __future__ import annotations

import pytest
import torch

from mamllib.workloads import WORKLOADS, build, meta_iteration, parse_workloads


def test_parse_keeps_order_and_drops_repeats():
    assert [w.name for w in parse_workloads("W3, W1,W3")] == ["W3", "W1"]


@pytest.mark.parametrize("spec", ["W1,NOPE", ",", ""])
def test_parse_names_the_unknown_and_lists_the_valid(spec):
    with pytest.raises(ValueError) as exc:
        parse_workloads(spec)
    assert all(name in str(exc.value) for name in WORKLOADS)


@pytest.mark.parametrize(
    "name, support, query",
    [
        ("W1", (25, 10, 1), (25, 10, 1)),
        ("W3", (32, 5, 1, 28, 28), (32, 75, 1, 28, 28)),
        ("W4", (16, 20, 1, 28, 28), (16, 300, 1, 28, 28)),
        ("T1-5w1s", (32, 5, 1, 28, 28), (32, 5, 1, 28, 28)),
        ("T1-5w5s", (32, 25, 1, 28, 28), (32, 5, 1, 28, 28)),
        ("T1-20w1s", (16, 20, 1, 28, 28), (16, 20, 1, 28, 28)),
        ("T1-20w5s", (16, 100, 1, 28, 28), (16, 20, 1, 28, 28)),
    ],
)
def test_batches_have_the_papers_shapes(name, support, query):
    w = WORKLOADS[name]
    batch = w.make_batch(w.meta_batch_size, torch.Generator().manual_seed(0))
    assert tuple(batch.x_support.shape) == support
    assert tuple(batch.x_query.shape) == query


def test_build_is_deterministic_and_in_the_requested_dtype():
    a, b = (build(WORKLOADS["W1"], torch.device("cpu"), torch.float64) for _ in range(2))
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert p.dtype == torch.float64 and torch.equal(p, q)
    assert a.batch.x_support.dtype == torch.float64
    assert torch.equal(a.batch.x_query, b.batch.x_query)


def test_meta_iteration_updates_theta():
    w = WORKLOADS["W1"]
    setup = build(w, torch.device("cpu"))
    before = [p.detach().clone() for p in setup.model.parameters()]
    meta_iteration(w, setup, "loop")
    assert any(not torch.equal(p, q) for p, q in zip(before, setup.model.parameters()))


def test_table1_settings_are_the_papers():
    """The paper's Omniglot settings (Section 5.2, Table 1): second-order; 5-way α = 0.4, one
    inner step, 32 tasks; 20-way α = 0.1, five inner steps, 16 tasks."""
    t1 = [w for name, w in WORKLOADS.items() if name.startswith("T1-")]
    assert [w.name for w in t1] == ["T1-5w1s", "T1-5w5s", "T1-20w1s", "T1-20w5s"]
    for w in t1:
        five = w.name.startswith("T1-5w")
        assert (w.inner_lr, w.steps, w.meta_batch_size) == ((0.4, 1, 32) if five else (0.1, 5, 16))
        assert w.first_order is False and w.build_model().head.out_features == (5 if five else 20)
