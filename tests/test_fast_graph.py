"""``mamllib.fast.graph`` and ``mamllib.fast.readout``: the meta-iteration without host
synchronisation, and the meta-step captured in a CUDA graph.

On the CPU: the choice of graph or eager and its errors, the fixed input buffers, Adam's
preparation (a graph run's checkpoint resumed eagerly), the deferred losses, and that an
Omniglot meta-iteration reads nothing back on the host. Marked ``cuda`` (skipped without
one): no synchronisation under ``torch.cuda.set_sync_debug_mode("error")``, a replayed run
equal to an eager one, and a stopped and resumed graph run equal to an uninterrupted one.

The Omniglot runs here use random images of the real set's size (1,623 characters, the
background set first), so that they need no data set.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import mamllib.experiments.omniglot as omniglot_experiment
import mamllib.train
from mamllib.checkpoints import load_checkpoint, save_checkpoint
from mamllib.data import OmniglotData
from mamllib.experiments import SinusoidExperiment
from mamllib.experiments.omniglot import OmniglotConfig, OmniglotExperiment
from mamllib.experiments.sinusoid import SinusoidConfig
from mamllib.fast.graph import MetaStep, graph_blockers, prepare_adam, refill, use_graph
from mamllib.fast.readout import DeferredLosses, default_sync_every
from mamllib.train import fit, main

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
MAMLLIB = str(Path(inspect.getfile(omniglot_experiment)).parents[1])


@pytest.fixture
def random_omniglot(monkeypatch) -> OmniglotData:
    """Random 28×28 images in place of Omniglot, for the experiment's loader."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(1623, 20, 28, 28, generator=g) > 0.8).to(torch.uint8) * 255
    background = torch.arange(1623) < 964
    data = OmniglotData(images, ["a"] * 1623, [f"c{i}" for i in range(1623)], background)
    monkeypatch.setattr(omniglot_experiment, "load_omniglot", lambda: data)
    return data


def small(**overrides) -> OmniglotConfig:
    base = dict(meta_batch_size=4, hidden=16, iterations=12, eval_every=6, checkpoint_every=6,
                eval_tasks=4, eval_query=5, device="cpu")  # fmt: skip
    return OmniglotConfig(**{**base, **overrides})


# ----------------------------------------------------------------------------- graph or eager


def test_the_graph_is_the_default_on_cuda_only_and_only_where_it_can_run():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_graph(None, cuda) is True and use_graph(None, cpu) is False
    assert use_graph(False, cuda) is False and use_graph(True, cuda) is True
    blockers = graph_blockers(path="vmap", learn_inner_lr=True)
    assert len(blockers) == 1 and "Meta-SGD" in blockers[0]
    assert use_graph(None, cuda, blockers) is False
    with pytest.raises(ValueError, match="--cuda-graph is not possible here: Meta-SGD"):
        use_graph(True, cuda, blockers)
    with pytest.raises(
        ValueError, match="--cuda-graph needs a CUDA device, but this run is on cpu"
    ):
        use_graph(True, cpu)
    assert graph_blockers(path="vmap", learn_inner_lr=False) == []
    assert graph_blockers(path="loop", learn_inner_lr=False) == []
    assert len(graph_blockers(path="hybrid", learn_inner_lr=True, distributed=True)) == 3


def test_cuda_graph_forced_on_the_cpu_is_one_error_line_before_any_data(
    capsys, tmp_path, monkeypatch
):
    missing = tmp_path / "no_data"
    missing.mkdir()
    monkeypatch.setenv(
        "MAMLLIB_DATA", str(missing)
    )  # restored after the test (--data-root sets it)
    argv = ["omniglot", "--out", str(tmp_path / "run.pt"), "--data-root", str(missing),
            "--device", "cpu", "--cuda-graph"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --cuda-graph needs a CUDA device, but this run is on cpu; leave it out "
        "(or pass --no-cuda-graph)"
    ]
    assert not (tmp_path / "run.pt").exists()


def test_flags():
    from mamllib.train import parse_args

    _, _, args = parse_args(["omniglot", "--out", "x.pt", "--no-cuda-graph", "--sync-every", "50"])
    assert args.cuda_graph is False and args.sync_every == 50
    _, _, args = parse_args(["omniglot", "--out", "x.pt"])
    assert args.cuda_graph is None and args.sync_every is None
    with pytest.raises(SystemExit):  # only Omniglot has a captured step
        parse_args(["sinusoid", "--out", "x.pt", "--cuda-graph"])


