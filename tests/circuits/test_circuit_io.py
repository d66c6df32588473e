"""Circuits: chosen by budget, saved as JSON and read back, drawn as escaped SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mechscope.circuits import CircuitGraph
from mechscope.circuits.circuit import Circuit
from mechscope.errors import InputError

GRAPH = CircuitGraph(n_layers=3, n_heads=4, n_kv_heads=2, parallel_attn=False)
SCORES = {e: (i % 7 - 3) / 10 for i, e in enumerate(GRAPH.edges)}


def test_budget_chooses_that_fraction_of_the_edges_by_score():
    circuit = Circuit.from_scores(GRAPH, SCORES, budget=0.05, method="eap", model_name="<tiny>")
    assert len(circuit.edges) == round(0.05 * GRAPH.n_edges)
    kept = min(abs(SCORES[e]) for e in circuit.edges)
    assert all(abs(SCORES[e]) <= kept for e in GRAPH.edges if e not in circuit.edges)


def test_json_round_trip(tmp_path):
    circuit = Circuit.from_scores(GRAPH, SCORES, budget=0.1, method="eap-ig", model_name="tiny")
    path = circuit.save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["graph"]["n_edges"] == GRAPH.n_edges and len(data["edges"]) == len(circuit.edges)
    assert all(" ← " in item["edge"] for item in data["edges"]) and data["nodes"] == [n.name for n in circuit.nodes]
    back = Circuit.load(path)
    assert back.edges == circuit.edges and back.scores == circuit.scores and back.method == "eap-ig"
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="not a mechscope circuit"):
        Circuit.load(tmp_path / "other.json")


def test_svg_is_valid_escaped_and_scales_edge_width(tmp_path):
    circuit = Circuit.from_scores(GRAPH, SCORES, budget=0.05, method="<script>", model_name="a&b")
    svg = circuit.to_svg(tmp_path / "c.svg")
    root = ET.fromstring(svg)  # well-formed XML
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    every = root.findall("{http://www.w3.org/2000/svg}line")
    lines = [line for line in every if line.find("{http://www.w3.org/2000/svg}title") is not None]  # the edges
    assert len(lines) == len(circuit.edges) and len(every) == len(lines) + 2  # + the legend's two colours
    assert "removing the edge raises the metric" in svg and "removing the edge lowers the metric" in svg
    widths = {line.find("{http://www.w3.org/2000/svg}title").text.split(":")[0]: float(line.get("stroke-width"))
              for line in lines}
    strongest = max(circuit.edges, key=lambda e: abs(SCORES[e]))
    assert widths[strongest.name] == max(widths.values())
    assert (tmp_path / "c.svg").read_text() == svg
