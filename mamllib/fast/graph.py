"""The CUDA-graph meta-step: one meta-iteration captured once with ``torch.cuda.graph``, replayed.

On the GPU the enemy is the host (DESIGN.md): one meta-iteration of the paper's Omniglot net is
hundreds of small kernels, each launched from Python. A CUDA graph records them once and then
launches them all with one call (a stand-alone prototype on an H200, issue 20: 22.5 -> 3.4 ms per
5-way 1-shot second-order iteration, replay equal to eager). ``MetaStep`` is that meta-update,
θ ← Adam(θ, ∇_θ loss()), eager or captured; the inner loop, query loss and meta-gradient come in
as the function ``loss()`` (e.g. ``learner.meta_loss(batch).loss``), unchanged.

What a graph demands (PyTorch docs, "CUDA Graphs") and how this module meets it:
- Static inputs: a replay reads the memory the capture read. The caller refills fixed buffers
  in place before every step (``refill``); ``loss()`` reads them.
- Warm-up on a side stream before capture: lazy initialisation (cuBLAS/cuDNN handles,
  autograd's gradient accumulators, Adam's state) must not happen inside a capture. The first
  ``WARMUP`` steps are ordinary eager steps on a side stream, and real ones (real tasks, counted
  iterations), so where the capture happens changes nothing in the run.
- Gradients set to None before capture: backward then allocates ``.grad`` from the graph's
  private memory pool, and every replay overwrites them instead of accumulating.
- Adam with ``capturable=True``: its step count and bias corrections live on the device
  (otherwise they would be host numbers frozen into the graph). ``prepare_adam`` sets it, also
  after ``load_state_dict``, which restores the flags a checkpoint was saved with.
- Random numbers: nothing random happens inside the step. Tasks are drawn eagerly, before each
  replay, from the experiment's own generator, whose state is checkpointed as in eager training:
  a resumed run continues the same task stream.
- No host synchronisation inside (no ``.item()``, no tensor in an ``if``): Meta-SGD's α check
  reads α on the host, the ``"hybrid"`` path runs threads, torchrun averages gradients by
  message; those run eagerly (``graph_blockers``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

WARMUP = 3  # eager steps on a side stream before the capture (the docs' example uses 3)
T = TypeVar("T")


def graph_blockers(*, path: str, learn_inner_lr: bool, distributed: bool = False) -> list[str]:
    """Why a meta-step cannot be captured: one reason per line (empty: it can)."""
    reasons = []
    if learn_inner_lr:
        reasons.append("Meta-SGD (--learn-inner-lr) checks α on the host every step")
    if path == "hybrid":
        reasons.append("the 'hybrid' path (--path hybrid) runs the tasks on CPU threads")
    if distributed:
        reasons.append("under torchrun every step averages the gradients by message")
    return reasons


def use_graph(requested: bool | None, device: torch.device, blockers: Sequence[str] = ()) -> bool:
    """Capture the meta-step? ``requested`` True or False decides; ``None``: on CUDA when it can.

    Raises:
        ValueError: a graph requested on a device other than CUDA, or despite a blocker.
    """
    if requested and device.type != "cuda":
        raise ValueError(
            f"--cuda-graph needs a CUDA device, but this run is on {device}; "
            "leave it out (or pass --no-cuda-graph)"
        )
    if requested and blockers:
        raise ValueError(f"--cuda-graph is not possible here: {'; '.join(blockers)}")
    if requested is None:
        return device.type == "cuda" and not blockers
    return bool(requested)


def prepare_adam(optimizer: torch.optim.Optimizer, *, capturable: bool) -> None:
    """Keep Adam's step counts where its mode needs them: on θ's device (``capturable``, for a
    graph), or on the host (eager).

    Eager Adam reads a step count held on the GPU with ``.item()``, a host synchronisation per
    step; ``load_state_dict`` keeps the device the checkpoint was mapped to, so a run resumed on
    CUDA from any checkpoint had one. Values are unchanged (whole numbers in float32).
    """
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise TypeError(f"{type(optimizer).__name__} cannot be captured in a CUDA graph")
        group["capturable"] = capturable
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if isinstance(state.get("step"), Tensor):
                step = state["step"]
                state["step"] = step.to(p.device, torch.float32) if capturable else step.cpu()


def refill(buffers: tuple[Tensor, ...] | None, *values: Tensor) -> tuple[Tensor, ...]:
    """``values`` copied into ``buffers`` (made as copies the first time): the same memory every
    step, which is what a captured graph reads. Equal to ``values``.

    Raises:
        ValueError: a value of another shape or dtype than its buffer.
    """
    if buffers is None:
        return tuple(v.clone() for v in values)
    if len(buffers) != len(values):
        raise ValueError(f"{len(values)} values for {len(buffers)} fixed buffers")
    for buffer, value in zip(buffers, values):
        if buffer.shape != value.shape or buffer.dtype != value.dtype:
            raise ValueError(
                f"a captured step needs inputs of fixed shapes: got {value.dtype} "
                f"{list(value.shape)} for a buffer of {buffer.dtype} {list(buffer.shape)}"
            )
        buffer.copy_(value)
    return buffers


def on_side_stream(fn: Callable[[], T], side: torch.cuda.Stream) -> T:
    """``fn()`` on the CUDA stream ``side``, which first waits for the current stream, which
    then waits for it (the docs' warm-up pattern)."""
    current = torch.cuda.current_stream()
    side.wait_stream(current)
    with torch.cuda.stream(side):
        out = fn()
    current.wait_stream(side)
    return out


def capture(fn: Callable[[], T], *, warmup: int = 0,
            stream: torch.cuda.Stream | None = None) -> tuple[torch.cuda.CUDAGraph, T]:  # fmt: skip
    """``fn`` captured in a CUDA graph after ``warmup`` eager calls, on one side stream.

    The capture records ``fn``'s kernels without running them: ``graph.replay()`` runs them, and
    writes into the tensors returned (static outputs, overwritten by every replay). Warm-up and
    capture share the stream, so that what a library creates per stream (cuBLAS workspaces,
    handles) exists before the capture.
    """
    stream = stream or torch.cuda.Stream()
    if warmup:
        on_side_stream(lambda: [fn() for _ in range(warmup)], stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = fn()
    return graph, out


class MetaStep:
    """θ ← Adam(θ, ∇_θ loss()): one meta-update, eager, or replayed from a CUDA graph.

    The loss comes back as a detached 0-dim tensor on θ's device, never read on the host: the
    training loop reads losses every few iterations (``mamllib.fast.readout``).

    Args:
        optimizer: Adam over θ (and α for Meta-SGD).
        graph: capture (on CUDA, after ``warmup`` eager steps on a side stream) and replay.
        warmup: eager steps before the capture.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, graph: bool = False,
                 warmup: int = WARMUP) -> None:  # fmt: skip
        self.optimizer, self.graph, self.warmup = optimizer, graph, warmup
        self.reset()

    def reset(self) -> None:
        """Forget the capture and prepare Adam again: after its state was replaced (a resumed
        checkpoint), the graph would update tensors that are no longer Adam's."""
        self._graph: torch.cuda.CUDAGraph | None = None
        self._loss: Tensor | None = None
        self._stream: torch.cuda.Stream | None = None  # warm-up and capture
        self.eager_steps = self.replays = 0
        prepare_adam(self.optimizer, capturable=self.graph)

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self, loss: Callable[[], Tensor]) -> Tensor:
        """One meta-update; ``loss()`` must read only fixed buffers when ``graph`` is on."""
        if not self.graph:
            return self._eager(loss)
        self._stream = self._stream or torch.cuda.Stream()
        if self._graph is None and self.eager_steps < self.warmup:
            self.eager_steps += 1
            return on_side_stream(lambda: self._eager(loss), self._stream)
        if self._graph is None:
            self.optimizer.zero_grad(set_to_none=True)
            self._graph, self._loss = capture(lambda: self._update(loss), stream=self._stream)
        self._graph.replay()
        self.replays += 1
        return self._loss.clone()  # the next replay overwrites the static output

    def _eager(self, loss: Callable[[], Tensor]) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        return self._update(loss)

    def _update(self, loss: Callable[[], Tensor]) -> Tensor:
        value = loss()
        value.backward()
        self.optimizer.step()
        return value.detach()
