"""mamllib.exercises: every exercise passes its notebook's solution and rejects wrong answers.

The solutions are taken from the notebooks' ``solution`` cells (the graded functions and
values only, run in a namespace of mamllib's public names), so a notebook and its grader
cannot drift apart. Each wrong answer is a plausible mistake; it must get one ✗ line and
no exception, whatever it does — including raising.
"""

from __future__ import annotations

import ast
import json

import pytest
import torch
import torch.nn.functional as F

import mamllib
from mamllib import exercises
from mamllib.exercises import check, grade, registry
from mamllib.exercises.sinusoid import tiny_model
from mamllib.paths import NOTEBOOKS

SEEDS = (0, 1)


def _namespace() -> dict:
    names = {name: getattr(mamllib, name) for name in dir(mamllib) if not name.startswith("_")}
    return {**names, "torch": torch, "F": F, "mamllib": mamllib, "exercises": exercises}


def _solutions() -> dict[str, object]:
    """Exercise name -> the answer its notebook's solution cell grades."""
    answers = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if "solution" not in cell["metadata"].get("tags", []):
                continue
            source = "".join(cell["source"])
            tree = ast.parse(source)
            calls = [
                node.value
                for node in tree.body
                if isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "attr", None) == "grade"
            ]
            graded = {call.args[1].id: call.args[0].value for call in calls}
            namespace = _namespace()
            for node in tree.body:
                names = [node.name] if isinstance(node, ast.FunctionDef) else []
                if isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(name in graded for name in names):
                    exec(ast.get_source_segment(source, node), namespace)
            answers.update({exercise: namespace[name] for name, exercise in graded.items()})
    return answers


SOLUTIONS = _solutions()
EXERCISES = registry()


def _graded(capsys, name, answer, seed=0) -> str:
    grade(name, answer, seed=seed)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_every_exercise_is_graded_in_a_notebook():
    assert set(SOLUTIONS) == set(EXERCISES)
    assert len(EXERCISES) >= 12  # the eleven exercises (some with a question too) and the new one


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_notebook_solution_passes(capsys, name):
    for seed in SEEDS:
        line = _graded(capsys, name, SOLUTIONS[name], seed)
        assert line.startswith(f"✓ {EXERCISES[name][0]}: "), line


# ----------------------------------------------------------------------------- wrong answers


def _flat_grad(loss, theta):
    return mamllib.flat(dict(zip(theta, torch.autograd.grad(loss, list(theta.values())))))


def second_order_meta_gradient(model, theta, batch, alpha):
    loss = mamllib.meta_loss(model, theta, batch, F.mse_loss, inner_lr=alpha, steps=1).loss
    return _flat_grad(loss, theta)


def query_gradient_at_theta(model, theta, batch, alpha):
    loss = mamllib.meta_loss(model, theta, batch, F.mse_loss, inner_lr=alpha, steps=0).loss
    return _flat_grad(loss, theta)


def hessian_term_norm(model, theta, batch, alpha):
    return SOLUTIONS["hessian_ratio"](model, theta, batch, alpha) * query_gradient_norm(
        model, theta, batch, alpha
    )


def query_gradient_norm(model, theta, batch, alpha):
    loss = mamllib.meta_loss(model, theta, batch, F.mse_loss, inner_lr=alpha, steps=1,
                             first_order=True).loss  # fmt: skip
    return _flat_grad(loss, theta).norm().item()


def forward_difference(f, theta, eps=1e-3):
    return torch.stack([(f(theta + eps * e) - f(theta)) / eps for e in torch.eye(len(theta))])


def misread(loss_s, loss_q, theta, alpha):  # the misconception: the identity dropped
    adapted = theta - alpha * torch.func.grad(loss_s)(theta)
    return (
        -alpha
        * torch.func.jacrev(torch.func.grad(loss_s))(theta)
        @ torch.func.grad(loss_q)(adapted)
    )


def first_order_only(loss_s, loss_q, theta, alpha):
    return torch.func.grad(loss_q)(theta - alpha * torch.func.grad(loss_s)(theta))


def step_uphill(model, theta, x, y, alpha):
    loss = F.cross_entropy(torch.func.functional_call(model, theta, (x,)), y)
    grads = torch.autograd.grad(loss, list(theta.values()))
    return {name: p + alpha * g for (name, p), g in zip(theta.items(), grads)}


def farthest_neighbour(batch):
    distances = torch.cdist(batch.x_query.flatten(2), batch.x_support.flatten(2))
    return (batch.y_support.gather(1, distances.argmax(-1)) == batch.y_query).float().mean(1)


