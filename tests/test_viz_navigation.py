"""The 2D-navigation dashboard, driven the way a student drives it, on the shipped policies.

The returns it shows are checked against independent references: ``evaluate_policy``
(Table 4's evaluation path) on the same goal, noise seed and α, the rewards of the
environment recomputed by hand from the paths the dashboard plots, and the exact optimal
return no policy can beat.
"""

import math

import ipywidgets as W
import pytest
import torch

from mamllib.experiments.navigation import evaluate_policy
from mamllib.paper.navigation import load_learners, optimal_returns
from mamllib.rl.env import GOAL_HIGH, GOAL_LOW, sample_goals
from mamllib.viz.navigation import SHOWN, NavigationDashboard
from mamllib.viz.plots import MAX_LIMIT

EPISODES = 4  # per step; the notebook shows 20, the returns are exact for any number
PAPER_LRS = (0.1, 0.05, 0.05)  # Table 4's protocol: α = 0.1, then 0.05


@pytest.fixture(scope="module")
def policies():
    return load_learners()  # the shipped MAML and pre-trained policies, and a random one


@pytest.fixture
def dashboard(policies, figures):
    return NavigationDashboard(policies, seed=0, episodes=EPISODES)


def _path_axes(fig):
    """Path axes of the figure, ``{(label, step): ax}``; the last axes is the return curve."""
    steps = len(fig.axes[:-1]) // len(SHOWN)
    return {(label, k): fig.axes[row * steps + k] for row, label in enumerate(SHOWN)
            for k in range(steps)}  # fmt: skip


def _goal_marker(ax):
    (star,) = [line for line in ax.lines if line.get_marker() == "*"]
    return float(star.get_xdata()[0]), float(star.get_ydata()[0])


def _returns_from_paths(positions, goal, tolerance=0.01):
    """Mean return of ``[E, H + 1, 2]`` paths: −distance to the goal after each move, until
    the episode reaches the goal (within ``tolerance`` in both coordinates)."""
    offset = positions[:, 1:] - torch.tensor(goal)
    reached = (offset.abs() < tolerance).all(-1).int()
    active = (reached.cumsum(1) - reached) == 0  # not reached before this step
    return -(offset.norm(dim=-1) * active).sum(1).mean().item()


def test_initial_view_and_figure(dashboard, figures):
    view = dashboard.view
    assert view.goal == (0.3, -0.2) and view.episodes == EPISODES
    assert view.inner_lrs == pytest.approx(PAPER_LRS)
    assert list(view.returns) == list(view.paths) == list(SHOWN)
    for label in SHOWN:
        assert len(view.returns[label]) == len(view.paths[label]) == 4
        for positions in view.paths[label]:
            assert positions.shape == (EPISODES, 101, 2)
            assert torch.equal(positions[:, 0], torch.zeros(EPISODES, 2))  # from the origin
            assert positions.diff(dim=1).abs().max() <= 0.1 + 1e-6  # velocities are clipped
        assert f"<b>{label}</b> {view.returns[label][-1]:.1f}" in dashboard.status.value
    # One figure: a row of paths per policy (steps 0..3), the return curve on the right.
    assert len(figures) == 1
    fig = figures[0]
    assert len(fig.axes) == 3 * 4 + 1
    for (label, k), ax in _path_axes(fig).items():
        assert _goal_marker(ax) == pytest.approx(view.goal)
        assert ax.get_title() == f"{label}, {k} step{'s' * (k != 1)}: {view.returns[label][k]:.1f}"
        drawn = [line for line in ax.lines if line.get_linestyle() == "-"]
        assert len(drawn) == EPISODES
        assert drawn[0].get_xydata() == pytest.approx(view.paths[label][k][0].numpy())
    curves = fig.axes[-1]
    assert curves.get_title() == "α = 0.1, 0.05, 0.05"
    plotted = {line.get_label(): list(line.get_ydata()) for line in curves.lines}
    for label in SHOWN:
        assert plotted[label] == pytest.approx(view.returns[label])
    # The layout the notebook displays holds every control.
    box = dashboard.widget()
    controls = {dashboard.goal_x, dashboard.goal_y, dashboard.random_goal, dashboard.alpha,
                dashboard.alpha_later, dashboard.steps, dashboard.episodes}  # fmt: skip

    def children(widget):
        for child in getattr(widget, "children", ()):
            yield child
            yield from children(child)

    assert controls <= set(children(box)) and dashboard.out in set(children(box))


