"""The result of a patching sweep (exact or attribution-estimated), with its picture."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.results import Result
from mechscope.viz import heatmap, token_labels


@dataclass(frozen=True, kw_only=True)
class PatchingResult(Result):
    """Metric after each patch of a sweep (or its attribution estimate)."""

    values: Float[Tensor, "..."]
    """The task metric with each patch applied, laid out along ``dims``. For attribution
    methods, base_value plus the estimated change."""
    dims: tuple[str, ...]
    """Axes of ``values``: ``layer``, ``pos``, ``head``."""
    what: str
    """The sweep: ``resid``, ``attn``, ``mlp``, ``heads``, ``heads_by_pos``, ``q``, ``k``, ``v``, ``pattern``."""
    method: str
    """``exact`` (patched runs), ``atp`` or ``atp*`` (gradient estimates)."""
    direction: str
    """``denoise`` (clean activations into the corrupted run) or ``noise`` (the reverse)."""
    metric: str
    """The task metric the values are in."""
    base_value: float
    """Metric of the unpatched base run (corrupted when denoising)."""
    source_value: float
    """Metric of the run the patches come from (clean when denoising)."""
    layers: tuple[int, ...]
    """Layer of each index on the layer axis."""
    positions: tuple[int, ...]
    """Position of each index on the pos axis (empty without one)."""
    tokens: tuple[str, ...]
    """The first prompt's tokens (labels for the position axis)."""
    task: str
    """Name of the task."""

    @property
    def effects(self) -> Float[Tensor, "..."]:
        """Change of the metric caused by each patch: ``values - base_value``."""
        return self.values - self.base_value

    def plot(self) -> Figure:
        """Heatmap of the effects: layer × position, layer × head, or (layer, head) × position."""
        effects = self.effects
        pos_labels = token_labels([self.tokens[p] for p in self.positions]) if self.positions else None
        layer_labels = [f"L{layer}" for layer in self.layers]
        title = f"{self.task}: {self.method} {self.what} patching ({self.direction}), Δ {self.metric}"
        if self.dims == ("layer", "pos"):
            return heatmap(effects, row_labels=layer_labels, col_labels=pos_labels, title=title,
                           xlabel="position", ylabel="layer", colorbar_label=f"Δ {self.metric}")
        if self.dims == ("layer", "head"):
            prefix = "KV" if self.what in ("k", "v") else "H"  # key/value sweeps run over kv heads
            return heatmap(effects, row_labels=layer_labels, col_labels=[f"{prefix}{h}" for h in range(effects.shape[1])],
                           title=title, xlabel="head", ylabel="layer", colorbar_label=f"Δ {self.metric}")
        n_layers, n_pos, n_heads = effects.shape
        rows = effects.permute(0, 2, 1).reshape(n_layers * n_heads, n_pos)
        labels = [f"L{layer}H{h}" for layer in self.layers for h in range(n_heads)]
        return heatmap(rows, row_labels=labels, col_labels=pos_labels, title=title,
                       xlabel="position", ylabel="head", colorbar_label=f"Δ {self.metric}")

    def top(self, k: int = 10) -> list[tuple[dict[str, int], float]]:
        """The ``k`` cells with the largest absolute effect, as ({axis: index}, effect)."""
        flat = self.effects.flatten()
        order = flat.abs().argsort(descending=True)[:k]
        cells = []
        for index in order.tolist():
            coords = torch.unravel_index(torch.tensor(index), self.values.shape)
            cell = {}
            for dim, i in zip(self.dims, coords):
                i = int(i)
                cell[dim] = self.layers[i] if dim == "layer" else self.positions[i] if dim == "pos" else i
            cells.append((cell, float(flat[index])))
        return cells
