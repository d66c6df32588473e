"""``mechscope serve``: options checked before anything starts, loopback by default, and another
address only with a warning and a printed access token that the app then requires."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mechscope.cli.main import app

runner = CliRunner()


@pytest.fixture
def started(monkeypatch):
    """What uvicorn.run was asked to serve (nothing is served)."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    return calls


def test_serve_listens_on_loopback_by_default(started, tmp_path):
    result = runner.invoke(app, ["serve", "--store", str(tmp_path / "r.db"), "--port", "8777"])
    assert result.exit_code == 0, result.output
    (served, kwargs), = started
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8777
    assert "http://127.0.0.1:8777/" in result.stdout and "token" not in result.stdout
    with TestClient(served, base_url="http://127.0.0.1:8777") as client:
        assert client.get("/api/runs").status_code == 200


def test_another_host_warns_and_requires_the_printed_token(started, tmp_path):
    result = runner.invoke(app, ["serve", "--store", str(tmp_path / "r.db"), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "token" in result.stdout
    token = result.stdout.split("?token=")[1].split()[0]
    (served, kwargs), = started
    assert kwargs["host"] == "0.0.0.0"
    with TestClient(served, base_url="http://192.0.2.7:8765") as client:
        assert client.get("/api/runs").status_code == 403
        assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port must be in 1..65535"),
    (["--sae", "no-such-dir"], "not an SAE directory"),
])
def test_bad_options_are_one_line_errors_before_anything_starts(started, tmp_path, args, message):
    result = runner.invoke(app, ["serve", "--store", str(tmp_path / "r.db"), *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert started == []


def test_a_store_that_is_a_directory_is_refused(started, tmp_path):
    result = runner.invoke(app, ["serve", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.stderr and started == []


def test_openai_api_needs_a_model(started, tmp_path):
    result = runner.invoke(app, ["serve", "--store", str(tmp_path / "r.db"), "--openai-api"])
    assert result.exit_code == 2 and "--openai-api serves --model" in result.stderr and started == []


def test_openai_api_serves_its_own_copy_of_the_model_under_v1(started, tmp_path, monkeypatch):
    from tiny import tiny_hf_model, tiny_tokenizer

    import mechscope.models
    from mechscope import HookedModel

    loaded = []

    def load(name, **_):
        loaded.append(HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name=name))
        return loaded[-1]

    monkeypatch.setattr(mechscope.models, "load_model", load)
    result = runner.invoke(app, ["serve", "--store", str(tmp_path / "r.db"), "--model", "tiny", "--openai-api"])
    assert result.exit_code == 0, result.output
    (served, _), = started
    assert len(loaded) == 1  # the live pages' model is still loaded lazily, apart from this one
    with TestClient(served, base_url="http://127.0.0.1:8765") as client:
        listed = client.get("/v1/models")
        assert listed.status_code == 200 and listed.json()["data"][0]["id"] == "tiny"
        done = client.post("/v1/completions", json={"model": "tiny", "prompt": "the cat", "max_tokens": 2})
        assert done.status_code == 200, done.text
        assert done.json()["choices"][0]["text"] is not None
