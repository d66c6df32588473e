"""Runs: the list, one run's record, stages and files, deleting, and the investigation's views.

GET never changes anything; deleting is ``DELETE /api/runs/{id}`` (with the app's
request header, see :mod:`mechscope.app.security`).
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from mechscope.app.pages import missing, page
from mechscope.app.views.circuit import budget_stops, circuit_at, node_roles, ranked_scores
from mechscope.app.views.investigation import investigation_view
from mechscope.app.views.runs import _finite, list_runs, run_detail
from mechscope.errors import InputError
from mechscope.store.base import StoreError

router = APIRouter()


def _access(request: Request):
    return request.app.state.access


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> str:
    return page("runs", "Runs", {"store": str(_access(request).path)})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    try:
        run = _access(request).store().run(run_id)
    except StoreError as error:
        return HTMLResponse(missing(str(error)), status_code=404)
    title = f"{run.model_name} · {run.task_name or run.command}"
    return HTMLResponse(page("run", title, {"run": run.id, "command": run.command}, scripts=("js/circuit-draw.js",)))


@router.get("/runs/{run_id}/circuit", response_class=HTMLResponse)
def circuit_page(request: Request, run_id: str) -> HTMLResponse:
    store = _access(request).store()
    try:
        run = store.run(run_id)
        store.stages(run_id)
        if "circuit" not in {s.name for s in store.stages(run_id)}:
            raise StoreError(f"run {run_id} has no circuit stage; the Circuit explorer shows investigations' circuits")
    except StoreError as error:
        return HTMLResponse(missing(str(error)), status_code=404)
    return HTMLResponse(page("circuit", f"circuit · {run.model_name} · {run.task_name}", {"run": run.id},
                             scripts=("js/circuit-draw.js", "js/attention-grid.js")))


@router.get("/api/runs")
def api_runs(request: Request, command: str | None = None, model: str | None = None, task: str | None = None,
             since: str | None = Query(None, description="YYYY-MM-DD: runs started that day or later")) -> dict:
    return list_runs(_access(request).store(), command=command, model=model, task=task, since=_since(since))


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").timestamp()
    except ValueError:
        raise InputError(f"since is a date, YYYY-MM-DD; received {value!r}") from None


@router.get("/api/runs/{run_id}")
def api_run(request: Request, run_id: str) -> dict:
    return run_detail(_access(request).store(), run_id)


@router.delete("/api/runs/{run_id}")
def api_delete_run(request: Request, run_id: str) -> dict:
    access = _access(request)
    access.store().delete_run(run_id)
    access.forget(run_id)
    return {"deleted": run_id}


@router.get("/api/runs/{run_id}/stages/{name}")
def api_stage(request: Request, run_id: str, name: str) -> dict:
    """A stage's value as plain JSON (what ``mechscope runs export`` writes)."""
    store = _access(request).store()
    run = store.run(run_id)
    return {"run": run_id, "stage": name, "value": _access(request).cached(run, f"stage:{name}",
                                                                           lambda: _finite(store.stage_plain(run_id, name)))}


@router.get("/api/runs/{run_id}/investigation")
def api_investigation(request: Request, run_id: str) -> dict:
    access = _access(request)
    run = access.store().run(run_id)
    return access.cached(run, "investigation", lambda: investigation_view(access.store(), run_id))


@router.get("/api/runs/{run_id}/circuit")
def api_circuit(request: Request, run_id: str, edges: int | None = None) -> dict:
    """The circuit at one of the measured budgets (default: the chosen circuit)."""
    access = _access(request)
    return circuit_payload(access, access.store().run(run_id), edges)


def circuit_payload(access, run, edges: int | None = None) -> dict:
    """The Circuit explorer's data for ``edges`` edges, from the run's decoded circuit stage (kept)."""
    store = access.store()
    stage = access.cached(run, "circuit-stage", lambda: store.stage_value(run.id, "circuit"))
    stops = budget_stops(stage)
    if edges is None:
        edges = next(s["edges"] for s in stops if s.get("chosen"))
    have_who = "who" in {s.name for s in store.stages(run.id)}
    roles = node_roles(access.cached(run, "stage:who", lambda: _finite(store.stage_plain(run.id, "who")))
                       if have_who else None)

    def compute():
        ranked = access.cached(run, "circuit-ranked", lambda: ranked_scores(stage))
        return _finite(circuit_at(stage, edges, ranked=ranked, roles=roles))

    return {**access.cached(run, f"circuit:{edges}", compute), "stops": _finite(stops)}


@router.get("/api/runs/{run_id}/prompts")
def api_prompts(request: Request, run_id: str) -> dict:
    """The prompts a run stored (an investigation's split examples), for the Attention page."""
    store = _access(request).store()
    run = store.run(run_id)
    prompts = []
    if "split" in {s.name for s in store.stages(run_id)}:
        split = store.stage_plain(run_id, "split")
        for side in ("discovery", "heldout"):
            for clean, corrupt in split[f"{side}_examples"]:
                prompts += [{"text": clean, "label": f"{side}, clean"}, {"text": corrupt, "label": f"{side}, corrupted"}]
    return {"run": run_id, "model": run.model_name, "prompts": prompts}


@router.get("/runs/{run_id}/artifacts/{name:path}")
def artifact(request: Request, run_id: str, name: str) -> FileResponse:
    """A file attached to the run, looked up by its name in the run's list (never as a path)."""
    store = _access(request).store()
    digest = store.artifacts(run_id).get(name)
    if digest is None:
        raise StoreError(f"run {run_id} has no file {name!r}")
    path = safe_artifact_path(store, digest)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=kind, filename=Path(name).name, content_disposition_type="inline")


def safe_artifact_path(store, digest: str) -> Path:
    """The artifact's file, refused unless it is a regular file inside the store's folder
    (a digest is checked by the store; a symlink placed there, or a folder linked out, is refused)."""
    path = store.artifact_path(digest)
    root = store.artifact_dir.resolve()
    if path.is_symlink() or not path.resolve().is_relative_to(root) or not path.is_file():
        raise StoreError(f"the store's file {digest} is missing or lies outside the store; it is not served")
    return path
