"""The geometric median: the point with the least summed distance to a set of points.

    b_dec = geometric_median(first_batch)        # (d_in,), robust to a few huge activations

Initialising a sparse autoencoder's decoder bias there (Bricken et al. 2023) centres the
data the encoder sees without letting the rare, very large activations of some tokens
(BOS, attention sinks) drag the centre the way they drag the mean.

Weiszfeld's algorithm: repeatedly re-weight every point by the inverse of its distance
to the current estimate, starting from the mean; each step never increases the summed
distance. Distances are floored at ``eps`` so that a point sitting on the estimate
cannot divide by zero.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError


@torch.no_grad()
def geometric_median(
    points: Float[Tensor, "n d"], *, max_iter: int = 100, tol: float = 1e-6, eps: float = 1e-8
) -> Float[Tensor, "d"]:
    """Weiszfeld's estimate of the geometric median of ``points`` (rows), in float64.

    Stops when an iteration moves the estimate by less than ``tol`` times its norm (plus
    ``tol``), or after ``max_iter`` iterations.
    """
    if points.dim() != 2 or points.shape[0] == 0:
        raise InputError(f"geometric_median expects a non-empty (n, d) tensor; received shape {tuple(points.shape)}")
    data = points.double()
    median = data.mean(0)
    for _ in range(max_iter):
        weights = 1.0 / (data - median).norm(dim=1).clamp(min=eps)
        update = (weights[:, None] * data).sum(0) / weights.sum()
        moved = (update - median).norm()
        median = update
        if moved <= tol * (median.norm() + 1.0):
            break
    return median.to(points.dtype)
