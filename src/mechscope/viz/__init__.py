"""Figures for results: matplotlib's object API only (no pyplot, no global settings)."""

from mechscope.viz.heatmap import heatmap, token_labels

__all__ = ["heatmap", "token_labels"]