def test_an_experiment_without_a_captured_step_refuses_one():
    experiment = SinusoidExperiment(SinusoidConfig(device="cpu", eval_tasks=4))
    experiment.use_cuda_graph(None)
    experiment.use_cuda_graph(False)
    with pytest.raises(ValueError, match="the 'sinusoid' experiment has no captured step"):
        experiment.use_cuda_graph(True)


def test_sync_every_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sinusoid", "--out", str(tmp_path / "x.pt"), "--sync-every", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --sync-every must be >= 1, got 0"
    assert default_sync_every(torch.device("cpu")) == 1
    assert default_sync_every(torch.device("cuda")) > 1


# ----------------------------------------------------------------------------- buffers, Adam


def test_refill_keeps_the_same_memory():
    a, b = torch.arange(6.0).view(2, 3), torch.tensor([1, 2])
    buffers = refill(None, a, b)
    assert torch.equal(buffers[0], a) and buffers[0].data_ptr() != a.data_ptr()
    pointers = [t.data_ptr() for t in buffers]
    again = refill(buffers, a + 10, b * 3)
    assert again is buffers and [t.data_ptr() for t in again] == pointers
    assert torch.equal(again[0], a + 10) and torch.equal(again[1], b * 3)
    with pytest.raises(ValueError, match=r"fixed shapes: got torch.float32 \[3, 2\]"):
        refill(buffers, a.view(3, 2), b)
    with pytest.raises(ValueError, match="fixed shapes"):
        refill(buffers, a, b.float())


def _adam_after_steps(params, steps: int, state=None) -> torch.optim.Adam:
    optimizer = torch.optim.Adam(params, lr=0.1)
    if state is not None:
        optimizer.load_state_dict(state)
    for _ in range(steps):
        optimizer.zero_grad()
        sum((p * p).sum() for p in params).backward()
        optimizer.step()
    return optimizer


def test_a_graph_runs_adam_state_resumes_eagerly_and_the_same():
    """A checkpoint of a graph run holds Adam with capturable=True, which eager Adam on the
    CPU refuses; prepared, it continues exactly as the optimizer that was never captured."""
    w0 = torch.tensor([1.0, -2.0, 3.0])
    reference = [w0.clone().requires_grad_()]
    _adam_after_steps(reference, 4)

    params = [w0.clone().requires_grad_()]
    state = _adam_after_steps(params, 2).state_dict()
    state["param_groups"][0]["capturable"] = True  # as a graph run saves it
    resumed = torch.optim.Adam(params, lr=0.1)
    resumed.load_state_dict(state)
    with pytest.raises(Exception, match="capturable"):
        _adam_after_steps(params, 1, resumed.state_dict())
    prepare_adam(resumed, capturable=False)
    assert resumed.param_groups[0]["capturable"] is False
    assert resumed.state[params[0]]["step"].device.type == "cpu"
    _adam_after_steps(params, 2, resumed.state_dict())
    assert torch.equal(params[0], reference[0])


def test_meta_step_eager_is_one_adam_step():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    v = w.detach().clone().requires_grad_()
    step = MetaStep(torch.optim.Adam([w], lr=0.1))
    loss = step(lambda: (w**3).sum())
    reference = torch.optim.Adam([v], lr=0.1)
    (v**3).sum().backward()
    reference.step()
    assert torch.equal(w, v) and loss.item() == -7.0 and not loss.requires_grad
    assert not step.captured and step.replays == 0


# ----------------------------------------------------------------------------- deferred losses


def test_deferred_losses_read_in_order_and_name_the_diverged_iteration():
    pending = DeferredLosses(4)
    values = [0.5, 0.25, 2.0]
    pending.add(torch.tensor(values[0]))
    pending.add(values[1])  # a float (torchrun's averaged loss) keeps its place
    pending.add(torch.tensor(values[2], dtype=torch.float64))
    assert len(pending) == 3 and not pending.full
    seen, into = [], [9.0]
    assert pending.drain(13, into, lambda i, loss: seen.append((i, loss))) == 3
    assert into == [9.0, *values] and seen == [(11, 0.5), (12, 0.25), (13, 2.0)]
    assert len(pending) == 0
    for loss in (1.0, math.nan, 3.0, 4.0):
        pending.add(torch.tensor(loss))
    assert pending.full
    with pytest.raises(FloatingPointError, match="training diverged at iteration 6: loss nan"):
        pending.drain(8, [])


