"""How far an attribution estimate (AtP, AtP*) can be trusted: compare it with exact patching.

::

    estimate = attribution_patching(model, task, what="heads", qk_fix=True, grad_drop=True)
    exact = activation_patching(model, task, what="heads", layers=[9, 10, 11])
    agreement = estimate_agreement(estimate, exact)
    agreement.pearson, agreement.top_overlap

Only the cells both results cover are compared (exact patching is often run on a few
layers only). Effects are compared by magnitude when the estimate is unsigned (AtP* with
GradDrop), else signed. ``top_overlap`` is the fraction of the exact top-k cells that are
also in the estimate's top-k: what matters when the estimate picks what to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from mechscope.errors import InputError
from mechscope.patching.result import PatchingResult
from mechscope.results import Result


@dataclass(frozen=True)
class EstimateAgreement(Result):
    """Agreement of an attribution estimate with exact patching on the cells both cover."""

    estimate_method: str
    """The estimate's method (``atp``, ``atp*``…)."""
    signed: bool
    """False when effects were compared by magnitude (the estimate carries no sign)."""
    n_cells: int
    """Cells compared."""
    pearson: float
    """Pearson correlation of the effects."""
    spearman: float
    """Spearman (rank) correlation of the effects."""
    k: int
    """How many top cells ``top_overlap`` compares."""
    top_overlap: float
    """Fraction of exact patching's top-k cells (by |effect|) that are in the estimate's top-k."""
    cells: tuple[str, ...]
    """The compared cells, e.g. ``L9H6`` (same order as the two effect tuples)."""
    exact_effects: tuple[float, ...]
    """Exact effect of each cell."""
    estimated_effects: tuple[float, ...]
    """Estimated effect of each cell."""

    def plot(self, label_top: int = 6) -> Figure:
        """Estimated against exact effect per cell; the ``label_top`` largest exact effects named."""
        figure = Figure(figsize=(4.6, 4.0), layout="constrained")
        axes = figure.add_subplot()
        axes.scatter(self.exact_effects, self.estimated_effects, s=14, color="#2563eb", alpha=0.7)
        order = sorted(range(self.n_cells), key=lambda i: -abs(self.exact_effects[i]))[:label_top]
        for i in order:
            axes.annotate(self.cells[i], (self.exact_effects[i], self.estimated_effects[i]), fontsize=7.5,
                          xytext=(3, 3), textcoords="offset points")
        what = "effect" if self.signed else "|effect|"
        axes.set_xlabel(f"exact {what}")
        axes.set_ylabel(f"{self.estimate_method.split(' ')[0]} estimate")
        axes.set_title(f"{self.estimate_method.split(' ')[0]} vs exact: Pearson {self.pearson:.2f}, "
                       f"Spearman {self.spearman:.2f}", fontsize=9.5, loc="left")
        return figure


def estimate_agreement(estimate: PatchingResult, exact: PatchingResult, *, k: int = 10) -> EstimateAgreement:
    """Compare ``estimate`` with ``exact`` on the layers both cover (same sweep, same task)."""
    if estimate.what != exact.what or estimate.dims != exact.dims:
        raise InputError(f"compare the same sweep: the estimate is {estimate.what} {estimate.dims}, "
                         f"the exact result {exact.what} {exact.dims}")
    if estimate.dims[0] != "layer" or estimate.positions != exact.positions:
        raise InputError("estimate_agreement compares layer-indexed sweeps over the same positions")
    rows = [estimate.layers.index(layer) for layer in exact.layers if layer in estimate.layers]
    if not rows:
        raise InputError(f"the two results share no layer (estimate {estimate.layers}, exact {exact.layers})")
    shared = [layer for layer in exact.layers if layer in estimate.layers]
    est = estimate.effects[rows].flatten().float()
    ref = exact.effects[[exact.layers.index(layer) for layer in shared]].flatten().float()
    signed = "unsigned" not in estimate.method
    if not signed:
        ref = ref.abs()
    names = [_cell_name(estimate.dims, layer, rest) for layer in shared
             for rest in range(estimate.effects[0].numel())]
    k = min(k, len(names))
    top_exact = set(ref.abs().topk(k).indices.tolist())
    top_est = set(est.abs().topk(k).indices.tolist())
    return EstimateAgreement(
        estimate_method=estimate.method, signed=signed, n_cells=len(names), pearson=_pearson(est, ref),
        spearman=_pearson(_ranks(est), _ranks(ref)), k=k, top_overlap=len(top_exact & top_est) / k if k else float("nan"),
        cells=tuple(names), exact_effects=tuple(ref.tolist()), estimated_effects=tuple(est.tolist()))


def _cell_name(dims: tuple[str, ...], layer: int, index: int) -> str:
    if dims == ("layer", "head"):
        return f"L{layer}H{index}"
    return f"L{layer}#{index}"


def _ranks(x: torch.Tensor) -> torch.Tensor:
    ranks = torch.empty_like(x)
    ranks[x.argsort()] = torch.arange(len(x), dtype=x.dtype)
    return ranks


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else float("nan")
