"""SAE features in the store: where dashboards are, searching them, and Neuronpedia's batch JSON.

::

    sources = feature_sources(store)                    # every stored set of dashboards
    boards = source_boards(store, sources[0]["id"])     # FeatureDashboards as plain JSON
    search_features(boards, "paris")                    # by index, explanation, or tokens
    neuronpedia_batch(boards, [12, 40], model_id="smollm2-135m", sae_set="res-4k")

Dashboards come from investigations (their ``features`` stage, one set per SAE) and from
any run with a stage holding :class:`~mechscope.sae.dashboard.FeatureDashboards`. A
feature's explanation, where one is stored beside its dashboard (an ``explanation`` field,
or an ``explanations`` mapping from feature to text in the same stage), is searched first;
without one, the search reads the tokens the feature fires on and the tokens it promotes.

The export follows the layout of Neuronpedia's dashboard batches (SAEDashboard's
``NeuronpediaDashboardBatch``): ``{model_id, layer, sae_set, features: [...]}``, each
feature with ``feature_index``, ``frac_nonzero``, ``pos_str``/``pos_values``,
``neg_str``/``neg_values``, the activation histogram as ``freq_hist_data_bar_values`` /
``freq_hist_data_bar_heights``, and ``activations`` (top examples, with ``bin_min`` =
``bin_max`` = −1, then one entry per quantile example with its group's range).
Fields mechscope does not compute (neuron alignment, correlations, the logit histogram)
are empty lists.
"""

from __future__ import annotations

import re
from typing import Any

from mechscope.errors import InputError
from mechscope.store.base import StoreError

DASHBOARD_TYPES = {"Features", "FeatureDashboards"}
"""Stored value types that hold dashboards."""


def feature_sources(store) -> list[dict[str, Any]]:
    """Every stored set of dashboards: id ``run:stage:index``, model, hook, features shown."""
    out = []
    for run in store.runs():
        for stage in store.stages(run.id):
            if stage.type not in DASHBOARD_TYPES:
                continue
            for index, boards in enumerate(_boards_in(store.stage_plain(run.id, stage.name))):
                out.append({"id": f"{run.id}:{stage.name}:{index}", "run": run.id, "command": run.command,
                            "model": boards["model_name"], "hook_name": boards["hook_name"], "d_sae": boards["d_sae"],
                            "n_features": len(boards["features"]), "n_tokens": boards["n_tokens"],
                            "task": run.task_name, "started": run.started})
    return out


def source_boards(store, source: str) -> dict[str, Any]:
    """The dashboards (plain JSON) of a source id from :func:`feature_sources`."""
    match = re.fullmatch(r"([\w.-]+):([\w.-]+):(\d+)", source or "")
    if not match:
        raise InputError(f"a feature source is run:stage:index (from the Features page's list); received {source!r}")
    run_id, stage, index = match.group(1), match.group(2), int(match.group(3))
    sets = _boards_in(store.stage_plain(run_id, stage))
    if index >= len(sets):
        raise StoreError(f"run {run_id}'s stage {stage} holds {len(sets)} sets of dashboards; received index {index}")
    return sets[index]


def _boards_in(plain: dict) -> list[dict[str, Any]]:
    """The FeatureDashboards inside a stage's plain JSON, with explanations attached where stored."""
    if plain.get("type") == "FeatureDashboards":
        sets = [plain]
    elif plain.get("type") == "Features":
        sets = [sae["dashboards"] for sae in plain.get("saes", [])]
    else:
        sets = []
    explanations = {str(k): v for k, v in (plain.get("explanations") or {}).items()}
    for boards in sets:
        for board in boards["features"]:
            board.setdefault("explanation", explanations.get(str(board["feature"]), ""))
    return sets


def search_features(boards: dict[str, Any], query: str, limit: int = 50) -> list[dict[str, Any]]:
    """Features matching ``query``: an index (``12`` or ``#12``), else words in the explanation
    or in the tokens it fires on or promotes. Rows: feature, density, max, explanation, why."""
    query = (query or "").strip()
    rows = []
    for board in boards["features"]:
        why = _match(board, query)
        if why is not None:
            rows.append({"feature": board["feature"], "density": board["density"], "max": board["max_activation"],
                         "explanation": board.get("explanation", ""), "why": why,
                         "top_tokens": _fired_tokens(board)[:6]})
    return rows[:limit]


