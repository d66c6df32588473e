"""Figures for results: matplotlib's object API only (no pyplot, no global settings)."""

from mechscope.viz.heatmap import heatmap, heatmap_grid, token_labels
from mechscope.viz.save import save_figure

__all__ = ["heatmap", "heatmap_grid", "save_figure", "token_labels"]
