"""The graders of chapter 2 (Omniglot); ``mamllib.exercises`` explains the rules.

The problems are random: a small ``Conv4`` with random weights, random 28×28 "images"
and labels shuffled within each task, so an answer cannot rely on the chapter's data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mamllib.baselines import pixel_nearest_neighbour_accuracy
from mamllib.batch import TaskBatch
from mamllib.exercises import PROBLEMS, Wrong, call, compare, exercise, integer, uniform
from mamllib.maml import MAML, MAMLConfig, adapt
from mamllib.models import Conv4


def _labels(n_way: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    labels = torch.arange(n_way).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=generator)]


def _task(n_way: int, k_shot: int, k_query: int, generator: torch.Generator):
    xs = torch.rand(n_way * k_shot, 1, 28, 28, generator=generator)
    xq = torch.rand(n_way * k_query, 1, 28, 28, generator=generator)
    return xs, _labels(n_way, k_shot, generator), xq, _labels(n_way, k_query, generator)


@exercise("one inner step for classification")
def inner_step(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        n_way = integer(2, 5, generator)
        model = Conv4(n_way, hidden=8)
        theta = dict(model.named_parameters())
        xs, ys, _, _ = _task(n_way, integer(1, 3, generator), 1, generator)
        alpha = uniform(0.1, 1.0, generator)
        mine = call(answer, model, theta, xs, ys, alpha)
        reference, _ = adapt(model, theta, xs, ys, F.cross_entropy, inner_lr=alpha, steps=1)
        ascent = {k: 2 * theta[k] - v for k, v in reference.items()}  # θ + α∇L
        known = {
            "θ' went uphill: step against the gradient, θ − α∇L": ascent,
            "θ' is still θ: take the step θ − α∇L(θ)": theta,
        }
        compare(mine, reference, "θ'", known=known)
    return f"matches mamllib.adapt on {PROBLEMS} random networks and tasks"


@exercise("pixel-space nearest neighbour")
def nearest_neighbour_accuracy(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        n_way, k_shot = integer(2, 5, generator), integer(1, 3, generator)
        k_query = integer(2, 5, generator)
        tasks = [_task(n_way, k_shot, k_query, generator) for _ in range(3)]
        batch = TaskBatch(*(torch.stack(parts) for parts in zip(*tasks)))
        mine = call(answer, batch)
        distances = torch.cdist(batch.x_query.flatten(2), batch.x_support.flatten(2))
        farthest = batch.y_support.gather(1, distances.argmax(-1)) == batch.y_query
        known = {"this is the farthest image's label: take the smallest distance (argmin)":
                 farthest.float().mean(1)}  # fmt: skip
        compare(mine, pixel_nearest_neighbour_accuracy(batch), "the accuracies", known=known)
    return f"matches pixel_nearest_neighbour_accuracy on {PROBLEMS} random meta-batches"


@exercise("one step from a zero head = the nearest centred prototype")
def prototype_predictions(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        n_way = integer(3, 5, generator)
        model = Conv4(n_way, hidden=8)
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
        learner = MAML(model, F.cross_entropy, MAMLConfig()).eval()
        xs, ys, xq, _ = _task(n_way, 1, integer(3, 6, generator), generator)

        def features(x: torch.Tensor, model=model) -> torch.Tensor:
            return model.features(x).mean((-2, -1))

        with torch.no_grad():
            mine = call(answer, features, xs, ys, xq)
        for alpha in (uniform(0.1, 1.0, generator), uniform(1.0, 10.0, generator)):
            adapted, _ = learner.adapt(xs, ys, steps=1, inner_lr=alpha)
            logits = learner(xq, adapted).detach().double()
            mine = torch.as_tensor(mine)
            if mine.shape != logits.shape[:1]:
                raise Wrong(f"expected one class per query image, shape {tuple(logits.shape[:1])}, "
                            f"got {tuple(mine.shape)}")  # fmt: skip
            chosen = logits.gather(1, mine.long().clamp(0, n_way - 1)[:, None])[:, 0]
            # a different class is only right where the step leaves a tie (to rounding)
            if (logits.max(1).values - chosen > 1e-5 * logits.abs().max()).any():
                raise Wrong(
                    f"your predictions differ from those of one step from a zero head (α = "
                    f"{alpha:.2f}): the step's logits are dot products of f(x_q) with the "
                    "centred support features (not distances); map the winner to its label"
                )
    return f"the predictions of one step from a zero head on {PROBLEMS} random networks"


@exercise("choosing α on validation tasks")
def choose_alpha(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        alphas = tuple(sorted({round(uniform(0.01, 2.0, generator), 3) for _ in range(5)}))
        table = {
            split: dict(zip(alphas, torch.rand(len(alphas), generator=generator).tolist()))
            for split in ("val", "test")
        }
        while max(table["val"], key=table["val"].get) == max(table["test"], key=table["test"].get):
            table["test"] = dict(zip(alphas, torch.rand(len(alphas), generator=generator).tolist()))
        asked = []

        def accuracy(alpha: float, split: str, table=table, asked=asked) -> float:
            """Mean accuracy after 3 steps with step size α on the ``split`` tasks."""
            if split not in table:
                raise ValueError(f"split must be 'val' or 'test', got {split!r}")
            asked.append(split)
            return table[split][alpha]

        mine = call(answer, accuracy, alphas)
        if "test" in asked:
            raise Wrong("you looked at the test tasks: choose α on the validation tasks only")
        best = max(table["val"], key=table["val"].get)
        if mine != best:
            raise Wrong(f"α = {mine} is not the best on the validation tasks among {alphas}")
    return f"picks the best α on the validation tasks, never looking at the test ones ({PROBLEMS} draws)"
