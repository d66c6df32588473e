"""mechscope probe and mechscope steer (run, sweep) on a tiny model saved to disk."""

from __future__ import annotations

import json
from pathlib import Path

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


def one(out: Path, pattern: str) -> Path:
    """The one file in ``out`` matching ``pattern``."""
    found = list(out.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_probe_writes_the_layer_sweep_and_the_sparse_probing_table(files):
    result = _run("probe", files["model"], "--data", files["data"], "--sae", files["sae"], "--sae-k", "1,2",
                  "--out", files["out"], "--no-progress")
    assert result.exit_code == 0, result.output
    assert "control" in result.output and "shuffled" in result.output and "| words |" in result.output
    sweep = json.loads(one(files["out"], "probe-words-tiny-llama-*.json").read_text())
    assert sweep["type"] == "ProbeSweep" and sweep["layers"] == [0, 1]
    assert {"control_score", "selectivity", "shuffled_score", "chance"} <= set(sweep["results"][0])
    assert sweep["options"]["data"] == files["data"] and sweep["options"]["sae_k"] == [1, 2]
    table = json.loads(one(files["out"], "sparse-probing-words-tiny-llama-*.json").read_text())
    assert table["ks"] == [1, 2] and len(table["rows"][0]["sae"]) == 3
    assert one(files["out"], "probe-words-tiny-llama-*.png").is_file()


def test_steer_prints_plain_steered_and_random_and_saves_the_vector(files, tmp_path):
    vector = tmp_path / "v.safetensors"
    result = _run("steer", files["model"], "--pairs", files["pairs"], "--layer", 1, "--alpha", 2, "--prompt",
                  "the cat sat", "--max-new-tokens", 4, "--save", vector, "--gguf", tmp_path / "v.gguf",
                  "--out", files["out"])
    assert result.exit_code == 0, result.output
    assert "steered" in result.output and "random direction" in result.output
    written = json.loads(one(files["out"], "steer-pairs-tiny-llama-*.json").read_text())
    assert written["hook_names"] == ["blocks.1.hook_resid_post"] and written["vector"]["method"] == "mean-diff"
    assert written["options"]["layer"] == 1 and written["options"]["alpha"] == 2
    again = _run("steer", files["model"], "--vector", vector, "--alpha", 2, "--prompt", "the cat sat",
                 "--max-new-tokens", 4, "--out", files["out"])
    assert again.exit_code == 0, again.output
    assert json.loads(one(files["out"], "steer-v-tiny-llama-*.json").read_text())["steered"] == written["steered"]
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
    sweep = json.loads(one(files["out"], "steer-sweep-pairs-tiny-llama-*.json").read_text())
    assert sweep["layers"] == [0, 1] and sweep["alphas"] == [1.0, 4.0] and len(sweep["kl"]) == 2
    assert sweep["options"]["targets"] == "cat,dog" and sweep["options"]["max_kl"] == 50
    assert one(files["out"], "steer-sweep-pairs-tiny-llama-*.png").is_file()


@pytest.mark.parametrize("command, base, runs", [
    ("probe", ["--data", "DATA", "--layers", "1", "--no-progress"], [[], ["--seed", "1"], ["--layers", "0"]]),
    ("steer", ["--pairs", "PAIRS", "--layer", "1", "--max-new-tokens", "2"],
     [["--prompt", "the cat sat"], ["--prompt", "the dog sat"], ["--prompt", "the cat sat", "--alpha", "3"]]),
    ("steer sweep", ["--pairs", "PAIRS", "--targets", "cat", "--layers", "1", "--alphas", "1", "--n-random", "1",
                     "--no-progress"], [[], ["--alphas", "2"], ["--targets", "dog"]]),
])
def test_runs_differing_in_one_option_never_overwrite_each_other(files, tmp_path, command, base, runs):
    base = [files["data"] if a == "DATA" else files["pairs"] if a == "PAIRS" else a for a in base]
    for args in runs:
        result = _run(*command.split(), files["model"], *base, *args, "--out", tmp_path, "--no-store")
        assert result.exit_code == 0, result.output
    written = list(tmp_path.glob("*.json"))
    assert len(written) == len(runs)
    assert len({json.dumps(json.loads(path.read_text())["options"], sort_keys=True) for path in written}) == len(runs)


@pytest.mark.parametrize("args, message", [
    (["probe", "MODEL", "--data", "nope"], "unknown probe dataset 'nope'"),
    (["probe", "MODEL", "--data", "sva-number", "--layers", "a,b"], "--layers takes comma-separated integers"),
    (["steer", "MODEL", "--prompt", "hi"], "give exactly one of --pairs, --vector or --sae"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--method", "caa"], "unknown --method 'caa'"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--save", "v.pt"], "--save writes a .safetensors"),
    (["steer", "sweep", "MODEL", "--pairs", "PAIRS"], "have no built-in effect"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--alphas", "x"], "--alphas takes comma-separated numbers"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--max-kl", "0"], "SweepConfig.max_kl"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--task", "nope"], "unknown task 'nope'"),
    (["probe", "MODEL", "--data", "sva-number", "--out", "FILE"], "is a file"),
    (["probe", "MODEL", "--data", "sva-number", "--k", "0"], "--k must be at least 1"),
    (["probe", "MODEL", "--data", "sva-number", "--store", "DIR"], "is a directory"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--out", "FILE"], "is a file"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--save", "FILE/v.safetensors"],
     "--save's directory"),
    (["steer", "MODEL", "--pairs", "weddings", "--prompt", "hi", "--gguf", "FILE/v.gguf"], "--gguf's directory"),
    (["steer", "sweep", "MODEL", "--pairs", "weddings", "--out", "FILE/sub"], "cannot be created"),
])
def test_bad_input_is_one_line_before_any_model_loads(files, tmp_path, args, message):
    (tmp_path / "file").write_text("")
    places = {"PAIRS": files["pairs"], "MODEL": "no-such-model-dir/", "DIR": str(tmp_path)}
    args = [places.get(a, a.replace("FILE", str(tmp_path / "file"))) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()) and "unknown model" not in result.stderr
