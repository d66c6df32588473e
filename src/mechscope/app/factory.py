"""``create_app``: the web app over a results store, ready for uvicorn (or a test client).

::

    from mechscope.app import create_app
    app = create_app("results.db", model_name="smollm2-135m")
    # uvicorn.run(app, host="127.0.0.1", port=8765)

    app = create_app(store, model=hooked, routers=[openai_router(hooked)])   # extra routes, e.g. /v1/

Errors become JSON ``{"detail": "..."}`` with a status saying whose fault they are: 400 for
bad input (:class:`~mechscope.errors.InputError`), 404 for a run, stage or file the store
does not have, 409 when the live pages would need a model other than the server's, 422
for a malformed request (one readable sentence, not a validation tree).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from mechscope.app.routes import explore, playground, runs
from mechscope.app.security import Guard, Guarding, is_loopback
from mechscope.app.service import ModelMismatch, ModelService, NoModel
from mechscope.app.store_access import StoreAccess
from mechscope.errors import InputError, MechscopeError
from mechscope.store import default_store_path
from mechscope.store.base import StoreError

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the live pages accept."""

    max_prompt_chars: int = 4000
    """Longest prompt, in characters (the model's context is checked too, in tokens)."""
    max_body: int = 64 * 1024
    """Largest request body, in bytes."""
    max_attention_tokens: int = 256
    """Longest prompt, in tokens, whose attention grid is drawn (each layer's patterns grow with its square)."""

    def __post_init__(self) -> None:
        for name in ("max_prompt_chars", "max_body", "max_attention_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be positive; received {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def create_app(store: str | Path | None = None, *, model=None, model_name: str | None = None,
               sae: Sequence[str] = (), saes: Sequence | None = None, host: str = "127.0.0.1",
               token: str | None = None, limits: Limits = Limits(), routers: Sequence = ()) -> FastAPI:
    """The app (see the module docstring).

    Args:
        store: the results database (default: ``$MECHSCOPE_STORE`` or the user's).
        model: an already loaded :class:`~mechscope.HookedModel` for the live pages
            (tests pass a tiny one); else ``model_name`` is loaded on first need.
        sae, saes: SAE directories to load with the model, or SAE modules already loaded.
        host: the address the server listens on: a non-loopback one requires ``token``.
        token: the access token requests must carry (:mod:`~mechscope.app.security`).
        routers: more FastAPI routers to include (e.g. the OpenAI-compatible ``/v1/``).
    """
    loopback = is_loopback(host)
    if not loopback and not token:
        raise InputError(f"listening on {host} (not a loopback address) needs an access token; "
                         f"mechscope serve makes one")
    app = FastAPI(title="mechscope", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.access = StoreAccess(default_store_path() if store is None else store)
    app.state.service = ModelService(name=model_name, model=model, sae_paths=tuple(sae),
                                     saes=None if saes is None else tuple(saes))
    app.state.limits = limits
    for router in (runs.router, explore.router, playground.router, *routers):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handle_errors(app)
    app.add_middleware(Guard, guarding=Guarding(loopback=loopback, token=token, max_body=limits.max_body))
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    stop = threading.Event()
    warm = threading.Thread(target=_warm, args=(app.state.access, stop), daemon=True, name="mechscope-warm")
    warm.start()
    yield
    stop.set()  # the warm thread's read in progress ends before its connection is closed under it
    await asyncio.to_thread(warm.join)
    app.state.service.close()
    app.state.access.close()


def _warm(access: StoreAccess, stop: threading.Event, newest: int = 3) -> None:
    """Read the newest investigations' views into the cache while nobody waits (reads only),
    and import what decoding stored circuits needs, so the first visits are quick."""
    import mechscope.investigate  # noqa: F401  (the codec imports result classes on first decode)
    from mechscope.app.views.investigation import investigation_view

    try:
        store = access.store()
        recent = [r for r in store.runs(command="investigate") if r.status == "complete"][:newest]
        for run in recent:
            if stop.is_set():
                return
            access.cached(run, "investigation", lambda run=run: investigation_view(access.store(), run.id))
        for run in recent:
            if stop.is_set():
                return
            if "circuit" in {s.name for s in store.stages(run.id)}:
                runs.circuit_payload(access, run)
    except Exception:  # noqa: BLE001  best effort: a run deleted meanwhile, an unreadable stage (its page says so)
        pass


def _handle_errors(app: FastAPI) -> None:
    def reply(status: int):
        async def handler(request: Request, error: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(error)}, status_code=status)

        return handler

    async def store_error(request: Request, error: StoreError) -> JSONResponse:
        message = str(error)
        status = 404 if message.startswith(("no run", "run ", "the store's file")) else 500
        return JSONResponse({"detail": message}, status_code=status)

    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for problem in error.errors():
            where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {problem.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts) or "malformed request"}, status_code=422)

    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(InputError, reply(400))
    app.add_exception_handler(ModelMismatch, reply(409))
    app.add_exception_handler(NoModel, reply(409))
    app.add_exception_handler(MechscopeError, reply(400))
    app.add_exception_handler(RequestValidationError, malformed)
