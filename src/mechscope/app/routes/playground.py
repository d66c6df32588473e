"""The Playground: type a prompt, see the next tokens, the logit lens, the attention grid and
(with an SAE) the features active on each token.

``POST /api/playground`` with ``{"prompt": "...", "k": 10}``. An empty prompt, one over the
character limit or over the model's context, and a body over the size limit are refused
with 4xx and a sentence saying why.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from mechscope.app.pages import page
from mechscope.app.service import check_prompt
from mechscope.app.views import live

router = APIRouter()


class PlaygroundRequest(BaseModel):
    prompt: str = Field(description="The text whose next token to predict.")
    k: int = Field(10, ge=1, le=50, description="How many next tokens to list (1 to 50).")
    lens_k: int = Field(3, ge=1, le=10, description="Top tokens per cell of the logit lens table.")


@router.get("/playground", response_class=HTMLResponse)
def playground_page(prompt: str | None = None) -> str:
    return page("playground", "Playground", {"prompt": prompt}, scripts=("js/attention-grid.js",))


@router.post("/api/playground")
async def api_playground(request: Request, body: PlaygroundRequest) -> dict:
    state = request.app.state
    prompt = check_prompt(body.prompt, state.limits.max_prompt_chars)
    service = state.service

    def compute(model, saes):
        out = live.next_tokens(model, prompt, body.k)
        out["lens"] = live.lens_table(model, prompt, body.lens_k)
        out["features"] = live.token_features(model, saes, prompt) if saes else []
        return out

    result = await service.call_with_saes(compute)
    return {"prompt": prompt, **result}


@router.get("/api/status")
def api_status(request: Request) -> dict:
    """Which model the live pages use (and whether it is loaded yet), and the store."""
    state = request.app.state
    return {"model": state.service.name, "loaded": state.service.loaded, "sae": state.service.has_sae,
            "store": str(state.access.path), "limits": state.limits.to_dict()}
