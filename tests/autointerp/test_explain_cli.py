"""``mechscope explain`` / ``mechscope score`` on a tiny model's neurons: outputs, resumption, one-line errors."""

from __future__ import annotations

import json
import random

import pytest
from tiny import _COMMON, WORDS, tiny_tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig
from typer.testing import CliRunner

from mechscope.activations.harvest import harvest
from mechscope.cli.main import app
from mechscope.models import load_model

runner = CliRunner()
HOOK = "blocks.1.mlp.hook_post"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-cli")
    # a tiny Llama with room for the explainer's few-shot prompts (the shared tiny ones take 64 tokens)
    config = LlamaConfig(**{**_COMMON, "max_position_embeddings": 2048}, num_key_value_heads=2)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "model")
    tiny_tokenizer().save_pretrained(root / "model")
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(10)]
    harvest(load_model(str(root / "model")), HOOK, texts, root / "store", n_tokens=1200, seq_len=25,
            shard_tokens=400, progress=False)
    return root


def _run(files, command, *extra):
    return runner.invoke(app, [command, str(files / "model"), HOOK, "--store", str(files / "store"), "--units", "0-2",
                               "--backend", "local", "--ctx-len", "8", "--n-test", "4", "--out", str(files / "out"),
                               *extra])


def test_explain_then_score_write_delphi_files_and_resume(files):
    first = _run(files, "explain", "--explainer", "top-tokens")
    assert first.exit_code == 0, first.output
    explanations = sorted((files / "out" / "explanations").glob("*.txt"))
    assert [p.name for p in explanations] == [f"{HOOK}_latent{i}.txt" for i in range(3)]
    scored = _run(files, "score", "--scorers", "detection,intruder", "--explainer", "top-tokens")
    assert scored.exit_code == 0, scored.output
    assert "detection" in scored.output and "shuffled" in scored.output
    report = json.loads((files / "out" / f"autointerp_{HOOK}.json").read_text())
    assert report["summary"]["detection"]["explanation"]["n"] == 3
    assert (files / "out" / f"autointerp_{HOOK}.png").exists()
    assert (files / "out" / "scores" / "detection-shuffled" / f"{HOOK}_latent2.txt").exists()
    stamp = (files / "out" / "scores" / "detection" / f"{HOOK}_latent0.txt").stat().st_mtime_ns
    again = _run(files, "score", "--scorers", "detection")
    assert again.exit_code == 0, again.output
    assert (files / "out" / "scores" / "detection" / f"{HOOK}_latent0.txt").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("extra, message", [
    (["--units", "5-2"], "--units takes ranges"),
    (["--scorers", "detection,vibes"], "--scorers takes"),
    (["--backend", "http://127.0.0.1:1/v1"], "--api-model"),
    (["--explainer", "oracle"], "--explainer takes"),
])
def test_bad_input_gives_one_line_before_loading_anything(files, extra, message):
    result = _run(files, "score", *extra)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_missing_store_or_bad_units_argument(files, tmp_path):
    result = runner.invoke(app, ["explain", str(files / "model"), HOOK, "--store", str(tmp_path)])
    assert result.exit_code == 2 and "no activation store" in result.output
    result = runner.invoke(app, ["explain", str(files / "model"), "blocks.1.hook_resid_post", "--store",
                                 str(files / "store")])
    assert result.exit_code == 2 and "SAE directory or a blocks.L.mlp.hook_post" in result.output