def test_path_panels_share_one_scale(dashboard, figures):
    """Every path panel (each policy after 0..S steps) on the same square, which holds the
    goal square; paths beyond it are counted, not silently lost."""
    panels = _path_axes(figures[-1])
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in panels.values()}
    assert len(limits) == 1
    (((xlow, xhigh), (ylow, yhigh)),) = limits
    assert -xlow == xhigh == -ylow == yhigh and max(GOAL_HIGH, -GOAL_LOW) < xhigh <= MAX_LIMIT
    for (label, k), ax in panels.items():
        shown = dashboard.view.paths[label][k][:10]
        outside = int((shown.abs() > xhigh).any(-1).any(-1).sum())
        texts = [t.get_text() for t in ax.texts]
        assert texts == ([f"{outside} of {len(shown)} paths leave the frame"] if outside else [])
    # MAML's paths near the goal stay inside: the frame is not stretched for the random walks.
    assert all(not ax.texts for (label, _), ax in panels.items() if label == "MAML")


def test_status_names_the_step_count_once(dashboard):
    status = dashboard.status.value
    assert status.count("3 steps") == 1 and status.startswith("average return after 3 steps: ")
    dashboard.steps.value = 1
    status = dashboard.status.value
    assert status.startswith("average return after 1 step: ") and "1 steps" not in status
    assert status.count("step") == 1


def test_sliders_adapt_on_release_and_the_smallest_alpha_works(dashboard):
    """Each value adapts three policies (seconds): the sliders recompute when let go. The
    note beside them gives the smallest α, which the slider holds and the steps accept."""
    for control in (dashboard.goal_x, dashboard.goal_y, dashboard.alpha, dashboard.alpha_later,
                    dashboard.steps, dashboard.episodes):  # fmt: skip
        assert control.continuous_update is False
    smallest = dashboard.alpha.base**dashboard.alpha.min
    assert smallest > 0 and f"α from {smallest:.3g} " in dashboard.alpha_note.value
    assert "α = 0" not in dashboard.alpha_note.value
    dashboard.alpha.value = 0
    assert dashboard.view.inner_lrs[0] == pytest.approx(smallest)  # clamped, no error
    dashboard.alpha_later.value = smallest
    assert dashboard.view.inner_lrs == pytest.approx((smallest,) * 3)
    assert all(math.isfinite(r) for r in dashboard.view.returns["MAML"])


def test_returns_equal_the_evaluation_path(policies):
    """The returns shown are Table 4's evaluation of the same goal, noise and α; and they are
    the environment's rewards along the paths shown."""
    board = NavigationDashboard(policies, noise_seed=7, episodes=3)
    view = board.view
    goal = torch.tensor([[0.3, -0.2]])
    best = optimal_returns(goal).item()
    for label in SHOWN:
        policy, config = policies[label]
        reference = evaluate_policy(policy, config, goal, seed=7, episodes=3,
                                    inner_lrs=PAPER_LRS, keep_trajectories=True)  # fmt: skip
        assert view.returns[label] == pytest.approx(reference.returns[0].tolist(), abs=1e-4)
        for k, positions in enumerate(view.paths[label]):
            torch.testing.assert_close(positions, reference.trajectories[k].positions[0])
            by_hand = _returns_from_paths(positions, (0.3, -0.2))
            assert view.returns[label][k] == pytest.approx(by_hand, rel=1e-4, abs=1e-3)
            assert view.returns[label][k] <= best + 1e-4  # no policy beats the optimal return
    # The behaviour Table 4 reports: MAML improves with its steps, far beyond a random start.
    maml, random = view.returns["MAML"], view.returns["random"]
    assert maml[1] > maml[0] + 10 and maml[-1] > random[-1] + 10


