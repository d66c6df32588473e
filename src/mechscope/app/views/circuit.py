"""The Circuit explorer's data: the stored circuit at another budget, and what is known of each node.

::

    stage = store.stage_value(run_id, "circuit")
    at = circuit_at(stage, budget=0.02, roles={"L9H6": "mover"})
    at["view"]["nodes"], at["f"]            # the node view, f read from the stored curve

A budget redraws the circuit from the stored edge scores, chosen the way the stored
faithfulness curve chose its circuits (its ``selection`` and ``absolute`` ranking), so the
f shown next to it is the one the curve measured at that budget: the slider stops at the
curve's budgets and at the chosen circuit's size, where f was measured, and nowhere else.
"""

from __future__ import annotations

import math
from typing import Any

from mechscope.circuits.circuit import Circuit
from mechscope.circuits.faithfulness import budget_edges, select_edges
from mechscope.circuits.view import node_view
from mechscope.errors import InputError


def budget_stops(stage) -> list[dict[str, Any]]:
    """Every budget where f was measured: the curve's, and the chosen circuit's."""
    curve, check = stage.curve, stage.check
    stops = [{"budget": b, "edges": n, "f": f, "label": f"{b:.1%}".replace(".0%", "%")}
             for b, n, f in zip(curve.budgets, curve.n_edges, curve.faithfulness)]
    chosen = {"budget": check.fraction, "edges": check.n_edges, "f": check.f_discovery, "f_heldout": check.f_heldout,
              "label": f"chosen ({check.fraction:.2%})", "chosen": True}
    stops = [s for s in stops if s["edges"] != check.n_edges] + [chosen]
    return sorted(stops, key=lambda s: s["edges"])


def ranked_scores(stage) -> dict:
    """Every edge's score as the investigation ranked it (negated for a lower-is-better metric)."""
    scores = stage.scores.as_dict()
    sign = 1.0
    for edge, value in stage.circuit.scores.items():
        raw = scores.get(edge, 0.0)
        if raw and value:
            sign = -1.0 if math.copysign(1.0, raw) != math.copysign(1.0, value) else 1.0
            break
    return scores if sign > 0 else {e: -v for e, v in scores.items()}


def circuit_at(stage, edges: int, *, ranked: dict | None = None, roles: dict[str, str] | None = None,
               max_nodes: int = 40, max_edges: int = 80) -> dict[str, Any]:
    """The node view of the circuit of ``edges`` edges (one of :func:`budget_stops`)."""
    stops = {s["edges"]: s for s in budget_stops(stage)}
    if edges not in stops:
        raise InputError(f"f was measured at {', '.join(str(e) for e in sorted(stops))} edges only; "
                         f"received {edges}. Pick one of the slider's stops")
    stop = stops[edges]
    if stop.get("chosen"):
        circuit = stage.circuit
    else:
        ranked = ranked if ranked is not None else ranked_scores(stage)
        graph = stage.scores.graph
        kept = select_edges(graph, ranked, budget_edges(graph.n_edges, stop["budget"]), absolute=stage.curve.absolute,
                            selection=stage.curve.selection)
        circuit = Circuit(graph=graph, edges=kept, scores={e: ranked[e] for e in kept}, method=stage.circuit.method,
                          model_name=stage.circuit.model_name)
    view = node_view(circuit, max_nodes=max_nodes, max_edges=max_edges, roles=roles or {},
                     title=stage.view.title)
    return {"stop": stop, "view": view.to_dict(), "n_edges": len(circuit.edges)}


def node_roles(who_plain: dict | None) -> dict[str, str]:
    """``{"L9H6": "induction, mover"}`` from the who stage's labels (its top heads only)."""
    if not who_plain:
        return {}
    return {head: ", ".join(role for role, _ in found[:2]) for head, found in who_plain.get("labels", {}).items() if found}
