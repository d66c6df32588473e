"""A circuit as a result: its edges and their scores, saved as JSON and drawn as SVG.

::

    circuit = Circuit.from_scores(graph, scores, budget=0.05, method="eap-ig", model_name=model.name)
    circuit.save("ioi_circuit.json")          # nodes, edges, scores; Circuit.load reads it back
    circuit.to_svg("ioi_circuit.svg")         # no graphviz: nodes laid out by layer

The SVG is written by hand: one row per layer (input at the bottom, logits on top),
heads left to right then the MLP, each edge a line from sender to receiver whose width
grows with |score| (blue positive, red negative). Key/value heads sit just below their
layer's row, centred under the query heads they serve. Every label is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

from mechscope.circuits.faithfulness import budget_edges, select_edges
from mechscope.circuits.graph import CircuitGraph, Edge, Node
from mechscope.errors import InputError
from mechscope.results import Result, write_json, write_text_atomic

FORMAT = "mechscope.circuit/1"


@dataclass(frozen=True)
class Circuit(Result):
    """A set of edges of a :class:`CircuitGraph`, with the scores that chose them."""

    graph: CircuitGraph
    """The graph the edges belong to."""
    edges: frozenset[Edge]
    """The circuit."""
    scores: Mapping[Edge, float]
    """Each edge's score (every edge of the graph, or only the circuit's)."""
    method: str = ""
    """How the scores were computed (``eap``, ``eap-ig``, ``acdc``, …)."""
    model_name: str = ""
    """The model the graph is of."""

    @classmethod
    def from_scores(cls, graph: CircuitGraph, scores: Mapping[Edge, float], *, budget: float,
                    absolute: bool = True, selection: str = "top", method: str = "", model_name: str = "") -> Circuit:
        """``budget`` (a fraction) of the edges by (absolute) score, chosen by ``selection``
        (``top`` or ``greedy``, see :mod:`mechscope.circuits.faithfulness`)."""
        edges = select_edges(graph, scores, budget_edges(graph.n_edges, budget), absolute=absolute,
                             selection=selection)
        return cls(graph=graph, edges=edges, scores=dict(scores), method=method, model_name=model_name)

    @property
    def nodes(self) -> list[Node]:
        """Every node that an edge of the circuit touches, in order."""
        return sorted({e.sender for e in self.edges} | {e.receiver.node for e in self.edges})

    def to_dict(self) -> dict:
        g = self.graph
        ordered = sorted(self.edges)
        return {
            "format": FORMAT, "type": "Circuit", "method": self.method, "model_name": self.model_name,
            "graph": {"n_layers": g.n_layers, "n_heads": g.n_heads, "n_kv_heads": g.n_kv_heads,
                      "parallel_attn": g.parallel_attn, "n_edges": g.n_edges},
            "nodes": [n.name for n in self.nodes],
            "edges": [{"edge": e.name, "score": self.scores.get(e)} for e in ordered],
            "scores": {e.name: float(s) for e, s in sorted(self.scores.items())},
        }

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Circuit:
        """Read a circuit :meth:`save` wrote."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise InputError(f"{path} is not a mechscope circuit (format {data.get('format')!r}, expected {FORMAT!r})")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Circuit:
        """The circuit :meth:`to_dict` describes."""
        shape = {k: data["graph"][k] for k in ("n_layers", "n_heads", "n_kv_heads", "parallel_attn")}
        graph = CircuitGraph(**shape)
        scores = {graph.edge(name): float(score) for name, score in data["scores"].items()}
        edges = frozenset(graph.edge(item["edge"]) for item in data["edges"])
        return cls(graph=graph, edges=edges, scores=scores, method=data["method"], model_name=data["model_name"])

    # ---------------------------------------------------------------- drawing
    def to_svg(self, path: str | Path | None = None, *, width: int = 900, row_height: int = 70) -> str:
        """The circuit as SVG text (written to ``path`` if given)."""
        g = self.graph
        columns = g.n_heads + 1
        height = row_height * (g.n_layers + 2) + 40
        step = (width - 80) / max(columns - 1, 1)

        def xy(node: Node) -> tuple[float, float]:
            row = {"input": -1, "logits": g.n_layers}.get(node.kind, node.layer)
            y = height - 40 - (row + 1) * row_height
            if node.kind in ("input", "logits"):
                return width / 2, y
            if node.kind == "mlp":
                return 40 + (columns - 1) * step, y
            if node.kind == "kv":  # a key/value head: centred under the query heads it serves, a little lower
                return 40 + (node.index * g.group + (g.group - 1) / 2) * step, y + row_height * 0.4
            return 40 + node.index * step, y

        top = max((abs(s) for e, s in self.scores.items() if e in self.edges), default=1.0) or 1.0
        lines = []
        for e in sorted(self.edges, key=lambda e: abs(self.scores.get(e, 0.0))):
            (x1, y1), (x2, y2) = xy(e.sender), xy(e.receiver.node)
            score = self.scores.get(e, 0.0)
            colour = "#2563eb" if score >= 0 else "#dc2626"
            lines.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                         f'stroke-opacity="0.6" stroke-width="{0.5 + 5 * abs(score) / top:.2f}">'
                         f"<title>{escape(e.name)}: {score:.4g}</title></line>")
        labels = []
        for node in self.nodes:
            x, y = xy(node)
            labels.append(f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="22" ry="11" fill="#f8fafc" stroke="#334155"/>'
                          f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="9.5" text-anchor="middle">{escape(node.name)}</text>')
        title = escape(f"{self.model_name} · {self.method} · {len(self.edges)} of {g.n_edges} edges")
        legend = "".join(
            f'<line x1="{width - 390}" y1="{y - 4}" x2="{width - 360}" y2="{y - 4}" stroke="{colour}" stroke-width="3"/>'
            f'<text x="{width - 352}" y="{y}" font-size="11">{text}</text>'
            for y, colour, text in ((16, "#2563eb", "score &gt; 0: removing the edge raises the metric"),
                                    (32, "#dc2626", "score &lt; 0: removing the edge lowers the metric")))
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'font-family="sans-serif"><text x="10" y="20" font-size="13">{title}</text>{legend}'
               f'<text x="{width - 390}" y="48" font-size="11">line width: |score|</text>'
               + "".join(lines) + "".join(labels) + "</svg>\n")
        if path is not None:
            write_text_atomic(path, svg)
        return svg