def nearest_prototype_by_distance(features, x_support, y_support, x_query):
    return y_support[torch.cdist(features(x_query), features(x_support)).argmin(-1)]


def support_index_not_label(features, x_support, y_support, x_query):
    support = features(x_support)
    return (features(x_query) @ (support - support.mean(0)).T).argmax(-1)


def swapped_kl(mu0, log_std0, mu1, log_std1):
    return SOLUTIONS["gaussian_kl"](mu1, log_std1, mu0, log_std0)


def unmasked_step(policy, theta, traj, adv, task, alpha):
    mean, log_std = torch.func.functional_call(policy, theta, (traj.observations[task],))
    logp = torch.distributions.Normal(mean, log_std.exp()).log_prob(traj.actions[task]).sum(-1)
    loss = -(logp * adv[task]).mean()  # counts the padding after each episode's end
    grads = torch.autograd.grad(loss, list(theta.values()))
    return {k: v.detach() - alpha * g for (k, v), g in zip(theta.items(), grads)}


def one_step_gain(policy, config, goal, seed):
    out = mamllib.evaluate_policy(policy, config, goal, seed=seed, episodes=20,
                                  inner_lrs=(0.1, 0.05))  # fmt: skip
    return (out.returns[0, 1] - out.returns[0, 0]).item()


def raises(*args):
    raise ValueError("shapes do not match")


def not_written(*args):
    raise NotImplementedError


def still_a_stub(*args):
    """The student copy's function: a docstring and `...`."""
    ...


WRONG = {
    "first_order_meta_gradient": [
        ("second-order where first-order is asked", second_order_meta_gradient, "second-order"),
        ("the query gradient at θ", query_gradient_at_theta, "at θ"),
        ("zeros", lambda model, theta, batch, alpha: torch.zeros(1), "shape"),
    ],
    "hessian_ratio": [
        ("‖Hessian term‖ alone", hessian_term_norm, "alone"),
        ("a constant", lambda *args: 1.0, "not what mamllib gives"),
    ],
    "hessian_ratio_trend": [("it shrinks", "b", "not (b)"), ("no such choice", "z", "one letter")],
    "train_train": [
        ("the batch unchanged", lambda batch: batch, "the query set must be the support set"),
        (
            "query and support swapped",
            lambda b: mamllib.TaskBatch(b.x_query, b.y_query, b.x_query, b.y_query),
            "support",
        ),  # fmt: skip
    ],
    "train_train_rewards": [("the whole wave", "b", "not (b)")],
    "predict_saved_bytes": [
        ("everything grows with k", lambda one, two, k: one * k, "Q is saved once"),
        ("off by one step", lambda one, two, k: one + k * (two - one), "not what mamllib gives"),
    ],
    "finite_difference_gradient": [
        ("a forward difference with a large ε", forward_difference, "not what mamllib gives"),
    ],
    "meta_gradient": [
        ("the misconception: the identity dropped", misread, "dropped the identity"),
        ("first-order only", first_order_only, "first-order part"),
    ],
    "misread_meta_gradient": [("the true meta-gradient", SOLUTIONS["meta_gradient"], "true")],
    "which_is_the_meta_gradient": [("the misconception", "b", "finite differences")],
    "inner_step": [
        ("a sign error", step_uphill, "uphill"),
        ("no step", lambda model, theta, x, y, alpha: dict(theta), "still θ"),
    ],
    "nearest_neighbour_accuracy": [("the farthest image", farthest_neighbour, "farthest")],
    "prototype_predictions": [
        ("a distance, not a dot product", nearest_prototype_by_distance, "not distances"),
        ("the support image's index, not its label", support_index_not_label, "label"),
    ],
    "choose_alpha": [
        (
            "chosen on the test tasks",
            lambda acc, alphas: max(alphas, key=lambda a: acc(a, "test")),
            "test tasks",
        ),  # fmt: skip
        ("the smallest α", lambda acc, alphas: min(alphas), "not the best"),
    ],
    "gaussian_kl": [("the arguments swapped", swapped_kl, "not symmetric")],
    "adapt_one_task": [("the mask ignored", unmasked_step, "not what mamllib gives")],
    "adaptation_gain": [("the gain of one step", one_step_gain, "one step")],
    "positive_alpha": [("it divides by α", "b", "not (b)")],
}


def test_every_exercise_has_wrong_answers():
    assert set(WRONG) == set(EXERCISES)


