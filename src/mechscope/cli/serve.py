"""``mechscope serve``: the local web app over the results store.

    mechscope serve                                   # http://127.0.0.1:8765, the default store
    mechscope serve --store results.db --model smollm2-135m --sae sae/
    mechscope serve --host 0.0.0.0 --port 9000        # other machines: needs the printed token
    mechscope serve --model smollm2-135m --openai-api  # + /v1/chat/completions, /v1/completions, /v1/models

The server listens on 127.0.0.1 unless ``--host`` names another address; then it prints a
warning and a URL with a random access token, which every request must carry (see
:mod:`mechscope.app.security`). The model is loaded when a live page first needs it.
``--openai-api`` loads a second copy of ``--model`` at start and serves it under ``/v1/``
(:mod:`mechscope.app.openai_api`): its own copy, so the hooks a live page opens never
touch a request of an OpenAI client, and the reverse.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mechscope.cli.common import clean_errors, err, out, store_option
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(serve)


@clean_errors
def serve(
    store: Path | None = store_option(),
    model: str | None = typer.Option(None, "--model", help="Model for the live pages (Attention, Playground); "
                                     "default: the model of the first stored run a page asks about."),
    sae: list[Path] = typer.Option([], "--sae", help="SAE directory (SAELens layout) whose features the Playground "
                                   "shows per token; repeat for several."),
    port: int = typer.Option(8765, "--port", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback exposes the "
                             "store to the network and requires the printed access token."),
    openai_api: bool = typer.Option(False, "--openai-api", help="Also serve --model to OpenAI clients under /v1/ "
                                    "(chat/completions, completions, models), from a copy loaded at start."),
) -> None:
    """Browse runs, explore attention, circuits and features, and try prompts, in the browser."""
    from mechscope.app.security import is_loopback, new_token

    if not 0 < port < 65536:
        raise InputError(f"--port must be in 1..65535; received {port}")
    for path in sae:
        if not (path / "cfg.json").is_file():
            raise InputError(f"--sae {path} is not an SAE directory (no cfg.json); give a directory save_sae wrote")
    if store is not None and store.is_dir():
        raise InputError(f"--store {store} is a directory; give the database file, e.g. {store / 'results.db'}")
    if openai_api and not model:
        raise InputError("--openai-api serves --model; give one, e.g. --model smollm2-135m")
    token = None if is_loopback(host) else new_token()
    import uvicorn

    from mechscope.app import create_app

    routers = []
    if openai_api:
        from mechscope.app.openai_api import openai_router
        from mechscope.models import load_model

        routers.append(openai_router(load_model(model), served_name=model))
    app = create_app(store, model_name=model, sae=[str(p) for p in sae], host=host, token=token, routers=routers)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    if token:
        err.print(f"[bold yellow]warning[/]: listening on {escape(host)}, not only this machine: anyone who can reach it "
                  f"and has the token can read the store and run the model. Prefer --host 127.0.0.1 with an SSH tunnel.",
                  soft_wrap=True)
    out.print(f"store {escape(str(app.state.access.path))}; open {escape(url)}  (Ctrl-C stops)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
