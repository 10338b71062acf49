"""The Omniglot chapter's panels draw a real task: its episode, a diverged adaptation (all
wrong, no label), and an image grid."""

import dataclasses
import math

import torch

from mamllib.experiments.omniglot import OmniglotConfig
from mamllib.paper.omniglot import meta_test_episodes
from mamllib.viz.images import plot_adaptation, plot_episode, plot_image_grid


def test_figures_draw():
    # One 5-way 1-shot test task with 5 query images per class, as the dashboard shows it.
    batch = meta_test_episodes(dataclasses.replace(OmniglotConfig(), eval_query=5), 1)
    assert plot_episode(batch).get_xticklabels()[0].get_text().startswith("support")
    probs = torch.full((25, 5), math.nan)  # a diverged adaptation draws as all wrong
    ax = plot_adaptation(batch.x_query[0], batch.y_query[0], probs)
    assert {t.get_text() for t in ax.texts} == {"?"}
    plot_image_grid(batch.x_query[0].view(5, 5, 1, 28, 28), row_labels=list("abcde"))
