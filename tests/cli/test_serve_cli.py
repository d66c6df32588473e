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
