"""The app's JSON APIs on a store of real runs: each page's numbers are the stored results'
(or, for live pages, the library's on the same model), and the model is loaded once, used
by one thread, and never in the way of the pages that only read the store."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from fastapi.testclient import TestClient

from mechscope.app import create_app
from mechscope.app.service import ModelService
from mechscope.app.views.circuit import budget_stops, circuit_at, ranked_scores
from mechscope.circuits.circuit import Circuit
from mechscope.circuits.faithfulness import budget_edges, select_edges
from mechscope.circuits.view import node_view
from mechscope.heads.labels import head_labels
from mechscope.lens import logit_lens
from mechscope.store import open_store

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def client(stored):
    app = create_app(stored.path, model=stored.model, sae=[str(stored.sae_dir)])
    with TestClient(app, base_url=BASE) as client:
        yield client


def test_runs_are_listed_newest_first_and_filtered(client, stored):
    everything = client.get("/api/runs").json()
    assert [r["id"] for r in everything["runs"]][:2] == [stored.patch, stored.investigation]
    assert everything["facets"]["command"] == ["investigate", "patch"]
    only = client.get("/api/runs", params={"command": "investigate"}).json()["runs"]
    assert [r["id"] for r in only] == [stored.investigation] and only[0]["kind"] == "investigation"
    assert client.get("/api/runs", params={"model": "nope"}).json()["runs"] == []
    assert len(client.get("/api/runs", params={"since": "2000-01-01"}).json()["runs"]) == everything["total"]
    assert client.get("/api/runs", params={"since": "2999-01-01"}).json()["runs"] == []
    bad = client.get("/api/runs", params={"since": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["detail"]


def test_a_run_of_any_command_shows_its_stages_plain_json_and_files(client, stored):
    detail = client.get(f"/api/runs/{stored.patch}").json()
    assert detail["command"] == "patch" and [s["name"] for s in detail["stages"]] == ["patching"]
    assert {a["name"] for a in detail["artifacts"]} == {"patching.png", "notes.html"}
    stage = client.get(f"/api/runs/{stored.patch}/stages/patching").json()["value"]
    with open_store(stored.path) as store:
        assert stage == store.stage_plain(stored.patch, "patching")
    missing = client.get(f"/api/runs/{stored.patch}/stages/nothing")
    assert missing.status_code == 404 and "has no stage" in missing.json()["detail"]
    assert client.get("/api/runs/20990101-000000-abcdef").status_code == 404


def test_the_investigation_view_holds_the_stored_numbers(client, stored):
    view = client.get(f"/api/runs/{stored.investigation}/investigation").json()
    with open_store(stored.path) as store:
        circuit = store.stage_value(stored.investigation, "circuit")
        where = store.stage_plain(stored.investigation, "where")
    assert view["circuit"]["check"]["f_heldout"] == pytest.approx(circuit.check.f_heldout)
    assert view["circuit"]["n_graph_edges"] == circuit.scores.graph.n_edges
    assert "scores" not in view["circuit"] and "top_token_ids" not in view["where"]["lens"]
    assert view["where"]["exact"]["values"] == where["exact"]["values"]
    assert {s for s in ("behaviour", "split", "where", "who", "circuit", "features", "summary")} <= set(view)
    assert view["features"][0]["hook_name"] == "blocks.1.hook_resid_post"


def test_every_budget_stop_redraws_the_circuit_the_curve_measured(client, stored):
    with open_store(stored.path) as store:
        stage = store.stage_value(stored.investigation, "circuit")
    first = client.get(f"/api/runs/{stored.investigation}/circuit").json()
    assert first["stop"]["chosen"] and first["n_edges"] == stage.check.n_edges
    stops = first["stops"]
    assert [s["edges"] for s in stops] == sorted(s["edges"] for s in stops)
    ranked = ranked_scores(stage)
    graph = stage.scores.graph
    for stop in stops:
        if stop.get("chosen"):
            continue
        got = client.get(f"/api/runs/{stored.investigation}/circuit", params={"edges": stop["edges"]}).json()
        index = stage.curve.n_edges.index(stop["edges"])
        assert got["stop"]["f"] == pytest.approx(stage.curve.faithfulness[index])
        kept = select_edges(graph, ranked, budget_edges(graph.n_edges, stage.curve.budgets[index]),
                            absolute=stage.curve.absolute, selection=stage.curve.selection)
        assert got["n_edges"] == len(kept)
        expected = node_view(Circuit(graph=graph, edges=kept, scores={e: ranked[e] for e in kept}), max_nodes=40,
                             max_edges=80, title=stage.view.title)
        assert {n["name"] for n in got["view"]["nodes"]} == {n.name for n in expected.nodes}
    refused = client.get(f"/api/runs/{stored.investigation}/circuit", params={"edges": 3_000_000})
    assert refused.status_code == 400 and "measured" in refused.json()["detail"]


def test_ranked_scores_follow_the_circuits_sign(stored):
    with open_store(stored.path) as store:
        stage = store.stage_value(stored.investigation, "circuit")
    ranked = ranked_scores(stage)
    for edge, value in stage.circuit.scores.items():
        assert ranked[edge] == pytest.approx(value)
    assert budget_stops(stage)[-1]["edges"] >= stage.check.n_edges
    assert circuit_at(stage, stage.check.n_edges)["stop"]["chosen"]


def test_compare_marks_what_differs(client, stored):
    same = client.get("/api/compare", params={"a": stored.investigation, "b": stored.investigation}).json()
    assert not any(r["differs"] for r in same["rows"]) and same["curves"]["a"] == same["curves"]["b"]
    assert all(h["shared"] for h in same["top_heads"]["a"])
    mixed = client.get("/api/compare", params={"a": stored.investigation, "b": stored.patch}).json()
    rows = {r["name"]: r for r in mixed["rows"]}
    assert rows["command"]["differs"] and not rows["model"]["differs"] and rows["what"]["b"] == "heads"


def test_features_search_dashboards_and_neuronpedia_export(client, stored):
    sources = client.get("/api/features/sources").json()["sources"]
    (source,) = [s for s in sources if s["run"] == stored.investigation]
    listed = client.get("/api/features", params={"source": source["id"]}).json()["features"]
    assert len(listed) == source["n_features"] == 4
    first = listed[0]["feature"]
    assert [f["feature"] for f in client.get("/api/features", params={"source": source["id"], "q": f"#{first}"})
            .json()["features"]] == [first]
    token = listed[0]["top_tokens"][0].strip()
    assert first in [f["feature"] for f in client.get("/api/features", params={"source": source["id"], "q": token})
                     .json()["features"]]
    board = client.get(f"/api/features/{first}", params={"source": source["id"]}).json()["board"]
    exported = client.get("/api/features/export", params={"source": source["id"], "features": f"{first}"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    batch = exported.json()
    assert set(batch) == {"model_id", "layer", "sae_set", "features"}
    assert batch["model_id"] == "llama-gqa" and batch["layer"] == 1
    (feature,) = batch["features"]
    assert feature["feature_index"] == first and feature["frac_nonzero"] == board["density"]
    assert feature["pos_str"] == [t for t, _ in board["promoted"]]
    assert feature["freq_hist_data_bar_heights"] == board["histogram_counts"]
    top = [a for a in feature["activations"] if a["bin_min"] == -1]
    assert [a["tokens"] for a in top] == [e["tokens"] for e in board["top_examples"]]
    assert client.get("/api/features/export", params={"source": source["id"], "features": "1;2"}).status_code == 400
    assert client.get("/api/features/99999", params={"source": source["id"]}).status_code == 400


def test_playground_numbers_are_the_models(client, stored):
    prompt = "when mary and john went to the store , john gave a drink to"
    got = client.post("/api/playground", json={"prompt": prompt, "k": 5},
                      headers={"X-Mechscope-Request": "1"}).json()
    model = stored.model
    with torch.no_grad():
        probs = model(prompt)[0, -1].float().softmax(-1)
    top = probs.topk(5)
    assert [t["id"] for t in got["top"]] == top.indices.tolist()
    assert [t["prob"] for t in got["top"]] == pytest.approx(top.values.tolist(), abs=1e-6)
    lens = logit_lens(model, prompt, top_k=3)
    assert got["lens"]["top_tokens"] == [[list(p) for p in layer] for layer in lens.top_tokens]
    (sae,) = got["features"]
    assert sae["hook_name"] == "blocks.1.hook_resid_post" and len(sae["per_token"]) == len(got["tokens"])


def test_attention_layers_are_the_models_patterns(client, stored):
    prompt = "the cat sat on the mat"
    info = client.get("/api/attention", params={"prompt": prompt}).json()
    assert info["n_layers"] == 2 and info["n_heads"] == 4 and info["tokens"] == stored.model.to_str_tokens(prompt)
    _, cache = stored.model.run_with_cache(prompt, names="blocks.1.attn.hook_pattern")
    layer = client.get("/api/attention/layer/1", params={"prompt": prompt}).json()["patterns"]
    assert torch.allclose(torch.tensor(layer), cache["blocks.1.attn.hook_pattern"][0], atol=2e-3)
    from_run = client.get("/api/heads/roles", params={"run": stored.investigation}).json()
    assert "who stage" in from_run["from"]
    with open_store(stored.path) as store:
        who = store.stage_value(stored.investigation, "who")
    names = [f"L{layer}H{head}" for layer in range(2) for head in range(4)]
    expected = {n: found for n, found in head_labels(who.roles, who.movers, names).items() if found}
    assert set(from_run["roles"]) == set(expected)
    for name, found in expected.items():
        assert from_run["roles"][name].startswith(f"{found[0][0]} {found[0][1]:.2f}")
    live = client.get("/api/heads/roles").json()
    assert "scored now" in live["from"] and all(k.startswith("L") for k in live["roles"])
    assert client.get("/api/attention/layer/7", params={"prompt": prompt}).status_code == 400


def test_a_request_about_another_model_is_refused_not_served_wrong(stored):
    app = create_app(stored.path, model_name="some-other-model")
    with TestClient(app, base_url=BASE) as client:
        refused = client.get("/api/attention", params={"prompt": "the cat", "run": stored.investigation})
    assert refused.status_code == 409 and "llama-gqa" in refused.json()["detail"]


def test_without_a_model_the_live_pages_say_how_to_get_one(stored):
    with TestClient(create_app(stored.path), base_url=BASE) as client:
        refused = client.post("/api/playground", json={"prompt": "the cat"}, headers={"X-Mechscope-Request": "1"})
    assert refused.status_code == 409 and "--model" in refused.json()["detail"]


def test_the_model_is_loaded_once_lazily_and_used_by_one_thread(stored):
    loads, threads = [], set()

    def loader(name):
        loads.append(name)
        return stored.model

    service = ModelService(name="llama-gqa", loader=loader)
    assert not service.loaded and loads == []

    def work(model, i):
        threads.add(threading.current_thread().name)
        return i

    async def many():
        return await asyncio.gather(*(service.call(work, i) for i in range(12)))

    assert asyncio.run(many()) == list(range(12))
    assert loads == ["llama-gqa"] and len(threads) == 1 and service.loaded
    service.close()


def test_store_pages_answer_while_the_model_is_busy(stored):
    """A live request holds the model's thread; the Runs API still answers."""
    app = create_app(stored.path, model=stored.model)
    release, started = threading.Event(), threading.Event()

    def slow(model):
        started.set()
        release.wait(timeout=60)
        return "done"

    with TestClient(app, base_url=BASE) as client:
        service = app.state.service
        busy = threading.Thread(target=lambda: asyncio.run(service.call(slow)))
        busy.start()
        assert started.wait(timeout=60)
        answered = client.get("/api/runs")  # would hang here if store pages waited for the model
        still_busy = not release.is_set() and busy.is_alive()
        release.set()
        busy.join(timeout=60)
    assert answered.status_code == 200 and still_busy
