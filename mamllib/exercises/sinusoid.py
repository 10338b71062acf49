"""The graders of chapter 1 (sinusoid regression); ``mamllib.exercises`` explains the rules.

Each draws its own small problems — a random MLP, random sine-wave tasks, a random α —
and compares the student's function with mamllib's ``meta_loss``, ``hessian_term`` and
``cost``, or with autograd through the inner step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mamllib import cost
from mamllib.analysis import flat, hessian_term
from mamllib.batch import TaskBatch
from mamllib.exercises import (
    PROBLEMS,
    Wrong,
    call,
    choice,
    compare,
    exercise,
    integer,
    uniform,
)
from mamllib.maml import meta_loss
from mamllib.models import MLP
from mamllib.tasks.sinusoid import SinusoidTasks


def _problem(generator: torch.Generator):
    """A random MLP (θ its parameters), a random meta-batch of sine waves and a random α."""
    hidden = integer(4, 12, generator)
    model = MLP((1, hidden, hidden, 1))
    tasks = integer(2, 5, generator)
    batch = SinusoidTasks().sample(
        tasks, integer(3, 10, generator), integer(3, 10, generator), generator=generator
    )
    return model, dict(model.named_parameters()), batch, uniform(0.02, 0.3, generator)


def _meta_gradient(model, theta, batch, alpha, first_order: bool) -> Tensor:
    loss = meta_loss(model, theta, batch, F.mse_loss, inner_lr=alpha, steps=1,
                     first_order=first_order, path="loop").loss  # fmt: skip
    return flat(dict(zip(theta, torch.autograd.grad(loss, list(theta.values())))))


@exercise("the first-order meta-gradient")
def first_order_meta_gradient(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        model, theta, batch, alpha = _problem(generator)
        mine = call(answer, model, theta, batch, alpha)
        reference = _meta_gradient(model, theta, batch, alpha, first_order=True)
        at_theta = meta_loss(model, theta, batch, F.mse_loss, inner_lr=alpha, steps=0).loss
        known = {
            "this is the second-order meta-gradient: treat the inner gradient as a constant "
            "(detach θ' before the query loss)": _meta_gradient(model, theta, batch, alpha, False),
            "this is the query gradient at θ: evaluate it at the adapted θ' = θ − α∇L_s(θ)": flat(
                dict(zip(theta, torch.autograd.grad(at_theta, list(theta.values()))))
            ),
            "this is the sum over tasks: average the tasks' gradients": batch.num_tasks * reference,
        }
        compare(mine, reference, "the meta-gradient", known=known)
    return f"matches mamllib's first_order=True gradient on {PROBLEMS} random networks and tasks"


def _hessian_ratio(model, theta, batch, alpha) -> tuple[float, float]:
    terms = [
        flat(hessian_term(model, theta, batch.x_support[i], batch.y_support[i], batch.x_query[i],
                          batch.y_query[i], F.mse_loss, inner_lr=alpha)["hessian_term"])
        for i in range(batch.num_tasks)
    ]  # fmt: skip
    term = torch.stack(terms).mean(0).norm()
    first = _meta_gradient(model, theta, batch, alpha, first_order=True).norm()
    return (term / first).item(), term.item()


@exercise("the Hessian term's size")
def hessian_ratio(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        model, theta, batch, alpha = _problem(generator)
        mine = call(answer, model, theta, batch, alpha)
        reference, term = _hessian_ratio(model, theta, batch, alpha)
        known = {
            "that is ‖Hessian term‖ alone: divide by ‖first-order gradient‖": term,
            "upside down: ‖Hessian term‖ / ‖first-order gradient‖": 1 / reference,
        }
        compare(mine, reference, "the ratio", known=known, rtol=1e-3)
    return f"matches mamllib's hessian_term on {PROBLEMS} random networks, tasks and α"


@exercise("how the Hessian term scales with α")
def hessian_ratio_trend(answer, generator: torch.Generator) -> str:
    return choice(answer, "a", {
        "b": "look at the formula: the term is α times ∇²L_s ∇L_q(θ'), and as α → 0, θ' → θ",
        "c": "the term carries a factor α; compare your ratios for α = 0.0001 and 0.1",
    })  # fmt: skip


@exercise("a train-train batch")
def train_train(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        k, q = integer(2, 6, generator), integer(7, 12, generator)
        batch = SinusoidTasks().sample(integer(2, 5, generator), k, q, generator=generator)
        original = [t.clone() for t in (batch.x_support, batch.y_support)]
        mine = call(answer, batch)
        if not isinstance(mine, TaskBatch):
            raise Wrong(f"return a TaskBatch, got {type(mine).__name__}")
        support = (mine.x_support, mine.y_support)
        if any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(support, original)):
            raise Wrong("keep the support set as it is")
        query = (mine.x_query, mine.y_query)
        if any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(query, original)):
            raise Wrong("the query set must be the support set: the same x and y")
    return f"the query set is the support set on {PROBLEMS} random batches"


@exercise("what a train-train task rewards")
def train_train_rewards(answer, generator: torch.Generator) -> str:
    return choice(answer, "a", {
        "b": "the query loss only sees the support points: nothing asks θ' to be right between them",
        "c": "with the query = the support, the outer loop grades θ' on the points it adapted to",
    })  # fmt: skip


def _saved_bytes(steps: int, meta_batch_size: int) -> int:
    workload = cost.workload_for("W1", steps=steps, first_order=False,
                                 meta_batch_size=meta_batch_size)  # fmt: skip
    return cost.saved_memory(workload)["saved_bytes"]


@exercise("the memory of k second-order steps")
def predict_saved_bytes(answer, generator: torch.Generator) -> str:
    tasks, steps = integer(1, 4, generator), integer(3, 6, generator)
    cases = [((_saved_bytes(1, tasks), _saved_bytes(2, tasks), steps), _saved_bytes(steps, tasks))]
    for _ in range(PROBLEMS):
        one = integer(1_000, 100_000, generator)
        two = one + integer(1, 50_000, generator)
        k = integer(3, 20, generator)
        cases.append(((one, two, k), one + (k - 1) * (two - one)))
    for (one, two, k), measured in cases:
        mine = call(answer, one, two, k)
        everything_grows = (
            "only A + G grows with each step: the query's Q is saved once, whatever k"
        )
        compare(mine, measured, f"your prediction for k = {k} (from {one:,} and {two:,} bytes)",
                known={everything_grows: one * k}, rtol=0, atol=0.5)  # fmt: skip
    return (
        f"predicts cost.saved_memory for {steps} steps ({tasks} task{'s' * (tasks > 1)}, measured) "
        f"and {PROBLEMS} made-up pairs"
    )


# --------------------------------------------------------------- the missing identity


def tiny_model(theta: Tensor, x: Tensor) -> Tensor:
    """y = θ₂ tanh(θ₀ x + θ₁) + θ₃: four parameters, as in the exercise."""
    return theta[2] * torch.tanh(theta[0] * x + theta[1]) + theta[3]


def _tiny_problem(generator: torch.Generator):
    tasks = SinusoidTasks().sample(1, integer(3, 8, generator), integer(3, 8, generator),
                                   generator=generator)  # fmt: skip
    xs, ys, xq, yq = (t[0, :, 0].double() for t in (tasks.x_support, tasks.y_support,
                                                     tasks.x_query, tasks.y_query))  # fmt: skip

    def loss_s(theta: Tensor) -> Tensor:
        return (tiny_model(theta, xs) - ys).pow(2).mean()

    def loss_q(theta: Tensor) -> Tensor:
        return (tiny_model(theta, xq) - yq).pow(2).mean()

    theta = torch.randn(4, generator=generator, dtype=torch.float64)
    return loss_s, loss_q, theta, uniform(0.05, 0.5, generator)


def _gradients(loss_s, loss_q, theta: Tensor, alpha: float) -> dict[str, Tensor]:
    theta = theta.detach().requires_grad_()
    (g_s,) = torch.autograd.grad(loss_s(theta), theta, create_graph=True)
    adapted = theta - alpha * g_s
    (meta,) = torch.autograd.grad(loss_q(adapted), theta, retain_graph=True)
    (g_q,) = torch.autograd.grad(loss_q(adapted), adapted, retain_graph=True)
    (hvp,) = torch.autograd.grad(g_s, theta, grad_outputs=g_q.detach())
    return {"meta": meta, "first": g_q.detach(), "misread": -alpha * hvp}


@exercise("gradients by finite differences")
def finite_difference_gradient(answer, generator: torch.Generator) -> str:
    for _ in range(PROBLEMS):
        n = integer(2, 6, generator)
        a, b = (torch.randn(n, n, generator=generator, dtype=torch.float64) for _ in range(2))

        def f(theta: Tensor, a=a, b=b) -> Tensor:
            return torch.sin(a @ theta).sum() + (b @ theta).pow(2).sum() / 4

        theta = torch.randn(n, generator=generator, dtype=torch.float64)
        mine = call(answer, f, theta.clone())
        (reference,) = torch.autograd.grad(f(theta.requires_grad_()), theta)
        compare(mine, reference, "the finite-difference gradient", rtol=1e-5, atol=1e-7)
    return f"matches autograd on {PROBLEMS} random functions (to 1e-5)"


def _grade_formula(answer, generator, key: str, known_keys: dict[str, str]) -> None:
    for _ in range(PROBLEMS):
        loss_s, loss_q, theta, alpha = _tiny_problem(generator)
        mine = call(answer, loss_s, loss_q, theta.clone(), alpha)
        grads = _gradients(loss_s, loss_q, theta, alpha)
        known = {hint: grads[k] for hint, k in known_keys.items()}
        compare(mine, grads[key], "the gradient", known=known, rtol=1e-6, atol=1e-9)


@exercise("the meta-gradient (I − α∇²L_s) ∇L_q(θ')")
def meta_gradient(answer, generator: torch.Generator) -> str:
    _grade_formula(answer, generator, "meta", {
        "this is −α∇²L_s(θ) ∇L_q(θ') alone: you dropped the identity in ∂θ'/∂θ = I − α∇²L_s":
            "misread",
        "this is the first-order part ∇L_q(θ') alone: add the Hessian term": "first",
    })  # fmt: skip
    return f"matches autograd through the inner step on {PROBLEMS} random tiny problems"


@exercise("the misread formula −α∇²L_s ∇L_q(θ')")
def misread_meta_gradient(answer, generator: torch.Generator) -> str:
    _grade_formula(answer, generator, "misread", {
        "this is the true meta-gradient: here compute the formula without the identity": "meta",
    })  # fmt: skip
    return f"matches −α∇²L_s(θ)∇L_q(θ') on {PROBLEMS} random tiny problems"


@exercise("which formula is the meta-gradient")
def which_is_the_meta_gradient(answer, generator: torch.Generator) -> str:
    return choice(answer, "a", {
        "b": "compare both with the finite differences; and as α → 0 the true meta-gradient "
             "becomes ∇L_q(θ), while −α∇²L_s∇L_q vanishes",
    })  # fmt: skip
