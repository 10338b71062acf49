"""``mamllib.cost``: the saved-tensor memory is exact, and behaves as the theory says.

The memory count (saved-tensor hooks) is checked against two independent references:
a walk over the autograd graph that reads every node's saved tensors, and a count by
hand for a one-hidden-layer MLP. No timing assertions: the CI machine is small and shared.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mamllib import cost
from mamllib.maml import meta_loss
from mamllib.models import MLP
from mamllib.tasks.sinusoid import SinusoidTasks
from mamllib.workloads import WORKLOADS, build

HIDDEN, K_SUPPORT, K_QUERY, TASKS = 8, 5, 7, 3


def tiny(steps: int, first_order: bool):
    """A 1-8-1 ReLU MLP on sinusoid tasks: small enough to count by hand."""
    return dataclasses.replace(
        WORKLOADS["W1"],
        build_model=lambda: MLP((1, HIDDEN, 1)),
        make_batch=lambda t, g: SinusoidTasks().sample(t, K_SUPPORT, K_QUERY, generator=g),
        steps=steps,
        first_order=first_order,
        meta_batch_size=TASKS,
    )


def _wrapped_number(t: torch.Tensor) -> bool:
    # A Python scalar in an operation (2 / n in mse_loss's backward) becomes a 0-dim
    # float64 tensor that autograd saves without calling the hooks: 8 bytes, left out by
    # cost.saved_memory and so here too. The model is float32, so nothing else is float64.
    return t.dim() == 0 and t.dtype == torch.float64


def graph_saved_bytes(workload) -> int:
    """The reference: unique storages of every tensor saved on a node reachable from the
    meta-loss, read from the nodes' ``_saved_*`` attributes (no hooks involved)."""
    setup = build(workload, torch.device("cpu"))
    params, buffers = dict(setup.model.named_parameters()), dict(setup.model.named_buffers())
    b = setup.batch
    loss = meta_loss(
        setup.model, params, b, workload.loss_fn, inner_lr=workload.inner_lr,
        steps=workload.steps, first_order=workload.first_order, path="loop", buffers=buffers,
    ).loss  # fmt: skip
    existing = {
        t.untyped_storage().data_ptr()
        for t in (*params.values(), b.x_support, b.y_support, b.x_query, b.y_query)
    }
    storages, seen, stack = {}, set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for attr in dir(node):
            if attr.startswith("_saved_"):
                value = getattr(node, attr)
                for t in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(t, torch.Tensor) and not _wrapped_number(t):
                        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        stack.extend(fn for fn, _ in node.next_functions)
    return sum(n for ptr, n in storages.items() if ptr not in existing)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_saved_bytes_equal_a_walk_over_the_graph(steps, first_order):
    w = tiny(steps, first_order)
    assert cost.saved_memory(w)["saved_bytes"] == graph_saved_bytes(w) > 0


def test_first_order_saved_bytes_by_hand():
    # First-order, one step: the inner gradient's graph is freed at once, so only the
    # query forward of each task at θ' is kept. Per task: the first addmm saves nothing
    # (x_query belongs to the batch, and layer 1's weight would only be needed for a
    # gradient with respect to x_query, which nothing asks for); ReLU saves its output
    # [7, 8], which the second addmm saves too, with its weight [1, 8]; mse_loss the
    # prediction [7, 1] (the target belongs to the batch). θ' − α·g with a constant g
    # saves nothing.
    per_task = K_QUERY * HIDDEN + HIDDEN + K_QUERY
    assert cost.saved_memory(tiny(1, True))["saved_bytes"] == TASKS * per_task * 4


def test_second_order_grows_exactly_linearly_first_order_stays_flat():
    saved = {
        fo: [cost.saved_memory(tiny(s, fo))["saved_bytes"] for s in range(1, 6)]
        for fo in (False, True)
    }
    so_steps = cost.increments(saved[False])
    assert all(d > 0 for d in so_steps)
    assert len(set(so_steps)) == 1, f"second-order increments differ: {so_steps}"
    assert cost.increments(saved[True]) == [0, 0, 0, 0]
    assert saved[True][0] < saved[False][0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cost.measure("W1", 0), "max_steps must be >= 1, got 0"),
        (lambda: cost.measure("NOPE", 3), "'NOPE'"),
        (lambda: cost.workload_for("W1", steps=0, first_order=False), "got 0"),
        (lambda: cost.measure("W1", 2, meta_batch_size=0), "meta_batch_size must be >= 1, got 0"),
    ],
)
def test_bad_input_is_named_before_any_work(monkeypatch, call, message):
    def work(*args, **kwargs):
        raise AssertionError("measured before checking the arguments")

    monkeypatch.setattr(cost, "saved_memory", work)
    monkeypatch.setattr(cost, "time_iterations", work)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()
