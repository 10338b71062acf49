"""``mamllib.paper.navigation``: the shipped policies, re-evaluated: Table 4's result holds."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mamllib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from mamllib.experiments.navigation import evaluate_policy
from mamllib.paper.navigation import (
    CHECKPOINTS,
    NOISE_SEED,
    PAPER_TABLE4,
    PROTOCOLS,
    figures,
    load_learners,
    load_policy,
    navigation_paths,
    random_policy,
    sampler_bias,
    sampler_bias_table,
    step_size_sweep,
    step_size_table,
    table_markdown,
)
from mamllib.paper.navigation import test_goals as fixed_test_goals  # not a test
from mamllib.paths import ROOT

RESULTS = ROOT / "results" / "navigation.json"


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS.read_text())


SHIPPED = [(name, label) for name, protocol in PROTOCOLS.items() for label in protocol.checkpoints]


@pytest.mark.parametrize(("protocol", "label"), SHIPPED)
def test_shipped_checkpoints_are_complete_runs(protocol, label):
    ckpt = load_checkpoint(PROTOCOLS[protocol].checkpoints[label])
    # navigation_maml_code.pt is its 500-iteration run at iteration 100, the code's n_itr
    assert ckpt["iteration"] >= 100 and ckpt["iteration"] % ckpt["config"]["checkpoint_every"] == 0
    assert ckpt["iteration"] <= ckpt["config"]["iterations"]
    assert ckpt["config"]["method"] == ("maml" if label == "MAML" else "pretrain")
    assert ckpt["config"]["inner_lr"] == PROTOCOLS[protocol].inner_lrs[0]
    assert ckpt["config"]["meta_batch_size"] == 20
    # The paper's code pre-trained with one Adam step per iteration (use_maml=False).
    adam = protocol == "code" and label == "pre-trained"
    assert ckpt["config"].get("optimizer", "trpo") == ("adam" if adam else "trpo")
    assert all(
        s["command"].startswith("python -m mamllib.train navigation") for s in ckpt["sessions"]
    )


def test_recorded_table4_meets_the_target(recorded):
    assert recorded["num_goals"] == 40 and recorded["episodes"] == 40
    assert list(recorded["protocols"]) == list(PROTOCOLS)
    for name, protocol in recorded["protocols"].items():
        assert protocol["inner_lrs"] == list(PROTOCOLS[name].inner_lrs)
        assert protocol["sampler"] == PROTOCOLS[name].sampler
        maml = protocol["returns"]["MAML"]["mean"]
        pre = protocol["returns"]["pre-trained"]["mean"]
        rand = protocol["returns"]["random"]["mean"]
        assert maml[0] < maml[1] < maml[2]  # adaptation helps step after step
        assert all(maml[s] > pre[s] and maml[s] > rand[s] for s in (1, 2, 3))
        # Before any step, on the paper's test goals, both trained policies score what the
        # paper's did (-40.41, -40.81): the same environment, goals and reward.
        assert abs(maml[0] - PAPER_TABLE4["MAML"][0]) < 1.5
        assert abs(pre[0] - PAPER_TABLE4["pre-trained"][0]) < 1.5
    # The paper's code's protocol (its step sizes, its sampler, its pre-training): MAML
    # after 2 steps within 0.5 of the paper's -3.33; the pre-trained policy improves with
    # every step and ends within 5 of the paper's -8.47; the random one gains over 20.
    code = recorded["protocols"]["code"]["returns"]
    assert code["MAML"]["mean"][2] >= -3.8
    pre = code["pre-trained"]["mean"]
    assert pre[0] < pre[1] < pre[2] < pre[3]
    assert abs(pre[3] - PAPER_TABLE4["pre-trained"][3]) <= 5
    rand = code["random"]["mean"]
    assert rand[3] - rand[0] >= 20  # the paper: about 36


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_maml_re_evaluated_within_the_recorded_confidence_interval(recorded, protocol):
    """The recorded goals and action noise, re-run: each step's mean return reproduces the
    recorded one (so lies in its 95% interval). With fresh action noise the 2-step mean
    moves by up to about one interval width (seeds 5-8 gave -3.0 to -4.0), because the
    inner step's own sampling noise dominates; hence the same seed here."""
    policy, config, _ = load_policy(PROTOCOLS[protocol].checkpoints["MAML"])
    goals = fixed_test_goals(recorded["num_goals"], recorded["test_seed"])
    entry = recorded["protocols"][protocol]
    out = evaluate_policy(policy, config, goals, seed=recorded["noise_seed"],
                          episodes=recorded["episodes"], inner_lrs=tuple(entry["inner_lrs"]),
                          sampler=entry["sampler"])  # fmt: skip
    mean = out.returns.double().mean(0)
    ref = torch.tensor(entry["returns"]["MAML"]["mean"], dtype=torch.float64)
    ci = torch.tensor(entry["returns"]["MAML"]["ci95"], dtype=torch.float64)
    assert ((mean - ref).abs() <= ci).all(), (mean, ref, ci)
    torch.testing.assert_close(mean, ref, rtol=1e-4, atol=1e-3)