def test_goal_sliders_move_the_goal_and_change_the_paths(dashboard, figures):
    """Also: a goal or α no slider can hold is refused with a clear error."""
    before = dashboard.view
    dashboard.goal_x.value = -0.4
    view = dashboard.view
    assert view.goal == (-0.4, -0.2)
    assert f"<b>MAML</b> {view.returns['MAML'][-1]:.1f}" in dashboard.status.value
    assert all(
        _goal_marker(ax) == pytest.approx((-0.4, -0.2)) for ax in _path_axes(figures[-1]).values()
    )
    for label in SHOWN:
        # Before adapting, a policy does not see the goal: the same moves (same noise) until
        # an episode ends at its goal (no sooner than 3 moves of at most 0.1 for these goals),
        # other returns.
        assert torch.equal(view.paths[label][0][:, :3], before.paths[label][0][:, :3])
        assert view.returns[label][0] != pytest.approx(before.returns[label][0])
        # Its gradient steps are driven by the goal's rewards: the adapted paths move.
        assert not torch.allclose(view.paths[label][1], before.paths[label][1])
    assert view.returns["MAML"][1:] != pytest.approx(before.returns["MAML"][1:])
    # MAML walks towards the new goal: its adapted paths end nearer (−0.4, −0.2) than (0.3, −0.2).
    ends = view.paths["MAML"][-1][:, -1]
    new, old = (
        (ends - torch.tensor([-0.4, -0.2])).norm(dim=-1),
        (ends - torch.tensor([0.3, -0.2])).norm(dim=-1),
    )
    assert (new < old).all()
    # A value beyond the task distribution is clamped by the slider: the goal stays in it.
    dashboard.goal_y.value = 0.9
    assert dashboard.view.goal == (-0.4, 0.5)
    assert _goal_marker(figures[-1].axes[0]) == pytest.approx((-0.4, 0.5))
    assert dashboard.view.returns["MAML"][-1] != pytest.approx(view.returns["MAML"][-1])
    assert len(figures) == 3
    # From code a slider takes NaN (a frontend cannot send it): the episodes refuse it.
    with pytest.raises(ValueError, match="goals contain NaN"):
        dashboard.goal_x.value = math.nan
    with pytest.raises(ValueError, match=r"inner_lrs\[0\] must be a positive number, got nan"):
        dashboard.alpha.value = math.nan


def test_alpha_steps_and_episodes_change_the_returns(dashboard, figures, policies):
    first = dashboard.view
    dashboard.alpha.value = 0.3
    view = dashboard.view
    assert view.inner_lrs == pytest.approx((0.3, 0.05, 0.05))
    assert figures[-1].axes[-1].get_title() == "α = 0.3, 0.05, 0.05"
    for label in SHOWN:
        assert view.returns[label][0] == pytest.approx(first.returns[label][0])  # no step yet
        assert view.returns[label][1] != pytest.approx(first.returns[label][1])
    policy, config = policies["MAML"]
    reference = evaluate_policy(policy, config, torch.tensor([[0.3, -0.2]]), seed=0,
                                episodes=EPISODES, inner_lrs=(0.3, 0.05, 0.05)).returns[0]  # fmt: skip
    assert view.returns["MAML"] == pytest.approx(reference.tolist(), abs=1e-4)

    # Fewer steps: the same episodes, cut short (the noise is drawn step by step).
    dashboard.steps.value = 1
    one = dashboard.view
    assert one.inner_lrs == pytest.approx((0.3,))
    assert all(one.returns[label] == pytest.approx(view.returns[label][:2]) for label in SHOWN)
    assert len(figures[-1].axes) == 3 * 2 + 1
    # "α later" is not used with one step; with two it drives the second.
    dashboard.alpha_later.value = 0.5
    assert dashboard.view.inner_lrs == pytest.approx((0.3,))
    assert all(dashboard.view.returns[label] == one.returns[label] for label in SHOWN)
    dashboard.steps.value = 2
    two = dashboard.view
    assert two.inner_lrs == pytest.approx((0.3, 0.5))
    for label in SHOWN:
        assert two.returns[label][:2] == pytest.approx(one.returns[label])
        assert two.returns[label][2] != pytest.approx(view.returns[label][2])

    # Zero steps: the unadapted policies only.
    dashboard.steps.value = 0
    zero = dashboard.view
    assert zero.inner_lrs == () and figures[-1].axes[-1].get_title() == "α = —"
    assert all(zero.returns[label] == pytest.approx(first.returns[label][:1]) for label in SHOWN)
    dashboard.episodes.value = 2
    fewer = dashboard.view
    assert fewer.episodes == 2 and fewer.paths["MAML"][0].shape == (2, 101, 2)
    assert fewer.returns["MAML"][0] != pytest.approx(zero.returns["MAML"][0])


