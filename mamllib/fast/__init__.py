"""Speed paths: ``mamllib.maml``'s meta-gradient, computed faster on some hardware.

A speed path is a function ``run(inner, θ, batch) -> MetaLossResult``. It receives the inner
loop as a function (``mamllib.maml.InnerLoop``: one task's ``adapt`` and ``loss``, with the
model, α, steps and order it was built with) and decides only how to schedule the tasks;
tests/test_fast.py checks each against the core's ``"vmap"`` and ``"loop"`` paths.

- ``"hybrid"`` (``mamllib.fast.hybrid``): the CPU path for conv nets, inner loop vmapped,
  query losses task by task, the meta-batch split across the CPU threads.

And for the GPU, where the host is the bottleneck (tests/test_fast_graph.py):
- ``mamllib.fast.graph``: the whole meta-step (inner loop, query loss, meta-gradient, Adam)
  captured once in a CUDA graph and replayed, its inputs in fixed buffers.
- ``mamllib.fast.readout``: the training losses kept on the device, read every N iterations.

How ``meta_loss(path="hybrid")`` and ``"auto"`` reach this package although ``maml.py``
imports nothing from it: the core keeps a small registry (``mamllib.maml.register_path``),
which this module fills when it is imported, and ``mamllib/__init__`` imports it, so that
importing any part of mamllib (which runs ``mamllib/__init__`` first) registers the paths.
The alternatives were worse: importing the speed paths from ``maml.py`` would make the
algorithm a student reads depend on its optimisations, and passing a path function to every
``meta_loss`` call would put the choice on every caller and off the checkpoints, which store
the path by name (``MAMLConfig.path``).
"""

from mamllib.fast.hybrid import choose_path, hybrid_meta_loss
from mamllib.maml import register_path

register_path("hybrid", hybrid_meta_loss, choose=choose_path)

__all__ = ["choose_path", "hybrid_meta_loss"]