def test_test_goals_are_the_paper_codes():
    """``np.random.seed(1); np.random.uniform(-0.5, 0.5, size=(40, 2))``, as in the paper's
    ``test_maml_point.py``; the global numpy state is left as it was."""
    state = np.random.get_state()
    try:
        np.random.seed(1)
        expected = np.random.uniform(-0.5, 0.5, size=(40, 2))
        np.random.seed(123)
        after = np.random.get_state()
        goals = fixed_test_goals()
        assert np.random.get_state()[1].tolist() == after[1].tolist()
    finally:
        np.random.set_state(state)
    torch.testing.assert_close(goals, torch.tensor(expected, dtype=torch.float32))


def test_random_policy_is_rllabs_default_freshly_initialised():
    """tanh hidden layers, σ = 1, the same weights every time (a fixed seed)."""
    config = load_policy(CHECKPOINTS["MAML"])[1]
    a, b = random_policy(config), random_policy(config)
    assert any(isinstance(m, torch.nn.Tanh) for m in a.mean_net)
    assert not any(isinstance(m, torch.nn.ReLU) for m in a.mean_net)
    assert torch.equal(a.log_std, torch.zeros(2))
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


def test_step_size_sweep_measures_one_step_of_each_size():
    """Before the step it is the 0-step return of Table 4's protocol; after, the 1-step
    return of the same goals and noise with that α; σ is the policy's own."""
    sweep = step_size_sweep(num_goals=2, episodes=3, alphas=(0.01, 0.1))
    assert sweep["alphas"] == [0.01, 0.1]
    key = "pre-trained, text"
    entry = sweep["policies"][key]
    policy, config, _ = load_policy(PROTOCOLS["text"].checkpoints["pre-trained"])
    assert entry["sigma"] == pytest.approx(policy.log_std.exp().mean().item())
    out = evaluate_policy(policy, config, fixed_test_goals(2), seed=NOISE_SEED, episodes=3,
                          inner_lrs=(0.1,))  # fmt: skip
    means = out.returns.mean(0)
    assert entry["before"] == pytest.approx(means[0].item())
    assert entry["after_one_step"][1] == pytest.approx(means[1].item())
    assert len(entry["after_one_step"]) == len(entry["ci95"]) == 2


