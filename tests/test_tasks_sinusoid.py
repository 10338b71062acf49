"""The sinusoid task distribution (``mamllib.tasks.sinusoid``) and ``mamllib.tasks.get_tasks``:
bad counts and ranges fail early, with a message that names the bad value."""

from __future__ import annotations

import math

import pytest

import mamllib.tasks
from mamllib import SinusoidTasks


@pytest.mark.parametrize("k", [0, -3])
def test_sinusoid_k_support_below_one(k):
    with pytest.raises(ValueError, match=rf"k_support \(K\) must be >= 1, got {k}"):
        SinusoidTasks().sample(4, k, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_tasks": 0}, ValueError, r"num_tasks must be >= 1, got 0"),
        ({"k_query": 0}, ValueError, r"k_query must be >= 1, got 0"),
        ({"k_support": 2.0}, TypeError, r"k_support \(K\) must be an int.*2\.0"),
        ({"num_tasks": True}, TypeError, r"num_tasks must be an int.*True"),
    ],
)
def test_sinusoid_bad_counts(kwargs, error, match):
    args = {"num_tasks": 4, "k_support": 5, "k_query": 5} | kwargs
    with pytest.raises(error, match=match):
        SinusoidTasks().sample(**args)


@pytest.mark.parametrize("field", ["amplitude", "phase", "x_range"])
@pytest.mark.parametrize("bounds", [(1.0, 1.0), (2.0, 1.0), (0.0, math.inf)])
def test_sinusoid_bad_ranges(field, bounds):
    with pytest.raises(ValueError, match=rf"{field} must be a finite range.*{bounds[1]}"):
        SinusoidTasks(**{field: bounds})


def test_get_tasks_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'nope'.*valid names.*'sinusoid'"):
        mamllib.tasks.get_tasks("nope")


def test_get_tasks_known_name():
    assert isinstance(mamllib.tasks.get_tasks("sinusoid"), SinusoidTasks)
