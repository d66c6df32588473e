"""``mechscope sae eval`` and ``mechscope sae dashboard``: outputs, and one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import typer
from tiny import WORDS, tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.sae import SAEConfig, SparseAutoencoder

runner = CliRunner()


def _app() -> typer.Typer:
    """The whole ``mechscope`` app: the commands as a user meets them."""
    from mechscope.cli.main import app

    return app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cli") / "tiny-gpt2"
    tiny_hf_model("gpt2").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> str:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("text") / "words.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(40)))
    return str(path)


@pytest.fixture
def save_sae():
    from mechscope.sae.saelens import save_sae

    return save_sae


def _saved(save_sae, path: Path, **cfg) -> str:
    torch.manual_seed(0)
    options = dict(d_in=64, d_sae=32, architecture="topk", k=4, hook_name="blocks.0.hook_resid_post") | cfg
    save_sae(SparseAutoencoder(SAEConfig(**options)), path)
    return str(path)


def test_eval_prints_the_metrics_and_writes_json(model_dir, text_file, save_sae, tmp_path):
    sae_dir = _saved(save_sae, tmp_path / "sae", model_name=model_dir)
    result = runner.invoke(_app(), ["sae", "eval", model_dir, sae_dir, "--tokens", "256", "--seq-len", "32",
                                    "--text", text_file, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "ce_recovered_zero" in result.stdout and "fvu" in result.stdout
    data = json.loads(next((tmp_path / "out").glob("sae-eval-*.json")).read_text())
    assert data["type"] == "SAEEvaluation" and 0 < data["n_tokens"] <= 256 and len(data["density"]) == 32


def test_dashboard_writes_html_and_json(model_dir, text_file, save_sae, tmp_path):
    sae_dir = _saved(save_sae, tmp_path / "sae")
    out = tmp_path / "boards"
    result = runner.invoke(_app(), ["sae", "dashboard", model_dir, sae_dir, "--features", "0, 3,7", "--tokens", "512",
                                    "--text", text_file, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = next(out.glob("dashboard-*.html")).read_text()
    assert 'id="feature-3"' in page and "<script" not in page
    data = json.loads(next(out.glob("dashboard-*.json")).read_text())
    assert [f["feature"] for f in data["features"]] == [0, 3, 7] and data["options"]["features"] == [0, 3, 7]
    top = runner.invoke(_app(), ["sae", "dashboard", model_dir, sae_dir, "--top", "2", "--tokens", "256",
                                 "--text", text_file, "--out", str(out)])
    assert top.exit_code == 0, top.output
    tops = [json.loads(p.read_text()) for p in out.glob("dashboard-*.json")]
    assert len(tops) == 2 and sorted(len(d["features"]) for d in tops) == [2, 3]  # the first board is kept


@pytest.mark.parametrize(
    "command, cfg, extra, message",
    [
        ("eval", dict(hook_name="blocks.5.hook_resid_post"), [], "unknown hook point 'blocks.5.hook_resid_post'"),
        ("eval", dict(model_name="smollm2-135m"), [], "was trained on 'smollm2-135m'"),
        ("eval", dict(d_in=576, model_name=None), [], "reads 576-wide activations"),
        ("dashboard", {}, ["--top", "33"], "--top 33 is outside 1..32: the SAE has 32 latents"),
        ("dashboard", {}, ["--features", "1,40"], "--features [40] are outside 0..31"),
        ("dashboard", {}, ["--features", "a,b"], "comma-separated latent indices"),
        ("dashboard", {}, ["--features", "1", "--top", "2"], "not both"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_exit(model_dir, save_sae, tmp_path, command, cfg, extra, message):
    sae_dir = _saved(save_sae, tmp_path / "sae", **cfg)
    result = runner.invoke(_app(), ["sae", command, model_dir, sae_dir, "--tokens", "64", *extra])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_a_missing_sae_directory_is_one_line(model_dir, tmp_path):
    result = runner.invoke(_app(), ["sae", "eval", model_dir, str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_skip_model_check_accepts_another_name(model_dir, text_file, save_sae, tmp_path):
    sae_dir = _saved(save_sae, tmp_path / "sae", model_name="my-copy-of-tiny")
    result = runner.invoke(_app(), ["sae", "eval", model_dir, sae_dir, "--tokens", "64", "--seq-len", "32",
                                    "--text", text_file, "--skip-model-check", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
