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
    [summary] = (files / "out").glob(f"autointerp-{HOOK}-*.json")
    report = json.loads(summary.read_text())
    assert report["summary"]["detection"]["explanation"]["n"] == 3
    assert report["options"]["scorers"] == ["detection", "intruder"] and report["options"]["n_test"] == 4
    assert summary.with_suffix(".png").exists()
    assert len(list((files / "out").glob(f"explanations-{HOOK}-*.json"))) == 1
    assert (files / "out" / "scores" / "detection-shuffled" / f"{HOOK}_latent2.txt").exists()
    stamp = (files / "out" / "scores" / "detection" / f"{HOOK}_latent0.txt").stat().st_mtime_ns
    again = _run(files, "score", "--scorers", "detection")
    assert again.exit_code == 0, again.output
    assert (files / "out" / "scores" / "detection" / f"{HOOK}_latent0.txt").stat().st_mtime_ns == stamp
    # another choice of scorers is another summary: the first one stays
    summaries = sorted((files / "out").glob(f"autointerp-{HOOK}-*.json"))
    assert len(summaries) == 2 and summary in summaries
    assert {tuple(json.loads(path.read_text())["options"]["scorers"]) for path in summaries} == {
        ("detection", "intruder"), ("detection",)}
    other = _run(files, "explain", "--explainer", "top-tokens", "--units", "0-1")
    assert other.exit_code == 0, other.output
    assert len(list((files / "out").glob(f"explanations-{HOOK}-*.json"))) == 2


@pytest.mark.parametrize("extra, message", [
    (["--units", "5-2"], "--units takes ranges"),
    (["--scorers", "detection,vibes"], "--scorers takes"),
    (["--backend", "http://127.0.0.1:1/v1"], "--api-model"),
    (["--explainer", "oracle"], "--explainer takes"),
])
def test_bad_input_gives_one_line_before_loading_anything(files, extra, message):
    result = _run(files, "score", *extra)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["explain", "score"])
def test_an_out_that_is_a_file_is_refused_before_the_model_loads(files, tmp_path, command):
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, [command, str(tmp_path / "no-such-model"), HOOK, "--store", str(files / "store"),
                                 "--out", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output


def test_a_missing_store_or_bad_units_argument(files, tmp_path):
    result = runner.invoke(app, ["explain", str(files / "model"), HOOK, "--store", str(tmp_path)])
    assert result.exit_code == 2 and "no activation store" in result.output
    result = runner.invoke(app, ["explain", str(files / "model"), "blocks.1.hook_resid_post", "--store",
                                 str(files / "store")])
    assert result.exit_code == 2 and "SAE directory or a blocks.L.mlp.hook_post" in result.output
