"""Where training activations come from: anything that yields batches reproducibly.

A source yields float tensors (batch, d_in) for an autoencoder, or pairs (input, target)
for a transcoder, and can start at any batch index, so that an interrupted training run
resumes on exactly the batches it had not seen yet::

    for batch in source.batches(batch_size=4096, seed=0, start=1000):
        ...

:class:`TensorSource` holds activations in memory; the on-disk store
(:mod:`mechscope.activations.store`) and the on-the-fly mixing buffer implement the same method.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import Tensor

from mechscope.errors import InputError

Batch = Tensor | tuple[Tensor, Tensor]


class ActivationSource(Protocol):
    """Reproducible batches of activations."""

    d_in: int
    """Width of the inputs."""

    def batches(self, batch_size: int, *, seed: int = 0, start: int = 0) -> Iterator[Batch]:
        """Batches in a fixed order for ``seed``, from batch index ``start`` on; one pass
        over the data (an epoch) per call."""
        ...


class TensorSource:
    """Activations held in memory (and, for transcoders, their targets)."""

    def __init__(self, inputs: Tensor, targets: Tensor | None = None) -> None:
        if inputs.dim() != 2:
            raise InputError(f"inputs must be (tokens, d_in); received shape {tuple(inputs.shape)}")
        if targets is not None and targets.shape[0] != inputs.shape[0]:
            raise InputError(f"targets must have one row per input ({inputs.shape[0]}); received {targets.shape[0]}")
        self.inputs, self.targets = inputs, targets
        self.d_in = inputs.shape[1]

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def batches(self, batch_size: int, *, seed: int = 0, start: int = 0) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        for first in range(start * batch_size, len(self) - batch_size + 1, batch_size):
            rows = order[first : first + batch_size]
            yield self.inputs[rows] if self.targets is None else (self.inputs[rows], self.targets[rows])
