"""A circuit at the level people reason about: the heads and MLPs that matter, and the
few dozen strongest connections between them.

::

    view = node_view(circuit, max_nodes=24, max_edges=40, roles={"L9H6": "name mover"})
    view.to_svg("circuit.svg")

A circuit of 3,500 edges drawn edge by edge is a hairball. Here every node of the
circuit gets an **importance**, the sum of |score| over the circuit's edges that touch it
(as sender or receiver), and only the ``max_nodes`` most important are drawn, sized by
importance; the edges between them are merged per pair of nodes (a head's q, k and v
inputs from one sender become one connection, scores added) and only the ``max_edges``
strongest are drawn, their width growing with |score|. Layers are rows, the embeddings at
the bottom, the logits at the top. Everything left out is counted in the caption; the
full edge list stays in the circuit's JSON.

**Colours.** A score is the change in the task metric when that edge alone is ablated, so
a negative score means the edge *carries* the behaviour (removing it lowers the metric):
drawn blue; a positive score means the edge works *against* it: red.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

from mechscope.circuits.graph import Node
from mechscope.results import Result, write_text_atomic

SUPPORTS, OPPOSES = "#2563eb", "#dc2626"


@dataclass(frozen=True)
class ViewNode:
    """A component as drawn."""

    name: str
    """``embed``, ``L9H6``, ``L9KV1`` (a key/value head), ``MLP9`` or ``logits``."""
    layer: int
    """Row: -1 for the embeddings, n_layers for the logits."""
    column: int
    """Order within the row: head index, n_heads for the MLP."""
    importance: float
    """Sum of |score| over the circuit's edges touching it."""
    role: str = ""
    """What it does, where known (e.g. ``name mover``)."""


@dataclass(frozen=True)
class ViewEdge:
    """The circuit's edges from one node into another, merged."""

    sender: str
    receiver: str
    inputs: str
    """Which inputs of the receiver (``q``, ``kv``, ``qkv``…; "" for an MLP or the logits)."""
    score: float
    """Sum of the merged edges' scores."""


@dataclass(frozen=True)
class NodeView(Result):
    """The drawable summary of a circuit (see the module docstring)."""

    title: str
    nodes: tuple[ViewNode, ...]
    edges: tuple[ViewEdge, ...]
    n_layers: int
    n_heads: int
    n_circuit_edges: int
    """Edges in the circuit."""
    n_graph_edges: int
    """Edges in the model's whole graph."""
    hidden_nodes: int
    """Circuit nodes left out (below the ``max_nodes`` most important)."""
    hidden_edges: int
    """Merged connections between shown nodes left out (beyond ``max_edges``)."""

    def to_svg(self, path: str | Path | None = None) -> str:
        """The view as a self-contained SVG (written atomically to ``path`` if given)."""
        svg = _svg(self)
        if path is not None:
            write_text_atomic(path, svg)
        return svg


def display_name(node: Node) -> str:
    """``L9H6``, ``L9KV1``, ``MLP9``, ``embed`` or ``logits`` for a graph node."""
    return {"attn": f"L{node.layer}H{node.index}", "kv": f"L{node.layer}KV{node.index}",
            "mlp": f"MLP{node.layer}", "input": "embed"}.get(node.kind, node.kind)


def node_view(circuit, *, max_nodes: int = 24, max_edges: int = 40, roles: Mapping[str, str] | None = None,
              title: str | None = None) -> NodeView:
    """The node-level view of a :class:`~mechscope.circuits.Circuit`."""
    graph, scores = circuit.graph, circuit.scores
    importance: dict[Node, float] = defaultdict(float)
    pairs: dict[tuple[Node, Node], list] = defaultdict(lambda: [0.0, set()])
    for edge in circuit.edges:
        value = float(scores.get(edge, 0.0))
        receiver = edge.receiver.node
        importance[edge.sender] += abs(value)
        importance[receiver] += abs(value)
        pairs[(edge.sender, receiver)][0] += value
        if edge.receiver.input:
            pairs[(edge.sender, receiver)][1].add(edge.receiver.input)
    ends = {n for n in importance if n.kind in ("input", "logits")}
    ranked = sorted((n for n in importance if n not in ends), key=lambda n: -importance[n])
    shown = set(ranked[:max_nodes]) | ends
    connections = sorted(((s, r, v) for (s, r), v in pairs.items() if s in shown and r in shown),
                         key=lambda item: -abs(item[2][0]))
    roles = roles or {}
    nodes = tuple(ViewNode(name=display_name(n), layer=_row(n, graph.n_layers), column=_column(n, graph.n_heads),
                           importance=importance[n], role=roles.get(display_name(n), ""))
                  for n in sorted(shown))
    edges = tuple(ViewEdge(sender=display_name(s), receiver=display_name(r),
                           inputs="".join(i for i in "qkv" if i in value[1]), score=value[0])
                  for s, r, value in connections[:max_edges])
    return NodeView(
        title=title or f"{circuit.model_name} · {circuit.method} circuit",
        nodes=nodes, edges=edges, n_layers=graph.n_layers, n_heads=graph.n_heads,
        n_circuit_edges=len(circuit.edges), n_graph_edges=graph.n_edges,
        hidden_nodes=max(0, len(ranked) - max_nodes), hidden_edges=max(0, len(connections) - max_edges))


