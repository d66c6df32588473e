"""``mechscope lens``: a table of top tokens, a JSON and a PNG; one-line errors."""

from __future__ import annotations

import json

import pytest
import typer
from lens_helpers import PROMPT
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope import HookedModel
from mechscope.cli.lens import register
from mechscope.lens import TunedLens

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:  # a group, so the command is invoked by name as in `mechscope lens`
        pass

    register(app)
    return app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lens-cli") / "tiny-llama"
    tiny_hf_model("llama-gqa").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


def test_lens_writes_json_and_png_and_prints_top_tokens(app, model_dir, tmp_path):
    result = runner.invoke(app, ["lens", model_dir, PROMPT, "--answer", "paris", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "logit lens, last position ('to')" in " ".join(result.stdout.split())
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["L0", "L1", "final"]
    [json_path] = tmp_path.glob("lens-tiny-llama-*.json")
    data = json.loads(json_path.read_text())
    assert data["type"] == "LogitLensResult" and data["answer"] == "paris" and len(data["answer_ranks"]) == 3
    assert data["options"]["prompt"] == PROMPT and data["options"]["answer"] == "paris"
    assert json_path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_two_prompts_into_one_directory_keep_both(app, model_dir, tmp_path):
    for prompt in (PROMPT, "the cat sat on the"):
        result = runner.invoke(app, ["lens", model_dir, prompt, "--out", str(tmp_path), "--no-store"])
        assert result.exit_code == 0, result.output
    prompts = {json.loads(p.read_text())["options"]["prompt"] for p in tmp_path.glob("lens-*.json")}
    assert prompts == {PROMPT, "the cat sat on the"} and len(list(tmp_path.glob("lens-*.png"))) == 2


def test_positions_limit_what_is_read_and_kept(app, model_dir, tmp_path):
    result = runner.invoke(app, ["lens", model_dir, PROMPT, "--positions", "-3:", "--out", str(tmp_path), "--no-store"])
    assert result.exit_code == 0, result.output
    data = json.loads(next(tmp_path.glob("lens-*.json")).read_text())
    n = data["n_prompt_tokens"]
    assert n >= len(PROMPT.split()) and data["positions"] == [n - 3, n - 2, n - 1]
    assert len(data["tokens"]) == 3 and len(data["top_tokens"][0]) == 3 and data["tokens"][-1] == "to"


def test_lens_reads_through_a_saved_tuned_lens(app, model_dir, tmp_path):
    from mechscope.models import load_model

    TunedLens(load_model(model_dir)).save(tmp_path / "lens")
    result = runner.invoke(app, ["lens", model_dir, PROMPT, "--tuned-lens", str(tmp_path / "lens"),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tuned lens, last position" in result.stdout
    assert len(list(tmp_path.glob("lens-tiny-llama-tuned-*.json"))) == 1
    assert len(list(tmp_path.glob("lens-tiny-llama-tuned-*.png"))) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["MODEL", ""], "the prompt is empty"),
        (["MODEL", PROMPT, "--answer", "paris rome"], "answer must be a single token"),
        (["MODEL", PROMPT, "-k", "0"], "-k must be at least 1; received 0"),
        (["MODEL", PROMPT, "-k", "500"], "top_k must be an int in 1..128"),
        (["MODEL", PROMPT, "--positions", "50:60"], "--positions 50:60 selects nothing"),
        (["MODEL", PROMPT, "--tuned-lens", "/no/such/dir"], "is not a directory"),
        (["MODEL", PROMPT, "--tuned-lens", "OTHER"], "was trained for gpt2"),
        (["no-such-model", PROMPT], "unknown model 'no-such-model'"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(app, model_dir, tmp_path, tokenizer, args, message):
    other = TunedLens(HookedModel(tiny_hf_model("gpt2"), tokenizer, name="gpt2")).save(tmp_path / "other")
    args = [{"MODEL": model_dir, "OTHER": str(other)}.get(a, a) for a in args]
    result = runner.invoke(app, ["lens", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
