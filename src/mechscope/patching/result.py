"""The result of a patching sweep (exact or attribution-estimated), with its picture."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.results import Result
from mechscope.viz import heatmap, heatmap_grid, token_labels

MAX_PLOTTED_POSITIONS = 60
"""Positions drawn on a layer × position map; a longer prompt's are cut to the strongest."""
MAX_PANELS = 16
"""Positions drawn as layer × head maps for heads by position."""


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

    def plot(self, *, max_positions: int = MAX_PLOTTED_POSITIONS, max_panels: int = MAX_PANELS) -> Figure:
        """Heatmap of the effects: layer × position, or layer × head; heads by position as a
        grid of layer × head maps, one per position. A long prompt's positions are cut to
        the ``max_positions`` (``max_panels`` for heads) with the largest |effect|, in
        order; the title says how many were left out (the result keeps every one)."""
        effects = self.effects
        layer_labels = [f"L{layer}" for layer in self.layers]
        title = f"{self.task}: {self.method} {self.what} patching ({self.direction}), Δ {self.metric}"
        label = f"Δ {self.metric}"
        if self.dims == ("layer", "head"):
            prefix = "KV" if self.what in ("k", "v") else "H"  # key/value sweeps run over kv heads
            return heatmap(effects, row_labels=layer_labels, col_labels=[f"{prefix}{h}" for h in range(effects.shape[1])],
                           title=title, xlabel="head", ylabel="layer", colorbar_label=label)
        keep = self._shown_positions(max_positions if self.dims == ("layer", "pos") else max_panels)
        if len(keep) < len(self.positions):
            title += f" ({len(keep)} of {len(self.positions)} positions shown: largest |effect|)"
        positions = [self.positions[i] for i in keep]
        if self.dims == ("layer", "pos"):
            return heatmap(effects[:, keep], row_labels=layer_labels, title=title, xlabel="position",
                           col_labels=token_labels([self.tokens[p] for p in positions], positions),
                           ylabel="layer", colorbar_label=label)
        panels = [effects[:, i] for i in keep]  # layer × head at each position
        names = token_labels([self.tokens[p] for p in positions], positions)
        return heatmap_grid(panels, panel_titles=[f"position {name}" for name in names], title=title,
                            xlabel="head", ylabel="layer", colorbar_label=label)

    def _shown_positions(self, most: int) -> list[int]:
        """Indices on the position axis to draw: all, or the ``most`` with the largest |effect|."""
        n = len(self.positions)
        if n <= most:
            return list(range(n))
        size = self.effects.abs().amax(dim=[d for d in range(self.effects.dim()) if self.dims[d] != "pos"])
        return sorted(size.topk(most).indices.tolist())

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
