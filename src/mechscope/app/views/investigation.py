"""A stored investigation as the Run page draws it: each stage's numbers, without the bulk.

::

    view = investigation_view(store, run_id)
    view["where"]["exact"]["values"]        # layer × head grid, drawn as a heatmap
    view["circuit"]["view"]["nodes"]        # the node-level circuit

Stages come from their plain JSON, which is cheap to read (decoding the circuit stage into
its classes would build the graph's ~70,000 edges first); the page gets the circuit's check,
curves and node view but not its edge scores, and the Circuit explorer asks for other
budgets separately (:mod:`~.circuit`). Feature dashboards are summarised here and
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
        out["circuit"] = circuit_summary(store.stage_plain(run_id, "circuit"))
    if "features" in have:
        out["features"] = features_summary(store.stage_plain(run_id, "features"))
    return _finite(out)


def circuit_summary(plain: dict) -> dict[str, Any]:
    """The circuit stage's plain JSON without its edge scores and edge list."""
    keep = ("check", "curve", "view", "reached", "selection")
    graph = plain["circuit"]["graph"]
    # Runs stored before the stage chose circuits by |1 − f| ≤ tolerance hold target_f (f ≥ target) instead.
    rule = {k: plain[k] for k in ("tolerance", "target_f") if k in plain}
    return {**{k: plain[k] for k in keep}, **rule, "method": plain["scores"]["method"],
            "ablation": plain["scores"]["ablation"], "n_graph_edges": graph["n_edges"], "n_layers": graph["n_layers"],
            "n_heads": graph["n_heads"]}


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
