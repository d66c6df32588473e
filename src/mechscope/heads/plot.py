"""Layer × head score maps, several to one figure (object API only, no pyplot state)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from matplotlib.figure import Figure
from torch import Tensor


def score_grid(scores: Mapping[str, Tensor], *, title: str = "", n_cols: int = 3) -> Figure:
    """One heatmap per score (rows: layers, columns: heads), all on the 0..1 colour scale."""
    n_rows = math.ceil(len(scores) / n_cols)
    n_layers, n_heads = next(iter(scores.values())).shape
    width = n_cols * min(2.0 + 0.35 * n_heads, 8.0)
    height = n_rows * min(1.5 + 0.22 * n_layers, 9.0) + 0.5
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for ax, (name, values) in zip(axes.flat, scores.items()):
        data = torch.as_tensor(values).detach().float().cpu().numpy()
        image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_title(name.replace("_", " "), parse_math=False)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(0, n_layers, max(1, n_layers // 15)))
    for ax in list(axes.flat)[len(scores):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="score")
    if title:
        fig.suptitle(title, parse_math=False)
    return fig