def _match(board: dict, query: str) -> str | None:
    if not query:
        return ""
    if re.fullmatch(r"#?\d+", query):
        return "index" if int(query.lstrip("#")) == board["feature"] else None
    words = query.lower().split()
    explanation = (board.get("explanation") or "").lower()
    if explanation and all(w in explanation for w in words):
        return "explanation"
    fired = " ".join(_fired_tokens(board)).lower()
    promoted = " ".join(t for t, _ in board.get("promoted", [])).lower()
    if all(w in fired for w in words):
        return "fires on"
    if all(w in promoted for w in words):
        return "promotes"
    return None


def _fired_tokens(board: dict) -> list[str]:
    return [example["tokens"][example["center"]] for example in board.get("top_examples", [])]


def feature_board(boards: dict[str, Any], feature: int) -> dict[str, Any]:
    """One feature's dashboard."""
    for board in boards["features"]:
        if board["feature"] == feature:
            return board
    shown = ", ".join(str(b["feature"]) for b in boards["features"][:20])
    raise InputError(f"feature {feature} has no stored dashboard here; these do: {shown}")


def hook_layer(hook_name: str) -> int:
    """The layer of ``blocks.{l}.…`` (0 for hooks before the first block)."""
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    return int(match.group(1)) if match else 0


def neuronpedia_batch(boards: dict[str, Any], features: list[int], *, model_id: str = "", sae_set: str = "",
                      layer: int | None = None) -> dict[str, Any]:
    """Dashboards of ``features`` in Neuronpedia's batch layout (module docstring)."""
    if not features:
        raise InputError("choose at least one feature to export")
    chosen = [feature_board(boards, f) for f in features]
    return {"model_id": model_id or boards["model_name"],
            "layer": hook_layer(boards["hook_name"]) if layer is None else layer,
            "sae_set": sae_set or _sae_set(boards["hook_name"], boards["d_sae"]),
            "features": [_neuronpedia_feature(board, boards["n_tokens"]) for board in chosen]}


def _sae_set(hook_name: str, d_sae: int) -> str:
    kind = "res" if "resid" in hook_name else "mlp" if "mlp" in hook_name else "att" if "attn" in hook_name else "sae"
    return f"{kind}-mechscope-{d_sae}"


def _neuronpedia_feature(board: dict, n_tokens: int) -> dict[str, Any]:
    edges, counts = board["histogram_edges"], board["histogram_counts"]
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    activations = [_activation(ex, -1.0, -1.0, -1) for ex in board["top_examples"]]
    for group in board["quantiles"]:
        activations += [_activation(ex, group["low"], group["high"], group["n_tokens"]) for ex in group["examples"]]
    return {
        "feature_index": board["feature"],
        "neuron_alignment_indices": [], "neuron_alignment_values": [], "neuron_alignment_l1": [],
        "correlated_neurons_indices": [], "correlated_neurons_l1": [], "correlated_neurons_pearson": [],
        "correlated_features_indices": [], "correlated_features_l1": [], "correlated_features_pearson": [],
        "neg_str": [t for t, _ in board["suppressed"]], "neg_values": [v for _, v in board["suppressed"]],
        "pos_str": [t for t, _ in board["promoted"]], "pos_values": [v for _, v in board["promoted"]],
        "frac_nonzero": board["density"],
        "freq_hist_data_bar_values": centres, "freq_hist_data_bar_heights": list(counts),
        "logits_hist_data_bar_heights": [], "logits_hist_data_bar_values": [],
        "n_prompts_total": 0, "n_tokens_in_prompt": 0, "dataset": f"mechscope ({n_tokens} tokens)",
        "decoder_weights_dist": [], "activations": activations,
    }


def _activation(example: dict, low: float, high: float, contains: int) -> dict[str, Any]:
    return {"bin_min": low, "bin_max": high, "bin_contains": contains, "tokens": list(example["tokens"]),
            "values": list(example["activations"])}
