"""mechscope probe and mechscope steer (run, sweep) on a tiny model saved to disk."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.sae import SAEConfig, SparseAutoencoder, save_sae

runner = CliRunner()
WORDS_A, WORDS_B = ("cat", "dog", "mary", "john"), ("paris", "rome", "red", "blue")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("repr")
    model_dir = root / "tiny-llama"
    tiny_hf_model("llama-gqa").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    rows = [{"text": template.format(w), "label": label, "position": f"word:{w}"}
            for template in ("the {} sat on the mat", "when {} went to the store", "one two {} three")
            for label, words in (("a", WORDS_A), ("b", WORDS_B)) for w in words]
    data = root / "words.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    pairs = root / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"positive": f"the {a} sat on the mat", "negative": f"the {b} sat on the mat"})
                               for a, b in zip(WORDS_A, WORDS_B)) + "\n")
    sae_dir = root / "sae"
    save_sae(SparseAutoencoder(SAEConfig(d_in=64, d_sae=32, architecture="relu", hook_name="blocks.1.hook_resid_post",
                                         model_name="tiny")), sae_dir)
    return {"model": str(model_dir), "data": str(data), "pairs": str(pairs), "sae": str(sae_dir), "out": root / "out"}


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_probe_writes_the_layer_sweep_and_the_sparse_probing_table(files):
    result = _run("probe", files["model"], "--data", files["data"], "--sae", files["sae"], "--sae-k", "1,2",
                  "--out", files["out"], "--no-progress")
    assert result.exit_code == 0, result.output
    assert "control" in result.output and "shuffled" in result.output and "| words |" in result.output
    sweep = json.loads((files["out"] / "probe-words-tiny-llama.json").read_text())
    assert sweep["type"] == "ProbeSweep" and sweep["layers"] == [0, 1]
    assert {"control_score", "selectivity", "shuffled_score", "chance"} <= set(sweep["results"][0])
    table = json.loads((files["out"] / "sparse-probing-words-tiny-llama.json").read_text())
    assert table["ks"] == [1, 2] and len(table["rows"][0]["sae"]) == 3
    assert (files["out"] / "probe-words-tiny-llama.png").is_file()


def test_steer_prints_plain_steered_and_random_and_saves_the_vector(files, tmp_path):
    vector = tmp_path / "v.safetensors"
    result = _run("steer", files["model"], "--pairs", files["pairs"], "--layer", 1, "--alpha", 2, "--prompt",
                  "the cat sat", "--max-new-tokens", 4, "--save", vector, "--gguf", tmp_path / "v.gguf",
                  "--out", files["out"])
    assert result.exit_code == 0, result.output
    assert "steered" in result.output and "random direction" in result.output
    written = json.loads((files["out"] / "steer-pairs-tiny-llama.json").read_text())
    assert written["hook_names"] == ["blocks.1.hook_resid_post"] and written["vector"]["method"] == "mean-diff"
    again = _run("steer", files["model"], "--vector", vector, "--alpha", 2, "--prompt", "the cat sat",
                 "--max-new-tokens", 4, "--out", files["out"])
    assert again.exit_code == 0, again.output
    assert json.loads((files["out"] / "steer-v-tiny-llama.json").read_text())["steered"] == written["steered"]
    from_gguf = _run("steer", "run", files["model"], "--vector", tmp_path / "v.gguf", "--alpha", 2, "--prompt",
                     "the cat sat", "--max-new-tokens", 4, "--out", files["out"])
    assert from_gguf.exit_code == 0, from_gguf.output
    sae = _run("steer", files["model"], "--sae", files["sae"], "--feature", 3, "--prompt", "the cat sat",
               "--max-new-tokens", 2, "--out", files["out"])
    assert sae.exit_code == 0, sae.output


def test_steer_sweep_writes_the_grid_and_a_recommendation(files):
    result = _run("steer", "sweep", files["model"], "--pairs", files["pairs"], "--targets", "cat,dog",
                  "--layers", "0,1", "--alphas", "1,4", "--max-kl", 50, "--n-random", 1, "--out", files["out"],
                  "--no-progress")
    assert result.exit_code == 0, result.output
    sweep = json.loads((files["out"] / "steer-sweep-pairs-tiny-llama.json").read_text())
    assert sweep["layers"] == [0, 1] and sweep["alphas"] == [1.0, 4.0] and len(sweep["kl"]) == 2
    assert (files["out"] / "steer-sweep-pairs-tiny-llama.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["probe", "MODEL", "--data", "nope"], "unknown probe dataset 'nope'"),
    (["probe", "MODEL", "--data", "sva-number", "--layers", "a,b"], "--layers takes comma-separated integers"),
    (["steer", "MODEL", "--prompt", "hi"], "give exactly one of --pairs, --vector or --sae"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--method", "caa"], "unknown --method 'caa'"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--save", "v.pt"], "--save writes a .safetensors"),
    (["steer", "sweep", "MODEL", "--pairs", "PAIRS"], "have no built-in effect"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--alphas", "x"], "--alphas takes comma-separated numbers"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--max-kl", "0"], "SweepConfig.max_kl"),
])
def test_bad_input_is_one_line_before_any_model_loads(files, args, message):
    args = [files["pairs"] if a == "PAIRS" else "no-such-model-dir/" if a == "MODEL" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
