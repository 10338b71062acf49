"""Baselines: the pixel-space nearest neighbour against a plain loop."""

import pytest

from mamllib.baselines import pixel_nearest_neighbour_accuracy
from mamllib.experiments.omniglot import OmniglotConfig, meta_test_episodes


def test_pixel_nearest_neighbour_equals_a_loop():
    batch = meta_test_episodes(OmniglotConfig(), 8)
    expected = []
    for xs, ys, xq, yq in zip(batch.x_support, batch.y_support, batch.x_query, batch.y_query):
        correct = 0
        for x, y in zip(xq, yq):
            distances = [((x - s) ** 2).sum().item() for s in xs]
            correct += int(ys[distances.index(min(distances))] == y)
        expected.append(correct / len(yq))
    assert pixel_nearest_neighbour_accuracy(batch).tolist() == pytest.approx(expected)
