"""A multi-output linear probe (logistic regression in torch) for the toys.

:mod:`mechscope.probes` fits one label per example (full-batch L-BFGS, a penalty chosen
on validation, controls); a board needs 64 labels per example, some undefined. So one
probe here reads ``d_model`` activations and predicts ``n_outputs`` independent
``n_classes``-way labels (e.g. every square of a board), each by its own softmax
regression, skipping ``IGNORE`` labels, in one minibatch fit::

    probe = fit_linear_probe(acts, labels, n_classes=3)      # acts (n, d), labels (n, 64)
    probe.accuracy(test_acts, test_labels)                    # mean over outputs, labels -1 skipped
    probe.weight[:, s, 1] - probe.weight[:, s, 2]             # square s: class 1 minus class 2 direction

Trained with minibatch Adam on standardised inputs (the scale is folded back into
``weight`` and ``bias``, so the probe reads raw activations), seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import InputError

IGNORE = -1
"""A label to skip (e.g. a square whose state is undefined there)."""


@dataclass(frozen=True)
class LinearProbe:
    """``logits[n, output, class] = acts[n] @ weight[:, output, class] + bias[output, class]``."""

    weight: Float[Tensor, "d_model output cls"]
    """Reads raw activations."""
    bias: Float[Tensor, "output cls"]
    """One bias per output and class."""

    def logits(self, acts: Float[Tensor, "n d_model"]) -> Float[Tensor, "n output cls"]:
        return torch.einsum("nd,doc->noc", acts.float(), self.weight) + self.bias

    def predict(self, acts: Float[Tensor, "n d_model"]) -> Int[Tensor, "n output"]:
        return self.logits(acts).argmax(-1)

    def accuracy(self, acts: Float[Tensor, "n d_model"], labels: Int[Tensor, "n output"]) -> float:
        """Share of correct predictions over every (row, output) whose label is not ``IGNORE``."""
        keep = labels != IGNORE
        return float((self.predict(acts) == labels)[keep].float().mean())


def fit_linear_probe(
    acts: Float[Tensor, "n d_model"],
    labels: Int[Tensor, "n output"],
    *,
    n_classes: int,
    epochs: int = 4,
    batch_size: int = 1024,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> LinearProbe:
    """Fit one softmax regression per output on ``acts`` (labels ``IGNORE`` are skipped)."""
    if acts.dim() != 2 or labels.dim() != 2 or acts.shape[0] != labels.shape[0]:
        raise InputError(f"acts must be (n, d_model) and labels (n, output) with the same n; received "
                         f"{tuple(acts.shape)} and {tuple(labels.shape)}")
    if labels.max() >= n_classes or labels.min() < IGNORE:
        raise InputError(f"labels must be in 0 .. {n_classes - 1} (or {IGNORE} to skip); received "
                         f"{int(labels.min())} .. {int(labels.max())}")
    acts = acts.float()
    mean, std = acts.mean(0), acts.std(0).clamp_min(1e-6)
    generator = torch.Generator().manual_seed(seed)
    d, n_out = acts.shape[1], labels.shape[1]
    weight = torch.zeros(d, n_out, n_classes, requires_grad=True)
    bias = torch.zeros(n_out, n_classes, requires_grad=True)
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(acts), generator=generator)
            for first in range(0, len(acts), batch_size):
                rows = order[first : first + batch_size]
                x = (acts[rows] - mean) / std
                logits = torch.einsum("nd,doc->noc", x, weight) + bias
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[rows].flatten(),
                                                         ignore_index=IGNORE)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    with torch.no_grad():  # fold the standardisation in: the probe reads raw activations
        w = weight / std[:, None, None]
        b = bias - torch.einsum("d,doc->oc", mean, w)
    return LinearProbe(weight=w.detach(), bias=b.detach())
