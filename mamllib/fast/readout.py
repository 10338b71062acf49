"""Training losses kept on the device and read every N iterations, not every one.

Reading a GPU tensor on the host (``.item()``, ``float()``, ``if loss:``) waits until the GPU
has run every kernel queued before it: the host then stops queueing the next meta-iteration's
hundreds of small kernels, and the GPU idles while it does. So the training loop keeps each
iteration's loss in a device buffer (a device-to-device copy) and reads them all at once every
``every`` iterations (``python -m mamllib.train ... --sync-every N``): one wait per N
iterations, the same numbers (``tolist()`` gives the floats ``.item()`` gives). Losses that
come as floats (the CPU experiments, torchrun's averaged loss) are kept as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

SYNC_EVERY_GPU = 100  # the default on CUDA; on the CPU every iteration (reading costs nothing)


def default_sync_every(device: torch.device) -> int:
    """Iterations between reads of the losses when ``--sync-every`` is not given."""
    return 1 if device.type == "cpu" else SYNC_EVERY_GPU


class DeferredLosses:
    """Up to ``every`` iterations' losses, held until ``read``.

    Args:
        every: how many losses fit (the loop reads when ``full``, and at its checkpoints).
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self._buffer: Tensor | None = None
        self._held: list[float | None] = []  # None: in the device buffer, at that index

    def __len__(self) -> int:
        return len(self._held)

    @property
    def full(self) -> bool:
        return len(self._held) >= self.every

    def add(self, loss: Tensor | float) -> None:
        """Hold one iteration's loss: a float, or a 0-dim tensor (copied, not read)."""
        if not isinstance(loss, Tensor):
            self._held.append(float(loss))
            return
        if self._buffer is None or self._buffer.device != loss.device:
            self._buffer = torch.empty(self.every, dtype=loss.dtype, device=loss.device)
        self._buffer[len(self._held)].copy_(loss.detach())
        self._held.append(None)

    def read(self) -> list[float]:
        """The losses held, in order, as floats (one wait for the device); then empty."""
        n = len(self._held)
        stored = self._buffer[:n].tolist() if None in self._held else [None] * n
        values = [s if h is None else h for h, s in zip(self._held, stored)]
        self._held.clear()
        return values

    def drain(self, last: int, into: list[float],
              callback: Callable[[int, float], None] | None = None) -> int:  # fmt: skip
        """``read``, each loss checked and appended to ``into`` and given to ``callback`` with
        its iteration (``last`` is the latest one's). Returns how many were read.

        Raises:
            FloatingPointError: a loss that is not finite, naming its iteration.
        """
        values = self.read()
        for iteration, loss in enumerate(values, start=last - len(values) + 1):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged at iteration {iteration}: loss {loss}; "
                    "try a smaller inner_lr (α, --inner-lr) or outer_lr (β, --outer-lr)"
                )
            into.append(loss)
            if callback is not None:
                callback(iteration, loss)
        return len(values)