def test_random_goal_button_draws_from_the_task_distribution(dashboard, monkeypatch):
    dashboard.steps.value = 0  # the goals are what is tested here: no adaptation needed
    # Other observers of the goal sliders (a link, a student's callback) stay attached.
    seen = []
    dashboard.goal_x.observe(lambda change: seen.append(change["new"]), names="value")
    mirror = W.FloatText()
    W.link((dashboard.goal_y, "value"), (mirror, "value"))
    computed = []
    compute = dashboard.compute
    monkeypatch.setattr(dashboard, "compute", lambda: computed.append(1) or compute())

    generator = torch.Generator().manual_seed(0)  # the dashboard's seed
    goals = [dashboard.view.goal]
    for click in range(2):
        before = dashboard.view
        dashboard.random_goal.click()
        view = dashboard.view
        assert len(computed) == click + 1  # both sliders move, one recomputation
        expected = [round(v, 2) for v in sample_goals(1, generator)[0].tolist()]
        assert view.goal == pytest.approx(tuple(expected))
        assert (dashboard.goal_x.value, dashboard.goal_y.value) == view.goal
        assert all(GOAL_LOW <= v <= GOAL_HIGH for v in view.goal)
        assert view.goal not in goals
        assert view.returns["MAML"][0] != pytest.approx(before.returns["MAML"][0])
        assert seen[-1] == view.goal[0] and mirror.value == view.goal[1]
        goals.append(view.goal)
    # A student's own slider move still re-adapts.
    dashboard.goal_x.value = 0.0
    assert dashboard.view.goal[0] == 0.0 and len(computed) == 3 and seen[-1] == 0.0


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda p: {"MAML": p["MAML"]}, ValueError, r"needs policies \['pre-trained', 'random'\]"),
        (lambda p: {**p, "random": p["random"][0]}, ValueError, "NavigationConfig"),
        (lambda p: {**p, "MAML": (p["MAML"][1], p["MAML"][0])}, ValueError, "NavigationConfig"),
    ],
)
def test_bad_policies_raise_a_clear_error(policies, change, error, message):
    with pytest.raises(error, match=message):
        NavigationDashboard(change(policies))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"episodes": 1}, ValueError, "episodes"),
        ({"episodes": 100}, ValueError, r"episodes must be in \[2, 40\]"),  # not clamped to 40
        ({"episodes": 2.5}, TypeError, "episodes"),
        ({"seed": -1}, ValueError, "seed"),
        ({"noise_seed": "0"}, TypeError, "noise_seed"),
    ],
)
def test_bad_settings_raise_a_clear_error(policies, kwargs, error, message):
    with pytest.raises(error, match=message):
        NavigationDashboard(policies, **kwargs)
