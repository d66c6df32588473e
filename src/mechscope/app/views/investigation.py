"""A stored investigation as the Run page draws it: each stage's numbers, without the bulk.

::

    view = investigation_view(store, run_id)
    view["where"]["exact"]["values"]        # layer × head grid, drawn as a heatmap
    view["circuit"]["view"]["nodes"]        # the node-level circuit

Stages come from their plain JSON (cheap), except the circuit stage, decoded from its
stored value so that its ~70,000 edge scores (a tensor) are never turned into JSON; the
page gets the circuit's check, curves and node view, and the Circuit explorer asks for
other budgets separately (:mod:`~.circuit`). Feature dashboards are summarised here and
shown in full on the Features page.
"""

from __future__ import annotations

from typing import Any

from mechscope.app.views.runs import _finite, run_detail

DROP = {"where": {"lens": ("top_token_ids",)}, "who": {}, "behaviour": {}, "split": {}, "summary": {}}
"""Fields of a stage's plain JSON the page does not use."""


def investigation_view(store, run_id: str) -> dict[str, Any]:
    """Everything the Run page shows of an investigation (see the module docstring)."""
    detail = run_detail(store, run_id)
    have = {s["name"] for s in detail["stages"]}
    out: dict[str, Any] = {"run": detail}
    for name, drops in DROP.items():
        if name in have:
            out[name] = _without(store.stage_plain(run_id, name), drops)
    if "circuit" in have:
        out["circuit"] = circuit_summary(store.stage_value(run_id, "circuit"))
    if "features" in have:
        out["features"] = features_summary(store.stage_plain(run_id, "features"))
    return _finite(out)


def circuit_summary(stage) -> dict[str, Any]:
    """The circuit stage without its edge scores."""
    scores = stage.scores
    return {"check": stage.check.to_dict(), "curve": stage.curve.to_dict(), "signed_curve": stage.signed_curve.to_dict(),
            "view": stage.view.to_dict(), "target_f": stage.target_f, "reached": stage.reached,
            "selection": stage.selection, "method": scores.method, "ablation": scores.ablation,
            "n_graph_edges": scores.graph.n_edges, "n_layers": scores.graph.n_layers, "n_heads": scores.graph.n_heads}


def features_summary(plain: dict) -> list[dict[str, Any]]:
    """Per SAE: where it reads, its strongest attributions, and which features have dashboards."""
    out = []
    for index, sae in enumerate(plain.get("saes", [])):
        attribution = sae["attribution"]
        values = attribution["attributions"]
        order = sorted(range(len(values)), key=lambda i: -abs(values[i]))[:20]
        boards = sae["dashboards"]["features"]
        out.append({"index": index, "path": sae["path"], "hook_name": attribution["hook_name"],
                    "metric": attribution["metric"], "top": [[i, values[i]] for i in order],
                    "dashboards": [{"feature": b["feature"], "density": b["density"], "max": b["max_activation"]}
                                   for b in boards]})
    return out


def _without(plain: dict, drops: dict[str, tuple[str, ...]]) -> dict:
    out = dict(plain)
    for field, inner in drops.items():
        if isinstance(out.get(field), dict):
            out[field] = {k: v for k, v in out[field].items() if k not in inner}
    return out
