"""Heatmaps labelled with the prompt's tokens (layer × position, layer × head …).

    fig = heatmap(scores, row_labels=[f"L{l}" for l in range(n_layers)],
                  col_labels=token_labels(model.to_str_tokens(prompt)), title="…")
    fig.savefig("patching.png")

Labels are drawn as plain text: a token such as ``$x$`` is never read as mathtext.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Tokens as short, visible labels: whitespace shown, position appended."""
    labels = []
    for i, token in enumerate(tokens):
        shown = token.replace("\n", "\\n").replace("\t", "\\t")
        shown = shown if shown.strip() else repr(shown)
        labels.append(f"{shown}|{i}")
    return labels


def heatmap(
    values: torch.Tensor,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "",
    centered: bool = True,
) -> Figure:
    """A 2-d heatmap; ``centered`` uses a diverging map symmetric around zero."""
    data = torch.as_tensor(values).detach().float().cpu()
    if data.dim() != 2:
        raise ValueError(f"heatmap needs a 2-d tensor; received shape {tuple(data.shape)}")
    n_rows, n_cols = data.shape
    fig = Figure(figsize=(min(2 + 0.45 * n_cols, 24), min(1.5 + 0.3 * n_rows, 30)), layout="constrained")
    ax = fig.add_subplot()
    if centered:
        bound = float(data.abs().max()) or 1.0
        image = ax.imshow(data.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    else:
        image = ax.imshow(data.numpy(), cmap="viridis", aspect="auto")
    if col_labels is not None:
        ax.set_xticks(range(n_cols))
        ax.set_xticklabels(list(col_labels), rotation=90, fontsize=8, parse_math=False)
    if row_labels is not None:
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels(list(row_labels), fontsize=8, parse_math=False)
    ax.set_title(title, parse_math=False)
    ax.set_xlabel(xlabel, parse_math=False)
    ax.set_ylabel(ylabel, parse_math=False)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return fig
