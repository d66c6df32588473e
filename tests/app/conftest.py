"""A results store with real runs, made once for the app's tests: an investigation of a tiny
random model (with an SAE, so it has features; its first prompt carries markup that must
render as text), a patching run with a figure and an HTML file, and a server on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from threads import one_thread_fixture, single_thread
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel

WORDS = "cat dog mat red blue big small one two three four five six seven tom alice bob mary john".split()
MARKUP = "<script>alert(1)</script>"
LENIENT = dict(min_accuracy=0.0, min_gap=-1e9, n=6, patch_prompts=2, exact_layers=1, top_heads=3, role_seqs=2,
               role_seq_len=6, ig_steps=1, minimality_edges=2, features_top=4)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@dataclass
class Stored:
    path: Path
    investigation: str
    patch: str
    model: HookedModel
    sae_dir: Path


# module: the session fixtures below set one thread themselves while they build
one_thread = pytest.fixture(autouse=True, scope="module")(one_thread_fixture)


@pytest.fixture(scope="session")
def app_model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


@pytest.fixture(scope="session")
def stored(app_model, tmp_path_factory) -> Stored:
    import torch

    from mechscope.investigate import InvestigateOptions, investigate
    from mechscope.patching.activation import activation_patching
    from mechscope.sae import SAEConfig, save_sae
    from mechscope.sae.model import SparseAutoencoder
    from mechscope.store import open_store
    from mechscope.store.recorder import recording
    from mechscope.tasks import resolve_task

    root = tmp_path_factory.mktemp("app")
    task_file = root / "pairs.jsonl"
    rows = []
    for i in range(12):
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i + 3) % len(WORDS)], WORDS[(i + 7) % len(WORDS)]
        clean = f"the {a} and the {b} sat on the {c} {MARKUP if i == 0 else 'mat'}"
        rows.append({"clean": clean, "corrupt": clean.replace(f"the {a} and", f"the {b} and", 1), "answer": f" {a}",
                     "wrong": f" {b}"})
    task_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.manual_seed(0)
    sae_dir = root / "sae"
    save_sae(SparseAutoencoder(SAEConfig(d_in=64, d_sae=48, architecture="topk", k=6, hook_name="blocks.1.hook_resid_post",
                                         model_name="llama-gqa")), sae_dir)
    path = root / "results.db"
    with single_thread(), open_store(path) as store:
        found = investigate(app_model, str(task_file), InvestigateOptions(**LENIENT, sae=(str(sae_dir),)), store=store,
                            progress=False)
        task = resolve_task(str(task_file), app_model)
        with recording(store, command="patch", model=app_model, task=task, options={"what": "heads"}) as run:
            run.stage("patching", lambda: activation_patching(app_model, task, what="heads", progress=False))
            run.summary["top"] = "L1H0"
            store.put_artifact(run.run.id, "patching.png", PNG)
            store.put_artifact(run.run.id, "notes.html", b"<html><body><script>document.title='ran'</script>hi</body></html>")
        patch_id = run.run.id
    return Stored(path=path, investigation=found.run_id, patch=patch_id, model=app_model, sae_dir=sae_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(stored):
    """The app on a free loopback port (uvicorn in a thread), with the tiny model and the SAE."""
    import uvicorn

    from mechscope.app import create_app

    app = create_app(stored.path, model=stored.model, sae=[str(stored.sae_dir)])
    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started:
        if time.time() > deadline:  # pragma: no cover - the server failed to start
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)
