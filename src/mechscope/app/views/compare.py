"""Two runs side by side: the same rows for both, each marked where they differ.

::

    compare_runs(store, "20261205-1", "20261205-2")["rows"]
    # [{"section": "options", "name": "circuit_method", "a": "eap", "b": "eap-ig-inputs", "differs": True}, ...]

Rows cover what any two runs share (model, task, command, options, headline numbers);
two investigations also compare their behaviour, top heads (shared ones named), circuit
checks and faithfulness curves, which the page draws on one chart. A number "differs"
when the two values are further apart than :data:`NUMBER_TOLERANCE` (relative).
"""

from __future__ import annotations

import math
from typing import Any

from mechscope.app.views.investigation import circuit_summary
from mechscope.app.views.runs import _finite, run_detail

NUMBER_TOLERANCE = 0.05
"""Relative difference below which two numbers are shown as equal."""


def compare_runs(store, a: str, b: str) -> dict[str, Any]:
    """The Compare page's data for runs ``a`` and ``b``."""
    left, right = run_detail(store, a), run_detail(store, b)
    rows = [_row("run", name, left[key], right[key]) for name, key in
            (("command", "command"), ("model", "model"), ("model weights", "model_hash"), ("task", "task"),
             ("task prompts", "task_hash"), ("status", "status"), ("seconds", "seconds"), ("version", "version"))]
    rows += _rows("options", left["options"], right["options"])
    rows += _rows("headline", left["summary"], right["summary"])
    out: dict[str, Any] = {"a": left, "b": right, "rows": rows, "curves": {}, "claims": {}}
    if left["command"] == right["command"] == "investigate":
        sides = {"a": _investigation_parts(store, a), "b": _investigation_parts(store, b)}
        out["rows"] += _investigation_rows(sides["a"], sides["b"])
        out["curves"] = {side: parts["curves"] for side, parts in sides.items()}
        out["claims"] = {side: parts["claims"] for side, parts in sides.items()}
        shared = set(sides["a"]["top_heads"]) & set(sides["b"]["top_heads"])
        out["top_heads"] = {side: [{"head": h, "shared": h in shared} for h in parts["top_heads"]]
                            for side, parts in sides.items()}
    return _finite(out)


def _investigation_parts(store, run_id: str) -> dict[str, Any]:
    have = {s.name for s in store.stages(run_id)}
    parts: dict[str, Any] = {"top_heads": [], "curves": [], "claims": [], "numbers": {}}
    if "behaviour" in have:
        d = store.stage_plain(run_id, "behaviour")["discovery"]
        parts["numbers"] |= {"clean accuracy": d["clean_accuracy"], "logit diff clean": d["clean_metric"],
                             "logit diff corrupted": d["corrupt_metric"]}
    if "where" in have:
        parts["top_heads"] = list(store.stage_plain(run_id, "where")["top_heads"])
    if "circuit" in have:
        stage = circuit_summary(store.stage_plain(run_id, "circuit"))
        check, curve = stage["check"], stage["curve"]
        parts["numbers"] |= {"circuit edges": check["n_edges"], "circuit fraction": check["fraction"],
                             "f discovery": check["f_discovery"], "f held out": check["f_heldout"],
                             "complement f": check["complement_f"], "CMD": curve["cmd"], "CPR": curve["cpr"]}
        parts["curves"] = [{"label": ("|score|, " if curve["absolute"] else "signed, ") + curve["selection"],
                            "budgets": curve["budgets"], "f": curve["faithfulness"]}]
    if "summary" in have:
        summary = store.stage_plain(run_id, "summary")
        parts["claims"] = [c["text"] for c in summary["claims"]] + ["⚠ " + c["text"] for c in summary["caveats"]]
    return parts


def _investigation_rows(a: dict, b: dict) -> list[dict[str, Any]]:
    names = list(dict.fromkeys([*a["numbers"], *b["numbers"]]))
    rows = [_row("investigation", name, a["numbers"].get(name), b["numbers"].get(name)) for name in names]
    rows.append(_row("investigation", "top heads", ", ".join(a["top_heads"]), ", ".join(b["top_heads"])))
    return rows


def _rows(section: str, a: dict, b: dict) -> list[dict[str, Any]]:
    keys = list(dict.fromkeys([*a, *b]))
    return [_row(section, key, a.get(key), b.get(key)) for key in keys]


def _row(section: str, name: str, a: Any, b: Any) -> dict[str, Any]:
    return {"section": section, "name": name, "a": a, "b": b, "differs": _differs(a, b),
            "delta": b - a if _is_number(a) and _is_number(b) else None}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _differs(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return abs(a - b) > NUMBER_TOLERANCE * max(abs(a), abs(b), 1e-9)
    return a != b
