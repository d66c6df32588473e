"""Compare, Attention and Features: pages over two runs, over a prompt, over stored dashboards.

The attention grid is served a layer at a time (``/api/attention/layer/{l}``): the page asks
for the layers as they scroll into view; the prompt's patterns are computed once, in one
forward pass, and kept by the model service.
"""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from mechscope.app.pages import page
from mechscope.app.service import check_prompt
from mechscope.app.views import live
from mechscope.app.views.compare import compare_runs
from mechscope.app.views.features import (
    feature_board,
    feature_sources,
    neuronpedia_batch,
    search_features,
    source_boards,
)
from mechscope.errors import InputError

router = APIRouter()


def _state(request: Request):
    return request.app.state


@router.get("/compare", response_class=HTMLResponse)
def compare_page(a: str | None = None, b: str | None = None) -> str:
    return page("compare", "Compare", {"a": a, "b": b})


@router.get("/api/compare")
def api_compare(request: Request, a: str, b: str) -> dict:
    return compare_runs(_state(request).access.store(), a, b)


# ------------------------------------------------------------------ attention
@router.get("/attention", response_class=HTMLResponse)
def attention_page(run: str | None = None, prompt: str | None = None, layer: int | None = None,
                   head: int | None = None) -> str:
    return page("attention", "Attention", {"run": run, "prompt": prompt, "layer": layer, "head": head},
                scripts=("js/attention-grid.js",))


def _run_model(request: Request, run: str | None) -> str | None:
    """The model a run was made with (the live model must be it), or None without a run."""
    return _state(request).access.store().run(run).model_name if run else None


@router.get("/api/attention")
async def api_attention(request: Request, prompt: str, run: str | None = None) -> dict:
    """The prompt's tokens and the grid's size (patterns: a layer at a time, below)."""
    state = _state(request)
    prompt = check_prompt(prompt, state.limits.max_prompt_chars)
    patterns = await state.service.call(live.attention_patterns, prompt, state.limits.max_attention_tokens,
                                        model_name=_run_model(request, run), cache_key=("patterns", prompt))
    return {"tokens": list(patterns.tokens), "n_layers": patterns.n_layers, "n_heads": patterns.n_heads,
            "model": state.service.name}


@router.get("/api/heads/roles")
async def api_head_roles(request: Request, run: str | None = None) -> dict:
    """Each head's clear roles: the run's (its who stage), else scored now on repeated random tokens."""
    state = _state(request)
    model_name = _run_model(request, run)
    if run:
        store = state.access.store()
        record = store.run(run)
        if "who" in {s.name for s in store.stages(run)}:
            who = state.access.cached(record, "who-value", lambda: store.stage_value(run, "who"))
            return {"roles": live.head_role_labels(who.roles, who.movers), "from": f"run {run} (who stage)"}
    labels = await state.service.call(live.live_head_labels, model_name=model_name, cache_key=("roles",))
    return {"roles": labels, "from": "scored now on repeated random tokens"}


@router.get("/api/attention/layer/{layer}")
async def api_attention_layer(request: Request, layer: int, prompt: str, run: str | None = None) -> dict:
    """One layer's patterns: head × query × key."""
    state = _state(request)
    prompt = check_prompt(prompt, state.limits.max_prompt_chars)
    patterns = await state.service.call(live.attention_patterns, prompt, state.limits.max_attention_tokens,
                                        model_name=_run_model(request, run), cache_key=("patterns", prompt))
    return {"layer": layer, "patterns": patterns.layer(layer)}


# ------------------------------------------------------------------ features
@router.get("/features", response_class=HTMLResponse)
def features_page(source: str | None = None, feature: int | None = None, q: str | None = None) -> str:
    return page("features", "Features", {"source": source, "feature": feature, "q": q})


def _boards(request: Request, source: str) -> dict:
    access = _state(request).access
    run_id = source.split(":", 1)[0]
    run = access.store().run(run_id)
    return access.cached(run, f"boards:{source}", lambda: source_boards(access.store(), source))


@router.get("/api/features/sources")
def api_feature_sources(request: Request) -> dict:
    access = _state(request).access
    return {"sources": feature_sources(access.store())}


@router.get("/api/features")
def api_features(request: Request, source: str, q: str = "") -> dict:
    boards = _boards(request, source)
    return {"source": source, "model": boards["model_name"], "hook_name": boards["hook_name"], "d_sae": boards["d_sae"],
            "n_tokens": boards["n_tokens"], "logits_note": boards["logits_note"],
            "features": search_features(boards, q)}


@router.get("/api/features/export")
def api_feature_export(request: Request, source: str, features: str = Query(..., description="e.g. 3,17,42"),
                       model_id: str = "", sae_set: str = "") -> Response:
    """Neuronpedia's batch JSON of the chosen features, as a file to download."""
    if not re.fullmatch(r"\d+(,\d+)*", features.replace(" ", "")):
        raise InputError(f"features is a comma-separated list of indices, e.g. 3,17,42; received {features!r}")
    chosen = [int(f) for f in features.replace(" ", "").split(",")]
    batch = neuronpedia_batch(_boards(request, source), chosen, model_id=model_id, sae_set=sae_set)
    name = f"neuronpedia-{batch['model_id']}-{batch['layer']}-{batch['sae_set']}.json"
    safe = re.sub(r"[^\w.-]", "_", name)
    return Response(json.dumps(batch, indent=1), media_type="application/json",
                    headers={"content-disposition": f'attachment; filename="{safe}"'})


@router.get("/api/features/{feature}")
def api_feature(request: Request, feature: int, source: str) -> dict:
    boards = _boards(request, source)
    return {"source": source, "model": boards["model_name"], "hook_name": boards["hook_name"],
            "logits_note": boards["logits_note"], "n_tokens": boards["n_tokens"],
            "board": feature_board(boards, feature)}