def test_sampler_bias_re_measures_the_same_adapted_policies_plainly(recorded):
    """Its "protocol" column is Table 4's code-protocol run; its "plain" column measures the
    same θ_k with fresh episodes from the origin (before any step: θ itself)."""
    from mamllib.paper.navigation import PLAIN_NOISE_SEED
    from mamllib.rl.rollout import rollout

    bias = sampler_bias(num_goals=2, episodes=3)
    assert bias["protocol"] == "code" and bias["sampler"] == "steps"
    policy, config, _ = load_policy(PROTOCOLS["code"].checkpoints["MAML"])
    goals = fixed_test_goals(2)
    out = evaluate_policy(policy, config, goals, seed=NOISE_SEED, episodes=3,
                          inner_lrs=PROTOCOLS["code"].inner_lrs, sampler="steps")  # fmt: skip
    entry = bias["policies"]["MAML"]
    assert entry["protocol"] == pytest.approx(out.returns.mean(0).tolist())
    plain0 = rollout(policy, dict(policy.named_parameters()), goals, 3,
                     generator=torch.Generator().manual_seed(PLAIN_NOISE_SEED))  # fmt: skip
    assert entry["plain"][0] == pytest.approx(plain0.mean_returns().mean().item())
    assert len(entry["plain"]) == len(entry["episodes_per_goal"]) == 4
    assert all(n >= 3 for n in entry["episodes_per_goal"])
    # The recorded measurement: on the test goals the sampler counts MAML's quick
    # successes more often after 2 steps (more episodes than environments, a better mean).
    rec = recorded["sampler_bias"]["policies"]["MAML"]
    assert rec["protocol"] == pytest.approx(
        recorded["protocols"]["code"]["returns"]["MAML"]["mean"]
    )
    assert rec["episodes_per_goal"][2] > 40 and rec["protocol"][2] > rec["plain"][2]
    with pytest.raises(ValueError, match=r"protocol='paper': valid are \['code', 'text'\]"):
        sampler_bias(protocol="paper")


def test_step_size_table_reads_the_protocols_alpha_and_the_best(recorded):
    sweep = {
        "alphas": [0.05, 0.1, 0.5],
        "policies": {
            "pre-trained, text": {"sigma": 0.11, "before": -40.0, "after_one_step": [-16.5, -66.0, -300.0]},
            "MAML, code": {"sigma": 0.41, "before": -40.8, "after_one_step": [-30.0, -25.0, -11.0]},
        },
    }  # fmt: skip
    lines = step_size_table(sweep).splitlines()
    assert lines[2] == "| pre-trained, text | 0.11 | -40.0 | -66.0 (α = 0.1) | 0.05 | -16.5 |"
    assert lines[3] == "| MAML, code | 0.41 | -40.8 | -11.0 (α = 0.5) | 0.5 | -11.0 |"
    assert len(step_size_table(recorded["step_size_sweep"]).splitlines()) == 2 + 4


def test_sampler_bias_table_by_hand():
    bias = {"protocol": "code", "policies": {"MAML": {
        "protocol": [-40.8, -3.64], "plain": [-40.85, -4.38], "episodes_per_goal": [40.1, 109.4]}}}  # fmt: skip
    lines = sampler_bias_table(bias).splitlines()
    assert lines[0].startswith("| code protocol | as rllab counts")
    assert lines[2] == "| MAML | -40.80 → -3.64 | -40.85 → -4.38 | 40 → 109 |"


def _returns_from_paths(positions, goal, tolerance=0.01):
    """Mean return of ``[E, H + 1, 2]`` paths: −distance to the goal after each move, until
    the episode reaches the goal (within ``tolerance`` in both coordinates)."""
    offset = positions[:, 1:] - goal
    reached = (offset.abs() < tolerance).all(-1).int()
    active = (reached.cumsum(1) - reached) == 0  # not reached before this step
    return -(offset.norm(dim=-1) * active).sum(1).mean().item()