def test_the_losses_read_every_n_iterations_give_the_same_run(tmp_path):
    """Reading the losses every 1, 4 or 7 iterations (7 does not divide the evaluation
    interval) logs the same history, calls back every iteration in order, and ends with the
    same θ; a run killed between two reads resumes from its checkpoint to the same end."""
    config = SinusoidConfig(iterations=30, eval_every=10, checkpoint_every=5, eval_tasks=4,
                            meta_batch_size=2, hidden=(8, 8), device="cpu")  # fmt: skip
    runs = {}
    for n in (1, 4, 7):
        calls = []
        result = fit("sinusoid", config, tmp_path / f"every{n}.pt", progress=False,
                     sync_every=n, callback=lambda i, loss, calls=calls: calls.append(i))  # fmt: skip
        assert calls == list(range(1, 31)), n
        runs[n] = result
    for n in (4, 7):
        assert runs[n].history == runs[1].history
        for a, b in zip(runs[n].experiment.learner.parameters(),
                        runs[1].experiment.learner.parameters()):  # fmt: skip
            assert torch.equal(a, b)

    class Killed(Exception):
        pass

    def kill(iteration, loss):
        if iteration == 12:
            raise Killed

    out = tmp_path / "killed.pt"
    with pytest.raises(Killed):
        fit("sinusoid", config, out, progress=False, sync_every=4, callback=kill)
    assert load_checkpoint(out)["iteration"] == 10  # the read at 12 came after the save at 10
    resumed = fit("sinusoid", config, out, resume=True, progress=False, sync_every=4)
    assert resumed.history == runs[1].history


def test_the_progress_bar_moves_at_each_read(monkeypatch, tmp_path):
    """Read every 4 iterations and at every checkpoint (5) and evaluation (10): the bar moves
    by what was read, never per iteration."""
    moves = []

    class Bar:
        update = staticmethod(moves.append)

        def set_postfix_str(self, text):
            pass

        def close(self):
            pass

    monkeypatch.setattr(mamllib.train, "progress_bar", lambda **kwargs: Bar())
    config = SinusoidConfig(iterations=30, eval_every=10, checkpoint_every=5, eval_tasks=4,
                            meta_batch_size=2, hidden=(8, 8), device="cpu")  # fmt: skip
    fit("sinusoid", config, tmp_path / "run.pt", progress=False, sync_every=4)
    assert moves == [4, 1] * 6


# ----------------------------------------------------------------------------- Omniglot step


def _old_step(experiment: OmniglotExperiment) -> float:
    """The meta-iteration as it was before the fixed buffers: sample, meta-loss, Adam."""
    c = experiment.config
    batch = experiment.train_tasks.sample(c.meta_batch_size, c.n_way, c.k_shot, c.k_query,
                                          generator=experiment.generator)  # fmt: skip
    loss = experiment.learner.meta_loss(batch).loss
    experiment.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    experiment.optimizer.step()
    return loss.item()


