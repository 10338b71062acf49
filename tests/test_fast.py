"""The speed paths (``mamllib.fast``) give the core's numbers.

The same independent references as test_maml.py (``maml_references``: finite differences,
the explicit Hessian of one-step MAML, hand-written SGD, in float64), and the core's own
``"loop"`` path, check ``"hybrid"`` and ``"hybrid"`` split across two CPU threads
("hybrid-threads"; the worker threads really run the tasks, see ``meta_loss_on``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from maml_references import (
    ALPHA,
    check_class_labels_for_image_inputs_are_fine,
    check_cuda_matches_cpu,
    check_first_and_second_order_against_explicit_hessian,
    check_meta_sgd_learns_inner_lrs,
    check_meta_sgd_lr_gradient_against_finite_differences,
    check_paths_equal_loop,
    check_second_order_against_finite_differences,
    check_targets_that_would_broadcast,
    check_zero_steps_is_the_plain_multitask_gradient,
    sinusoid_batch,
    tiny_mlp,
)
from torch import nn

import mamllib.maml
from mamllib import MLP, meta_loss
from mamllib.fast import choose_path, hybrid_meta_loss
from mamllib.maml import resolve_path
from mamllib.models import Conv4

FAST_PATHS = ["hybrid", "hybrid-threads"]


@pytest.mark.parametrize("path", FAST_PATHS)
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_meta_gradient_matches_finite_differences(path, steps):
    check_second_order_against_finite_differences(path, steps)


@pytest.mark.parametrize("path", FAST_PATHS)
@pytest.mark.parametrize("num_tasks", [1, 4])
def test_first_and_second_order_against_explicit_hessian(path, num_tasks):
    check_first_and_second_order_against_explicit_hessian(path, num_tasks)


@pytest.mark.parametrize("meta_sgd", [False, True], ids=["float-lr", "meta-sgd"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("steps", [0, 1, 3])
def test_every_speed_path_equals_loop(steps, first_order, meta_sgd):
    check_paths_equal_loop(FAST_PATHS, steps, first_order, meta_sgd)


@pytest.mark.parametrize("path", FAST_PATHS)
def test_meta_sgd_lr_gradient_matches_finite_differences(path):
    check_meta_sgd_lr_gradient_against_finite_differences(path)


@pytest.mark.parametrize("path", FAST_PATHS)
@pytest.mark.parametrize("first_order", [False, True])
def test_zero_steps_is_the_plain_multitask_gradient(path, first_order):
    check_zero_steps_is_the_plain_multitask_gradient(path, first_order)


def test_meta_sgd_learns_inner_lrs():
    check_meta_sgd_learns_inner_lrs("hybrid")


@pytest.mark.parametrize("path", FAST_PATHS)
@pytest.mark.parametrize("steps", [0, 1])
def test_meta_loss_targets_that_would_broadcast(path, steps):
    check_targets_that_would_broadcast(path, steps)


def test_class_labels_for_image_inputs_are_fine():
    check_class_labels_for_image_inputs_are_fine("hybrid")


@pytest.mark.parametrize("path", FAST_PATHS)
def test_without_a_meta_gradient_hybrid_only_evaluates_and_equals_loop(path):
    """Under ``torch.no_grad`` (evaluation) the hybrid path computes no gradient, and its
    losses are the loop's."""
    model, batch = tiny_mlp(seed=40), sinusoid_batch(5, seed=41)
    params = dict(model.named_parameters())
    kwargs = {"inner_lr": ALPHA, "steps": 2}
    with torch.no_grad():
        fast = meta_loss(model, params, batch, F.mse_loss, path="hybrid", **kwargs)
    reference = meta_loss(model, params, batch, F.mse_loss, path="loop", **kwargs)
    assert not fast.loss.requires_grad
    torch.testing.assert_close(fast.query_losses, reference.query_losses, rtol=1e-12, atol=0)
    torch.testing.assert_close(fast.support_losses, reference.support_losses, rtol=1e-12, atol=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    check_cuda_matches_cpu("hybrid")


# ----------------------------------------------------------------------------- "auto"


def test_auto_is_hybrid_for_conv_nets_on_the_cpu_and_vmap_otherwise():
    conv, mlp = Conv4(5), MLP((1, 8, 1))
    assert choose_path(conv, "cpu") == "hybrid"
    assert choose_path(mlp, "cpu") == "vmap"
    assert choose_path(conv, "cuda") == "vmap"
    assert choose_path(nn.Sequential(nn.Flatten(), nn.Conv1d(1, 2, 3)), torch.device("cpu")) == (
        "hybrid"
    )
    # importing mamllib registered the path and the choice with the core
    assert mamllib.maml.SPEED_PATHS["hybrid"] is hybrid_meta_loss
    assert resolve_path("auto", conv, "cpu") == "hybrid"
    assert resolve_path("auto", mlp, "cpu") == "vmap"
    assert resolve_path("loop", conv, "cpu") == "loop"