def test_navigation_paths_hold_each_policys_paths_and_returns():
    """The paths figure's data: per policy (no oracle), the paths from the origin after
    0..steps steps (with the code protocol's sampler at least ``episodes`` of them: every
    finished one), and returns that equal the ones recomputed by hand from those paths."""
    paths = navigation_paths(goal_index=1, steps=2, episodes=3)
    assert torch.equal(paths["goal"], fixed_test_goals()[1])
    assert list(paths["positions"]) == list(paths["returns"]) == ["MAML", "pre-trained", "random"]
    for label, positions in paths["positions"].items():
        assert len(positions) == len(paths["returns"][label]) == 3
        for k, pos in enumerate(positions):
            assert pos.shape[0] >= 3 and pos.shape[1:] == (101, 2)
            assert (pos[:, 0] == 0).all()  # from the origin
            assert float(paths["returns"][label][k]) == pytest.approx(
                _returns_from_paths(pos, paths["goal"]), rel=1e-4
            )


def test_load_policy_reads_the_config_by_the_one_rule(tmp_path):
    """A field this version does not know is an error (it used to be dropped silently); a
    field added since the checkpoint was written takes its default."""
    ckpt = load_checkpoint(CHECKPOINTS["MAML"])
    unknown = tmp_path / "unknown.pt"
    save_checkpoint(unknown, {**ckpt, "config": {**ckpt["config"], "warp_drive": True}})
    with pytest.raises(CheckpointError, match=r"does not know: \['warp_drive'\]"):
        load_policy(unknown)
    older = tmp_path / "older.pt"
    config = {k: v for k, v in ckpt["config"].items() if k != "eval_inner_lr"}
    save_checkpoint(older, {**ckpt, "config": config})
    policy, loaded, _ = load_policy(older)
    assert loaded.eval_inner_lr == 0.05 and loaded.hidden == tuple(ckpt["config"]["hidden"])
    shipped, _, _ = load_policy(CHECKPOINTS["MAML"])
    x = torch.rand(5, 2)
    assert torch.equal(policy(x)[0], shipped(x)[0])
    with pytest.raises(CheckpointError, match="'sinusoid' checkpoint, expected 'navigation'"):
        load_policy(ROOT / "checkpoints" / "sinusoid_maml.pt")


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_load_learners_adds_a_random_policy_with_the_maml_config(protocol):
    policies = load_learners(protocol=protocol)
    assert list(policies) == ["MAML", "pre-trained", "random", "oracle"]
    assert policies["random"][1] == policies["MAML"][1]
    assert policies["MAML"][1].inner_lr == PROTOCOLS[protocol].inner_lrs[0]
    assert policies["oracle"][1].oracle and not policies["MAML"][1].oracle
    assert not any(policy.training for policy, _ in policies.values())


def test_unknown_protocol_is_refused_before_any_work():
    with pytest.raises(ValueError, match=r"protocol='paper': valid are \['code', 'text'\]"):
        load_learners(protocol="paper")


def test_table_and_figures_of_the_recorded_results(recorded):
    table = table_markdown(recorded)
    lines = table.splitlines()
    assert len({line.count("|") for line in lines}) == 1
    assert "| MAML, paper | -40.41 | -11.68 | -3.33 | -3.23 |" in table
    for name in PROTOCOLS:
        maml = recorded["protocols"][name]["returns"]["MAML"]
        assert f"| {maml['mean'][2]:.2f} ± {maml['ci95'][2]:.2f} |" in table
    assert "| MAML, mamllib, code protocol (α 0.5, 0.25, 0.25; 4,000-step batches) |" in table
    assert "| random, paper | about -82.70 |" in table
    drawn = figures(recorded)
    assert list(drawn) == [
        "navigation_returns.png",
        "navigation_step_size.png",
        "navigation_trajectories.png",
    ]
    assert [figure.dpi for figure in drawn.values()] == [120, 120, 110]
    assert len(drawn["navigation_returns.png"].axes) == len(PROTOCOLS)
    for figure in drawn.values():
        plt.close(figure)


def test_readme_shows_the_recorded_table(recorded):
    """The README's Table 4 is ``python -m mamllib.reproduce navigation``'s, verbatim."""
    assert table_markdown(recorded) in (ROOT / "README.md").read_text()
