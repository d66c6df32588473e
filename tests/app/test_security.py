"""What the app refuses: paths out of the store, markup as markup, state changes on GET or from
other sites, foreign Host headers (DNS rebinding), requests without the token when exposed,
and prompts or bodies it cannot take, each with a 4xx and a sentence saying why."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from mechscope.app import Limits, create_app
from mechscope.errors import InputError
from mechscope.store import open_store

BASE = "http://127.0.0.1:8765"
HEADER = {"X-Mechscope-Request": "1"}


@pytest.fixture
def copy(stored, tmp_path):
    """A copy of the store the test may change."""
    shutil.copy(stored.path, tmp_path / "results.db")
    shutil.copytree(stored.path.with_name(stored.path.name + ".artifacts"), tmp_path / "results.db.artifacts")
    return tmp_path / "results.db"


@pytest.fixture(scope="module")
def client(stored):
    with TestClient(create_app(stored.path, model=stored.model), base_url=BASE) as client:
        yield client


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2F..%2Fresults.db",
                                  "%2Fetc%2Fpasswd", "/etc/passwd", "....//....//etc/passwd", "patching.png/../x"])
def test_artifact_names_never_become_paths(client, stored, name):
    response = client.get(f"/runs/{stored.patch}/artifacts/{name}")
    assert response.status_code == 404 and "root:" not in response.text


def test_a_stored_file_is_served_sandboxed(client, stored):
    png = client.get(f"/runs/{stored.patch}/artifacts/patching.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    html = client.get(f"/runs/{stored.patch}/artifacts/notes.html")
    assert html.status_code == 200 and "sandbox" in html.headers["content-security-policy"]


def test_symlinks_out_of_the_store_are_refused(copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    with open_store(copy) as store:
        run = store.runs(command="patch")[0].id
        digest = store.artifacts(run)["patching.png"]
        path = store.artifact_path(digest)
    path.unlink()
    path.symlink_to(secret)
    with TestClient(create_app(copy), base_url=BASE) as client:
        response = client.get(f"/runs/{run}/artifacts/patching.png")
    assert response.status_code == 404 and "top secret" not in response.text
    # a whole folder of the store linked elsewhere
    folder = path.parent
    outside = tmp_path / "outside"
    shutil.move(str(folder), outside)
    (outside / path.name).unlink()
    (outside / path.name).write_text("top secret")
    folder.symlink_to(outside)
    with TestClient(create_app(copy), base_url=BASE) as client:
        response = client.get(f"/runs/{run}/artifacts/patching.png")
    assert response.status_code == 404 and "top secret" not in response.text


def test_markup_in_prompts_and_names_stays_text_in_pages(client):
    page = client.get("/attention", params={"prompt": "<script>alert(1)</script>", "run": '"><img src=x onerror=1>'})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<img" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def _store_state(path) -> str:
    with open_store(path) as store:
        runs = store.runs()
        parts = [(r.id, r.status, [(s.name, s.key) for s in store.stages(r.id)], store.artifacts(r.id)) for r in runs]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def test_no_get_route_changes_the_store(copy):
    with open_store(copy) as store:
        ids = {r.command: r.id for r in store.runs()}
    values = {"run_id": ids["investigate"], "name": "where", "layer": "0", "feature": "0"}
    before = _store_state(copy)
    app = create_app(copy, model_name="llama-gqa")
    with TestClient(app, base_url=BASE) as client:
        for route in app.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods:
                path = route.path.replace("{name:path}", "patching.png")
                for key, value in values.items():
                    path = path.replace("{" + key + "}", value)
                client.get(path, params={"prompt": "x", "a": ids["investigate"], "b": ids["patch"], "source": "x:y:0",
                                         "features": "0"})
        client.get(f"/api/runs/{ids['patch']}/delete")
        client.get(f"/api/runs/{ids['patch']}", params={"method": "DELETE"})
    assert _store_state(copy) == before


def test_deleting_needs_the_apps_header_and_no_foreign_origin(copy):
    with open_store(copy) as store:
        run = store.runs(command="patch")[0].id
    with TestClient(create_app(copy), base_url=BASE) as client:
        bare = client.delete(f"/api/runs/{run}")
        assert bare.status_code == 403 and "x-mechscope-request" in bare.json()["detail"]
        foreign = client.delete(f"/api/runs/{run}", headers={**HEADER, "Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "cross-site" in foreign.json()["detail"]
        assert client.get(f"/api/runs/{run}").status_code == 200
        done = client.delete(f"/api/runs/{run}", headers={**HEADER, "Origin": BASE})
        assert done.status_code == 200 and client.get(f"/api/runs/{run}").status_code == 404


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "attacker.localhost",
                                  "10.0.0.1:8765", "[::2]:8765", ""])
def test_a_foreign_host_header_is_refused_on_loopback(client, host):
    response = client.get("/api/runs", headers={"host": host})
    assert response.status_code == 400 and "DNS rebinding" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost", "127.0.0.2:9000"])
def test_loopback_host_headers_are_served(client, host):
    assert client.get("/api/runs", headers={"host": host}).status_code == 200


def test_another_address_needs_the_token(stored):
    with pytest.raises(InputError, match="token"):
        create_app(stored.path, host="0.0.0.0")
    token = "t" * 43
    app = create_app(stored.path, host="0.0.0.0", token=token)
    with TestClient(app, base_url="http://10.1.2.3:8765") as client:
        refused = client.get("/api/runs")
        assert refused.status_code == 403 and "token" in refused.json()["detail"]
        assert client.get("/api/runs", params={"token": "wrong" * 9}).status_code == 403
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        entry = client.get("/", params={"token": token, "q": "1"}, follow_redirects=False)
        assert entry.status_code == 303 and entry.headers["location"] == "/?q=1"
        assert "HttpOnly" in entry.headers["set-cookie"] and "SameSite=Strict" in entry.headers["set-cookie"]
        assert client.get("/api/runs").status_code == 200  # the cookie now carries it


def test_the_playground_refuses_what_it_cannot_take(stored):
    app = create_app(stored.path, model=stored.model, limits=Limits(max_prompt_chars=500, max_body=4096))
    with TestClient(app, base_url=BASE) as client:
        def post(body=None, **kwargs):
            return client.post("/api/playground", json=body, headers=HEADER, **kwargs)

        for empty in ("", "   \n"):
            response = post({"prompt": empty})
            assert response.status_code == 400 and "empty" in response.json()["detail"]
        long = post({"prompt": " ".join(["cat"] * 120)})  # 120 words: over the tiny model's 64 positions
        assert long.status_code == 400 and "at most 64" in long.json()["detail"]
        chars = post({"prompt": "cat " * 200})
        assert chars.status_code == 400 and "limit here is 500" in chars.json()["detail"]
        huge = post({"prompt": "cat " * 5000})
        assert huge.status_code == 413 and "over the limit of 4,096 bytes" in huge.json()["detail"]
        streamed = client.post("/api/playground", content=iter([b'{"prompt": "', b"x" * 5000, b'"}']),
                               headers={**HEADER, "Content-Type": "application/json"})
        assert streamed.status_code == 413
        malformed = client.post("/api/playground", content=b"{not json", headers={**HEADER, "Content-Type": "application/json"})
        assert malformed.status_code == 422 and "JSON" in malformed.json()["detail"]
        assert post({"prompt": "the cat", "k": 0}).status_code == 422
        assert "k:" in post({"prompt": "the cat", "k": 0}).json()["detail"]
        assert post({"text": "the cat"}).json()["detail"] == "prompt: Field required"
        assert post({"prompt": "the cat sat"}).status_code == 200
    small = create_app(stored.path, model=stored.model, limits=Limits(max_attention_tokens=4))
    with TestClient(small, base_url=BASE) as client:
        refused = client.get("/api/attention", params={"prompt": "the cat sat on the mat"})
        assert refused.status_code == 400 and "at most 4" in refused.json()["detail"]


def test_extra_routers_are_mounted_and_programs_post_json_without_the_page_header(stored):
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/v1/echo")
    def echo(body: dict) -> dict:
        return body

    with TestClient(create_app(stored.path, routers=[router]), base_url=BASE) as client:
        assert client.post("/v1/echo", json={"x": 1}).json() == {"x": 1}
        form = client.post("/v1/echo", content=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415 and "JSON" in form.json()["detail"]
        assert client.post("/v1/echo", json={"x": 1}, headers={"Origin": "http://evil.example"}).status_code == 403
