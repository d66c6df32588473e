"""``mechscope heads``: top heads per role on stdout, JSON + PNG on disk, one-line errors."""

from __future__ import annotations

import json

import pytest
import typer
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.heads import register

runner = CliRunner()


def _app() -> typer.Typer:
    """A stand-in for the ``mechscope`` app (main.py wires ``register`` in)."""
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def root() -> None:  # with a callback, "heads" stays a subcommand as in the real app
        pass

    register(app)
    return app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("heads-cli") / "tiny-llama"
    tiny_hf_model("llama-gqa").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


def test_heads_prints_roles_and_writes_json_and_png(model_dir, tmp_path):
    result = runner.invoke(
        _app(), ["heads", model_dir, "--seq-len", "10", "--n-seqs", "2", "--seed", "3", "-k", "2",
                 "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    for role in ("previous token", "duplicate token", "induction", "copying", "copy suppression", "successor"):
        assert role in result.stdout
    assert "(copy " in result.stdout
    [json_path] = tmp_path.glob("heads-tiny-llama-*.json")
    data = json.loads(json_path.read_text())
    assert data["type"] == "HeadRoles" and data["seq_len"] == 10 and data["seed"] == 3
    assert data["options"] == {"model": model_dir, "seq_len": 10, "n_seqs": 2, "seed": 3}
    assert len(data["induction"]) == 2 and len(data["induction"][0]) == 4
    assert json_path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seq-len", "40"], "pass seq_len <= 31"),
        (["--seq-len", "1"], "--seq-len must be at least 2; received 1"),
        (["--n-seqs", "0"], "--n-seqs must be at least 1"),
        (["-k", "0"], "--top must be at least 1"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(model_dir, tmp_path, args, message):
    result = runner.invoke(_app(), ["heads", model_dir, "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_unknown_model_is_a_clean_error(tmp_path):
    result = runner.invoke(_app(), ["heads", "no-such-model", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown model 'no-such-model'" in " ".join(result.stderr.split())
