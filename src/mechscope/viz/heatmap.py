"""Heatmaps labelled with the prompt's tokens (layer × position, layer × head …).

    fig = heatmap(scores, row_labels=[f"L{l}" for l in range(n_layers)],
                  col_labels=token_labels(model.to_str_tokens(prompt)), title="…")
    fig.savefig("patching.png")

Labels are drawn as plain text: a token such as ``$x$`` is never read as mathtext.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure


def token_labels(tokens: Sequence[str], positions: Sequence[int] | None = None) -> list[str]:
    """Tokens as short, visible labels: whitespace shown, position appended (``positions``:
    each token's position in its prompt, when the tokens are not all of it from 0)."""
    labels = []
    for i, token in zip(range(len(tokens)) if positions is None else positions, tokens):
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
    # Wrapped to the axes' width (the figure's less labels and colour bar), so no part of it falls outside.
    ax.set_title(_wrapped(title, fig.get_figwidth() - 2.0), parse_math=False)
    ax.set_xlabel(xlabel, parse_math=False)
    ax.set_ylabel(ylabel, parse_math=False)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return fig


def heatmap_grid(
    panels: Sequence[torch.Tensor],
    *,
    panel_titles: Sequence[str],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "",
    max_cols: int = 7,
) -> Figure:
    """Small multiples: one 2-d heatmap per panel (rows × columns, e.g. layer × head), all
    on one diverging colour scale symmetric around zero, with one colour bar."""
    data = [torch.as_tensor(p).detach().float().cpu() for p in panels]
    n_rows_data, n_cols_data = data[0].shape
    n_rows = math.ceil(len(data) / max_cols)
    n_cols = math.ceil(len(data) / n_rows)  # rows as full as they can be
    width = min(n_cols * (0.9 + 0.2 * n_cols_data) + 1.5, 24)
    height = min(n_rows * (0.8 + 0.1 * n_rows_data) + 1.0, 24)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    bound = max(float(d.abs().max()) for d in data) or 1.0
    image = None
    for ax, values, name in zip(axes.flat, data, panel_titles):
        image = ax.imshow(values.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto",
                          interpolation="nearest")
        ax.set_title(name, fontsize=9, parse_math=False)
        ax.set_yticks(range(0, n_rows_data, max(1, n_rows_data // 10)))
        ax.set_xticks(range(0, n_cols_data, max(1, n_cols_data // 8)))
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, parse_math=False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, parse_math=False)
    for ax in list(axes.flat)[len(data):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    if title:
        fig.suptitle(_wrapped(title, fig.get_figwidth()), parse_math=False)
    return fig


def _wrapped(title: str, inches: float) -> str:
    """``title`` broken into lines that fit ``inches`` at the default 12 pt (~7 pt a character)."""
    return textwrap.fill(title, max(20, int(inches * 72 / 7))) if title else title
