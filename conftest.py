"""Test environment for the whole suite (library tests and notebooks under nbval).

Fast mode shrinks budgets on the same code paths; one thread per worker keeps the
2-core CI machine from oversubscribing (small MAML workloads run several times slower
when two processes each spin two OpenMP threads).
"""

import os

os.environ.setdefault("MAMLLIB_FAST", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402  (after the thread settings above)

torch.set_num_threads(1)

# The data location is ../shared/data (real Omniglot in its omniglot/, never downloaded);
# the decoded set is cached once per machine in .cache/.
_ROOT = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("MAMLLIB_DATA", os.path.join(_ROOT, "..", "shared", "data"))
os.environ.setdefault("MAMLLIB_CACHE", os.path.join(_ROOT, ".cache"))
