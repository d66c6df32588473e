"""Feature dashboards as one self-contained HTML page: inline CSS and SVG, no scripts, no
fonts or files fetched from anywhere.

Every string that comes from the model or the user (tokens, model names, hook names) goes
through :func:`esc` (``html.escape`` with ``quote=True``), in text and in attributes
alike, so that a token such as ``<script>`` is shown as text and can never become markup.
"""

from __future__ import annotations

import html
import math

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1e293b; }
h1 { font-size: 1.4rem; }
h2 { font-size: 1.2rem; margin-top: 2.5rem; border-top: 1px solid #cbd5e1; padding-top: 1rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; } h4 { font-size: 0.9rem; margin: 0.6rem 0 0.2rem; color: #475569; }
.meta, .stats { color: #475569; } nav a { margin-right: 0.6rem; }
.panels { display: flex; flex-wrap: wrap; gap: 1.5rem; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 0.1rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #1d4ed8; } .down { color: #b91c1c; }
.example { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; white-space: pre-wrap;
  margin: 0.15rem 0; padding: 0.2rem 0.4rem; background: #f8fafc; border-radius: 3px; }
.tok { border-radius: 2px; } .center { outline: 1px solid #0f172a; }
.ws { color: #94a3b8; } .value { color: #64748b; font-size: 0.75rem; margin-right: 0.5rem; }
"""


def esc(text) -> str:
    """Text made safe for HTML element content and quoted attribute values."""
    return html.escape(str(text), quote=True)


def render(boards) -> str:
    """The whole page for a :class:`~mechscope.sae.dashboard.FeatureDashboards`."""
    index = " ".join(f'<a href="#feature-{b.feature}">{b.feature}</a>' for b in boards.features)
    shown = {b.feature for b in boards.features}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>SAE feature dashboards: {esc(boards.model_name)} {esc(boards.hook_name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>SAE feature dashboards</h1>",
        f'<p class="meta">model {esc(boards.model_name)} · hook {esc(boards.hook_name)} · '
        f"{boards.d_sae} latents · {boards.n_tokens} tokens</p>",
        f"<nav>features: {index}</nav>",
    ]
    parts += [_feature(board, boards.logits_note, shown) for board in boards.features]
    parts.append("</body></html>")
    return "\n".join(parts)


def _feature(board, logits_note: str, shown: set[int]) -> str:
    density = f"{board.density:.3%}" + (f" (log10 {math.log10(board.density):.2f})" if board.density > 0 else "")
    scale = board.max_activation
    top = "".join(_example(ex, scale) for ex in board.top_examples) or "<p>never fires on this text</p>"
    groups = "".join(
        f"<h4>{esc(f'{g.low:.3g}')} to {esc(f'{g.high:.3g}')} ({g.n_tokens} tokens)</h4>"
        + "".join(_example(ex, scale) for ex in g.examples)
        for g in board.quantiles
    )
    return "\n".join([
        f'<section id="feature-{board.feature}">',
        f"<h2>Feature {board.feature}</h2>",
        f'<p class="stats">density {esc(density)} · max activation {board.max_activation:.4g} · '
        f"mean when firing {board.mean_activation:.4g}</p>",
        '<div class="panels">',
        f"<div><h3>Activations (non-zero)</h3>{_histogram(board.histogram_edges, board.histogram_counts)}</div>",
        _logit_table("Promoted tokens", board.promoted, "up", logits_note),
        _logit_table("Suppressed tokens", board.suppressed, "down", logits_note),
        _neighbors(board.neighbors, shown),
        "</div>",
        f"<h3>Top activations</h3>{top}",
        f"<h3>Quantile samples</h3>{groups}" if groups else "",
        "</section>",
    ])


def _example(example, scale: float) -> str:
    spans = []
    for i, (token, act) in enumerate(zip(example.tokens, example.activations)):
        alpha = max(0.0, min(1.0, act / scale)) if scale > 0 else 0.0
        shown = esc(token).replace("\n", '<span class="ws">↵</span>\n').replace("\t", '<span class="ws">→</span>\t')
        center = " center" if i == example.center else ""
        title = esc(f"{token!r}: {act:.4g}")
        spans.append(f'<span class="tok{center}" style="background:rgba(255,112,0,{alpha:.3f})" '
                     f'title="{title}">{shown}</span>')
    value = example.activations[example.center]
    return f'<div class="example"><span class="value">{value:.3g}</span>{"".join(spans)}</div>'


def _histogram(edges, counts, width: int = 300, height: int = 110) -> str:
    """Inline SVG bars; the x axis runs from 0 to the largest activation."""
    if not counts or max(counts) == 0:
        return "<p>no non-zero activations</p>"
    peak, bar, room = max(counts), width / len(counts), height - 20  # 16 px at the bottom for the axis labels
    bars = "".join(
        f'<rect x="{i * bar:.2f}" y="{height - 16 - c / peak * room:.2f}" width="{max(bar - 1, 0.5):.2f}" '
        f'height="{c / peak * room:.2f}" fill="#f97316"><title>{esc(f"{lo:.3g} to {hi:.3g}: {c}")}</title></rect>'
        for i, (c, lo, hi) in enumerate(zip(counts, edges[:-1], edges[1:]))
    )
    axis = (f'<text x="0" y="{height - 2}" font-size="10">0</text>'
            f'<text x="{width}" y="{height - 2}" font-size="10" text-anchor="end">{esc(f"{edges[-1]:.3g}")}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="activation histogram">{bars}{axis}</svg>')


def _logit_table(title: str, rows, css: str, note: str) -> str:
    if not rows:
        return f"<div><h3>{esc(title)}</h3><p>{esc(note)}</p></div>"
    body = "".join(f'<tr><td><code>{esc(repr(token))}</code></td><td class="num {css}">{value:+.3f}</td></tr>'
                   for token, value in rows)
    return f'<div><h3 title="{esc(note)}">{esc(title)}</h3><table>{body}</table></div>'


def _neighbors(rows, shown: set[int]) -> str:
    def name(i: int) -> str:
        return f'<a href="#feature-{i}">{i}</a>' if i in shown else str(i)

    body = "".join(f'<tr><td>{name(i)}</td><td class="num">{v:.3f}</td></tr>' for i, v in rows)
    return f"<div><h3>Nearest features (decoder cosine)</h3><table>{body}</table></div>"