def _row(node: Node, n_layers: int) -> int:
    return -1 if node.kind == "input" else n_layers if node.kind == "logits" else node.layer


def _column(node: Node, n_heads: int) -> int:
    return n_heads if node.kind == "mlp" else node.index


# ------------------------------------------------------------------------ drawing
def _svg(view: NodeView, width: int = 960, row_height: int = 62) -> str:
    rows = sorted({n.layer for n in view.nodes})
    y_of = {layer: 70 + (len(rows) - 1 - i) * row_height for i, layer in enumerate(rows)}
    height = 70 + len(rows) * row_height + 40
    by_row: dict[int, list[ViewNode]] = defaultdict(list)
    for node in view.nodes:
        by_row[node.layer].append(node)
    xy: dict[str, tuple[float, float]] = {}
    for layer, members in by_row.items():
        members.sort(key=lambda n: n.column)
        step = (width - 180) / max(len(members), 1)
        for i, node in enumerate(members):
            xy[node.name] = (150 + step * (i + 0.5), y_of[layer])
    top_node = max((n.importance for n in view.nodes if n.layer not in (-1, view.n_layers)), default=1.0) or 1.0
    top_edge = max((abs(e.score) for e in view.edges), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(view.title)}</text>',
             f'<text x="12" y="42" font-size="11.5" fill="#475569">{escape(_caption(view))}</text>']
    for layer in rows:
        label = "embed" if layer == -1 else "logits" if layer == view.n_layers else f"layer {layer}"
        parts.append(f'<text x="12" y="{y_of[layer] + 4}" font-size="11" fill="#64748b">{label}</text>'
                     f'<line x1="95" y1="{y_of[layer]}" x2="{width - 20}" y2="{y_of[layer]}" stroke="#f1f5f9"/>')
    for edge in sorted(view.edges, key=lambda e: abs(e.score)):
        (x1, y1), (x2, y2) = xy[edge.sender], xy[edge.receiver]
        colour = SUPPORTS if edge.score < 0 else OPPOSES
        # a gentle bend; edges within one row arc above it instead of running through its nodes
        bx, by = ((x1 + x2) / 2, y1 - 28) if y1 == y2 else ((x1 + x2) / 2 + (y1 - y2) * 0.15, (y1 + y2) / 2)
        parts.append(f'<path d="M{x1:.1f},{y1:.1f} Q{bx:.1f},{by:.1f} {x2:.1f},{y2:.1f}" fill="none" '
                     f'stroke="{colour}" stroke-opacity="0.55" stroke-width="{0.8 + 6 * abs(edge.score) / top_edge:.2f}">'
                     f'<title>{escape(edge.sender)} → {escape(edge.receiver)}'
                     f'{escape(" <" + edge.inputs + ">") if edge.inputs else ""}: {edge.score:+.4g}</title></path>')
    for node in view.nodes:
        x, y = xy[node.name]
        end = node.layer in (-1, view.n_layers)
        radius = 13 if end else 7 + 13 * (node.importance / top_node) ** 0.5
        fill = "#e2e8f0" if end else "#fef3c7" if node.name.startswith("MLP") else "#e0f2fe"
        tip = f"{node.name}: importance {node.importance:.4g}" + (f"; {node.role}" if node.role else "")
        parts.append(f'<g><title>{escape(tip)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{fill}" '
                     f'stroke="#334155"/><text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="10" text-anchor="middle">'
                     f'{escape(node.name)}</text>')
        if node.role:
            parts.append(f'<text x="{x:.1f}" y="{y + radius + 11:.1f}" font-size="9.5" text-anchor="middle" '
                         f'fill="#7c2d12">{escape(node.role)}</text>')
        parts.append("</g>")
    parts.append(_legend(width, height))
    return "".join(parts) + "</svg>\n"


def _caption(view: NodeView) -> str:
    text = (f"{view.n_circuit_edges:,} of {view.n_graph_edges:,} edges "
            f"({view.n_circuit_edges / max(view.n_graph_edges, 1):.1%}); "
            f"{len(view.nodes)} nodes and {len(view.edges)} strongest connections shown")
    hidden = []
    if view.hidden_nodes:
        hidden.append(f"{view.hidden_nodes} less important nodes")
    if view.hidden_edges:
        hidden.append(f"{view.hidden_edges} weaker connections")
    return text + (f"; left out: {', '.join(hidden)} (all edges in the JSON)" if hidden else "")


def _legend(width: int, height: int) -> str:
    x, y = width - 330, height - 18
    return (f'<g font-size="11"><line x1="{x}" y1="{y}" x2="{x + 26}" y2="{y}" stroke="{SUPPORTS}" stroke-width="4"/>'
            f'<text x="{x + 32}" y="{y + 4}">carries the behaviour</text>'
            f'<line x1="{x + 170}" y1="{y}" x2="{x + 196}" y2="{y}" stroke="{OPPOSES}" stroke-width="4"/>'
            f'<text x="{x + 202}" y="{y + 4}">works against it</text></g>'
            f'<text x="12" y="{height - 14}" font-size="10.5" fill="#64748b">node size: importance (sum of |edge '
            f'score|); line width: |score|; hover for values</text>')
