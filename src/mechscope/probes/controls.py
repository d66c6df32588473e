"""Controls every probe result carries: what a probe reaches when the labels mean nothing.

* **Control task** (Hewitt & Liang, 2019): each word *type* gets a random label, drawn
  from the real labels' distribution, and keeps it wherever it occurs. A probe can only
  learn it by memorising types, so its accuracy measures the probe's own capacity.
  **Selectivity** is the real task's accuracy minus the control task's: a probe that is
  accurate *and* selective reads a property, not word identities.
* **Shuffled labels**: the training and validation labels permuted, the probe scored on
  the true test labels; it should be at chance. One permutation is noisy when the true
  signal is strong (the probe picks up the true direction with the sign of the labels'
  chance agreement), so results average several.
* **Chance**: the majority class's share of the test part (classification), or 0 (R² of
  predicting the training mean, regression).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mechscope.probes.data import Split


def control_labels(labels: Tensor, types: Sequence[str], *, seed: int = 0) -> Tensor:
    """One random label per distinct type, drawn from the empirical distribution of
    ``labels``, given to every example of that type."""
    generator = torch.Generator().manual_seed(seed)
    distinct = sorted(set(types))
    draws = labels[torch.randint(len(labels), (len(distinct),), generator=generator)]
    by_type = dict(zip(distinct, draws))
    return torch.stack([by_type[t] for t in types])


def shuffled_labels(labels: Tensor, split: Split, *, seed: int = 0) -> Tensor:
    """``labels`` with the training and validation examples' labels permuted among
    themselves; the test labels stay true."""
    generator = torch.Generator().manual_seed(seed)
    fitted = torch.cat([split.train, split.val])
    out = labels.clone()
    out[fitted] = labels[fitted[torch.randperm(len(fitted), generator=generator)]]
    return out


def chance(labels: Tensor, split: Split, classes: tuple[str, ...]) -> float:
    """The majority class's share of the test part (classes), or 0 (values: the R² of
    predicting a constant)."""
    if not classes:
        return 0.0
    test = labels[split.test]
    return float(torch.bincount(test, minlength=len(classes)).max()) / len(test)