@pytest.mark.parametrize(
    ("name", "label", "answer", "hint"),
    [(name, *case) for name, cases in WRONG.items() for case in cases],
    ids=[f"{name}-{case[0]}" for name, cases in WRONG.items() for case in cases],
)
def test_a_wrong_answer_gets_one_cross_and_a_hint(capsys, name, label, answer, hint):
    for seed in SEEDS:
        line = _graded(capsys, name, answer, seed)
        assert line.startswith(f"✗ {EXERCISES[name][0]}: "), (label, line)
        assert hint in line, (label, line)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (raises, "your code raised ValueError: shapes do not match"),
        (not_written, "not written yet"),
        (still_a_stub, "returned None"),
        (..., "not answered yet"),
        ("a string", "expected a function"),
    ],
)
@pytest.mark.parametrize("name", ["first_order_meta_gradient", "inner_step", "adapt_one_task"])
def test_a_failing_or_missing_answer_is_a_cross_not_a_traceback(capsys, name, answer, message):
    line = _graded(capsys, name, answer)
    assert line.startswith("✗ ") and message in line, line


def test_compare_matches_dicts_by_key_and_names_a_wrong_shape():
    reference = {"w": torch.ones(2, 3), "b": torch.zeros(2)}
    exercises.compare({"b": torch.zeros(2), "w": torch.ones(2, 3)}, reference, "θ'")  # any order
    with pytest.raises(exercises.Wrong, match=r"θ'\['w'\] has shape \(3, 2\), expected \(2, 3\)"):
        exercises.compare({"w": torch.ones(3, 2), "b": torch.zeros(2)}, reference, "θ'")
    with pytest.raises(exercises.Wrong, match=r"should be a dict with keys \['b', 'w'\]"):
        exercises.compare({"w": torch.ones(2, 3)}, reference, "θ'")
    with pytest.raises(exercises.Wrong, match="relative error 1"):
        exercises.compare({"w": torch.zeros(2, 3), "b": torch.zeros(2)}, reference, "θ'")


def test_an_unknown_exercise_is_named(capsys):
    line = _graded(capsys, "inner_stp", len)
    assert line.startswith("✗ inner_stp: no such exercise") and "inner_step" in line


def test_grading_leaves_the_global_random_state_alone(capsys):
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    grade("inner_step", SOLUTIONS["inner_step"], seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_fresh_inputs_every_call_unless_seeded(capsys):
    seen = []

    def spy(model, theta, batch, alpha):
        seen.append(alpha)
        return SOLUTIONS["first_order_meta_gradient"](model, theta, batch, alpha)

    for seed in (None, None, 7, 7):
        grade("first_order_meta_gradient", spy, seed=seed)
    assert len(seen) == 4 * exercises.PROBLEMS
    first, second, third, fourth = (seen[i : i + 3] for i in range(0, 12, 3))
    assert first != second and third == fourth
    assert len(set(first)) == exercises.PROBLEMS  # several different problems per call


def test_the_grader_tiny_model_is_the_notebooks():
    cells = json.loads((NOTEBOOKS / "01_sinusoid.ipynb").read_text(encoding="utf-8"))["cells"]
    (setup,) = ["".join(c["source"]) for c in cells if c["id"] == "missing-identity-setup"]
    tree = ast.parse(setup)
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "tiny_model"]
    namespace = {"torch": torch}
    exec(ast.get_source_segment(setup, node), namespace)
    theta, x = torch.randn(4, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    assert torch.equal(namespace["tiny_model"](theta, x), tiny_model(theta, x))


# --------------------------------------------------------------------- check (in the text)


def test_check_passes_and_says_so(capsys):
    check("one step", {"w": torch.ones(2)}, {"w": torch.ones(2) + 1e-9})
    assert capsys.readouterr().out.startswith("✓ one step: matches mamllib")


@pytest.mark.parametrize(
    ("mine", "reference", "message"),
    [
        (
            {"w": torch.ones(2)},
            {"w": torch.zeros(2)},
            r"one step\['w'\]: differs from mamllib by up to 1",
        ),
        ({"w": torch.ones(2)}, {"v": torch.ones(2)}, r"expected a dict with keys \['v'\]"),
        (torch.ones(3), torch.ones(2), r"shape \(3,\), expected \(2,\)"),
    ],
)
def test_check_names_what_differs(mine, reference, message):
    with pytest.raises(AssertionError, match=message):
        check("one step", mine, reference)