@pytest.mark.parametrize("path", ["auto", "vmap"])
def test_omniglot_step_in_fixed_buffers_gives_the_old_steps_numbers(random_omniglot, path):
    new, old = (OmniglotExperiment(small(path=path)) for _ in range(2))
    assert new.step.graph is False  # on the CPU
    pointers = None
    for _ in range(3):
        loss = new.train_step()
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and not loss.requires_grad
        assert loss.item() == _old_step(old)
        if pointers is not None:
            assert [t.data_ptr() for t in new.inputs] == pointers
        pointers = [t.data_ptr() for t in new.inputs]
    for a, b in zip(new.learner.parameters(), old.learner.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(new.generator.get_state(), old.generator.get_state())


def test_omniglot_meta_iteration_reads_nothing_on_the_host(random_omniglot, monkeypatch):
    """What mamllib's own code calls in a meta-iteration: no ``.item()``, no tensor in an
    ``if``, no ``.cpu()``/``.tolist()`` (torch's internals are checked on CUDA)."""
    experiments = [OmniglotExperiment(small(path="vmap", method=m)) for m in ("maml", "pretrain")]
    for experiment in experiments:
        experiment.train_step()  # one step first: what is built lazily may look once
    reads = []

    def recording(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = inspect.currentframe().f_back
            if caller.f_code.co_filename.startswith(MAMLLIB):
                reads.append(f"{name} at {caller.f_code.co_filename}:{caller.f_lineno}")
            return original(self, *args, **kwargs)

        return read

    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, recording(name))
    for experiment in experiments:
        for _ in range(2):
            experiment.train_step()
    monkeypatch.undo()
    assert reads == []


def test_omniglot_resume_keeps_adam_eager_on_the_cpu(random_omniglot, tmp_path):
    """A checkpoint whose Adam was captured (capturable=True) resumes eagerly on the CPU."""
    config = small()
    whole = fit("omniglot", config, tmp_path / "whole.pt", progress=False)
    out = tmp_path / "part.pt"
    fit("omniglot", replace(config, iterations=6), out, progress=False)
    ckpt = load_checkpoint(out)
    for group in ckpt["state"]["optimizer"]["param_groups"]:
        group["capturable"] = True
    save_checkpoint(out, {k: v for k, v in ckpt.items() if k != "checksum"})
    rest = fit("omniglot", config, out, resume=True, progress=False)
    assert rest.experiment.optimizer.param_groups[0]["capturable"] is False
    for a, b in zip(rest.experiment.learner.parameters(), whole.experiment.learner.parameters()):
        assert torch.equal(a, b)
    assert rest.history == whole.history


# ----------------------------------------------------------------------------- CUDA


def _no_tf32(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _assert_close_params(a, b, rtol=1e-4, atol=1e-5):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("method, graph", [("maml", False), ("maml", True), ("pretrain", True)])
def test_cuda_meta_iteration_never_synchronises(random_omniglot, method, graph):
    experiment = OmniglotExperiment(small(device="cuda", method=method))
    experiment.use_cuda_graph(graph)
    for _ in range(5):  # warm-up and capture
        experiment.train_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [experiment.train_step() for _ in range(5)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert experiment.step.captured is graph
    assert all(math.isfinite(v) for v in torch.stack(losses).tolist())


@pytest.mark.cuda
@CUDA
def test_cuda_graph_replay_equals_eager(random_omniglot, tmp_path, monkeypatch):
    _no_tf32(monkeypatch)
    config = small(device="cuda", iterations=20, eval_every=10, checkpoint_every=10)
    graph = fit("omniglot", config, tmp_path / "g.pt", progress=False, cuda_graph=True)
    eager = fit("omniglot", config, tmp_path / "e.pt", progress=False, cuda_graph=False)
    step = graph.experiment.step
    assert step.captured and step.replays == 20 - step.warmup
    assert not eager.experiment.step.captured
    first = OmniglotExperiment(config).learner  # θ₀: the comparison is not of unmoved weights
    moved = max((p - q).abs().max().item() for p, q in
                zip(graph.experiment.learner.parameters(), first.cuda().parameters()))  # fmt: skip
    assert moved > 1e-3
    _assert_close_params(graph.experiment.learner, eager.experiment.learner)
    for g, e in zip(graph.history, eager.history):
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=1e-4)


@pytest.mark.cuda
@CUDA
def test_cuda_graph_run_stopped_and_resumed_equals_an_uninterrupted_one(
    random_omniglot, tmp_path, monkeypatch
):
    _no_tf32(monkeypatch)
    config = small(device="cuda", iterations=24, eval_every=8, checkpoint_every=8)
    whole = fit("omniglot", config, tmp_path / "whole.pt", progress=False, sync_every=5)
    assert whole.experiment.step.captured  # the default on CUDA
    out = tmp_path / "lease.pt"
    part = fit("omniglot", config, out, progress=False, max_minutes=1e-9)
    assert (part.finished, part.iteration) == (False, 8)
    rest = fit("omniglot", config, out, resume=True, progress=False)
    assert rest.finished and rest.experiment.step.captured
    _assert_close_params(rest.experiment.learner, whole.experiment.learner)
    assert [h["iteration"] for h in rest.history] == [8, 16, 24]
    for r, w in zip(rest.history, whole.history):
        assert r["train_loss"] == pytest.approx(w["train_loss"], rel=1e-4)
    # ... and its checkpoint, Adam captured, continues on the CPU.
    cpu = fit("omniglot", replace(config, device="cpu", iterations=26), out, resume=True,
              progress=False)  # fmt: skip
    assert cpu.iteration == 26 and cpu.experiment.optimizer.param_groups[0]["capturable"] is False
